"""Pool statuses as pool-managerd reports them, and a stand-in pool-managerd that serves one.

Tests feed orchestratord these to put a pool in exactly the state they need:
preparing (tasks are admitted and wait), Ready (tasks run on the adapter the
test injects), stopped, reloaded to another model.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec
from litestar import Litestar, get
from litestar.response import Stream

from llorch_contracts.api import (
    EngineKind,
    PoolState,
    PoolStatus,
    PoolWatchSnapshot,
    Preparation,
    ReplicaState,
    ReplicaStatus,
)


def replica_status(
    pool_id: str,
    index: int = 0,
    *,
    engine: EngineKind = EngineKind.mock,
    model_ref: str = "m",
    state: ReplicaState = ReplicaState.ready,
    endpoint: str | None = None,
    slots: int = 1,
) -> ReplicaStatus:
    """A replica `<pool>-r<index>` on CPU with `slots` free slots."""
    return ReplicaStatus(
        replica_id=f"{pool_id}-r{index}",
        endpoint=endpoint or f"http://127.0.0.1:9/{pool_id}/r{index}",
        engine=engine,
        engine_version="mock:1",
        model_ref=model_ref,
        model_digest=None,
        ctx_max=4096,
        slots_total=slots,
        slots_free=slots,
        device_mask="cpu",
        state=state,
        last_error=None,
        restarts=0,
    )


def pool_status(
    pool_id: str,
    *replicas: ReplicaStatus,
    engine: EngineKind = EngineKind.mock,
    model_ref: str = "m",
    state: PoolState | None = None,
) -> PoolStatus:
    """A pool of `replicas`: Ready when one of them is, else `state` (default provisioning)."""
    ready = any(r.state == ReplicaState.ready for r in replicas)
    return PoolStatus(
        pool_id=pool_id,
        engine=engine,
        model_ref=model_ref,
        model_digest=None,
        live=True,
        ready=ready,
        draining=False,
        state=state or (PoolState.ready if ready else PoolState.provisioning),
        last_error=None,
        preparation=Preparation(steps=[]),
        replicas=list(replicas),
    )


class FakePoolManager:
    """Serves `GET /v2/watch/pools`: one snapshot of `pools` as they are, then an open, idle stream."""

    def __init__(self, *pools: PoolStatus) -> None:
        self.pools = list(pools)

    def app(self) -> Litestar:
        @get("/v2/watch/pools", sync_to_thread=False)
        def watch() -> Stream:
            snapshot = msgspec.json.encode(PoolWatchSnapshot(pools=self.pools))

            async def events() -> AsyncIterator[bytes]:
                yield b"event: snapshot\ndata: " + snapshot + b"\n\n"
                await asyncio.sleep(3600)

            return Stream(events(), media_type="text/event-stream")

        return Litestar([watch])
