"""orchestratord's view of the pools: pool-managerd's watch stream, plus pools served in-process.

pool-managerd is the source of truth for engine replicas (OC-POOL-3160);
orchestratord only reads `GET /v2/watch/pools`. Pools whose engine runs
inside orchestratord (the mock engine) are put here directly and are never
overwritten by the feed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import httpx
import msgspec

from llorch_contracts.api import EngineKind, PoolState, PoolStatus, PoolWatchSnapshot, Preparation
from llorch_contracts.config import PoolConfig

log = logging.getLogger("llorch.poolview")
RECONNECT_MIN_S = 0.2
# pool-managerd is usually on the same host: a restart of it should be seen within a second.
RECONNECT_MAX_S = 1.0
_snapshot = msgspec.json.Decoder(PoolWatchSnapshot)
_pool = msgspec.json.Decoder(PoolStatus)


class PoolView:
    """The latest status of every pool, with a wake-up for whoever waits on changes."""

    def __init__(self) -> None:
        self._pools: dict[str, PoolStatus] = {}
        self._local: set[str] = set()
        self._changed = asyncio.Event()
        self._listeners: list[Callable[[], None]] = []
        self.feed_error: str | None = "not connected to pool-managerd yet"

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener()` (synchronously, on the loop) after every change."""
        self._listeners.append(listener)

    def get(self, pool_id: str) -> PoolStatus | None:
        return self._pools.get(pool_id)

    def is_local(self, pool_id: str) -> bool:
        """Whether the pool is served in-process (no pool-managerd supervises its replicas)."""
        return pool_id in self._local

    def unseen_reason(self, pool_id: str) -> str | None:
        """Why the view of this pool is not current (no snapshot yet, feed lost), None when it is."""
        if pool_id in self._local:
            return None
        if self.feed_error is not None:
            return self.feed_error
        if pool_id not in self._pools:
            return f"pool-managerd does not report pool {pool_id}"
        return None

    def lose_feed(self, reason: str) -> None:
        """The watch stream broke: forget pool-managerd's pools until the next snapshot (OC-CTRL-2170).

        Their replicas may be gone with it, so nothing may be dispatched to them, and
        `/v2/pools` must not show them Ready while admission refuses them.
        """
        self.feed_error = reason
        self._pools = {k: v for k, v in self._pools.items() if k in self._local}
        self._notify()

    def snapshot(self) -> list[PoolStatus]:
        return list(self._pools.values())

    def put_local(self, pool: PoolStatus) -> None:
        """A pool served in-process; the pool-managerd feed never replaces it."""
        self._local.add(pool.pool_id)
        self._set(pool)

    def apply_snapshot(self, pools: list[PoolStatus]) -> None:
        self.feed_error = None
        remote = {p.pool_id: p for p in pools if p.pool_id not in self._local}
        self._pools = {k: v for k, v in self._pools.items() if k in self._local} | remote
        self._notify()

    def apply_change(self, pool: PoolStatus) -> None:
        if pool.pool_id not in self._local:
            self._set(pool)

    def _set(self, pool: PoolStatus) -> None:
        self._pools[pool.pool_id] = pool
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
        for listener in self._listeners:
            listener()

    async def changed(self) -> None:
        """Return at the next change."""
        await self._changed.wait()


def unreported_status(pool: PoolConfig, feed_error: str | None) -> PoolStatus:
    """A configured pool pool-managerd has not reported (yet): `provisioning`, with the feed's problem."""
    return PoolStatus(
        pool_id=pool.id,
        engine=EngineKind(str(pool.engine.kind)),
        model_ref=pool.model.ref,
        model_digest=None,
        live=False,
        ready=False,
        draining=False,
        state=PoolState.provisioning,
        last_error=feed_error,
        preparation=Preparation(steps=[]),
        replicas=[],
    )


async def follow_pool_manager(view: PoolView, http: httpx.AsyncClient, base_url: str) -> None:
    """Keep `view` in step with pool-managerd's watch stream, reconnecting with backoff, until cancelled."""
    delay = RECONNECT_MIN_S
    while True:
        try:
            async with http.stream(
                "GET", f"{base_url}/v2/watch/pools", timeout=httpx.Timeout(10.0, read=None)
            ) as r:
                r.raise_for_status()
                event = ""
                async for line in r.aiter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data = line[5:].strip().encode()
                        if event == "snapshot":
                            view.apply_snapshot(_snapshot.decode(data).pools)
                            delay = RECONNECT_MIN_S  # a feed that delivers resets the backoff
                        elif event == "pool":
                            view.apply_change(_pool.decode(data))
            view.lose_feed("pool-managerd closed the watch stream")
        except (httpx.HTTPError, msgspec.DecodeError) as exc:
            view.lose_feed(f"pool-managerd at {base_url} unreachable: {type(exc).__name__}: {exc}")
        except Exception as exc:  # never die silently: a bad frame or a listener bug costs a reconnect
            log.exception("pool view: unexpected error while following pool-managerd")
            view.lose_feed(f"pool view failed: {type(exc).__name__}: {exc}")
        log.warning("pool view: %s; reconnecting in %.1fs", view.feed_error, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, RECONNECT_MAX_S)
