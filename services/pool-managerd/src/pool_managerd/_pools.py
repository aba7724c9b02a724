"""Pool state over HTTP: list, get, and the watch stream of changes (OC-POOL-3120)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Stream

from llorch_contracts.api import ErrorKind, PoolId, PoolStatus, PoolWatchSnapshot
from llorch_http import KEEPALIVE, SSE_HEADERS, ApiError, checked_id, sse_event
from llorch_pools import PoolRegistry

_encode = msgspec.json.Encoder().encode


def pool_or_error(registry: PoolRegistry, pool_id: str) -> PoolStatus:
    """The pool, or the typed 400 (malformed id) / 404 (unknown id) envelope."""
    pool = registry.get(checked_id(pool_id, PoolId, "pool_id"))
    if pool is None:
        raise ApiError(ErrorKind.NOT_FOUND, f"no pool {pool_id!r}")
    return pool


async def watch_frames(registry: PoolRegistry, keepalive_s: float) -> AsyncIterator[bytes]:
    """A snapshot, then one frame per change; keepalive comments while nothing changes."""
    with registry.watch() as watcher:
        snapshot = PoolWatchSnapshot(pools=registry.snapshot())
        yield sse_event("snapshot", _encode(snapshot), registry.sequence)
        while not watcher.overflowed:
            with anyio.move_on_after(keepalive_s) as idle:
                sequence, pool = await watcher.queue.get()
            if idle.cancelled_caught:
                yield KEEPALIVE
            else:
                yield sse_event("pool", _encode(pool), sequence)


class PoolsController(Controller):
    path = "/v2"

    @get("/pools", sync_to_thread=False)
    def list_pools(self, registry: NamedDependency[PoolRegistry]) -> list[PoolStatus]:
        return registry.snapshot()

    @get("/pools/{pool_id:str}", sync_to_thread=False)
    def get_pool(self, pool_id: FromPath[str], registry: NamedDependency[PoolRegistry]) -> PoolStatus:
        return pool_or_error(registry, pool_id)

    @get("/watch/pools", sync_to_thread=False)
    def watch_pools(
        self, registry: NamedDependency[PoolRegistry], keepalive_s: NamedDependency[float]
    ) -> Stream:
        return Stream(
            watch_frames(registry, keepalive_s), media_type="text/event-stream", headers=SSE_HEADERS
        )
