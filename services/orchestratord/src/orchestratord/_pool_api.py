"""`/v2/pools` and `/v2/pools/{pool_id}/health`: pools as orchestratord sees them (OC-CTRL-2002)."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from llorch_contracts.api import (
    ErrorKind,
    PoolHealth,
    PoolHealthMetrics,
    PoolId,
    PoolStatus,
    PoolSummary,
    ReplicaState,
)
from llorch_dataplane import Orchestrator
from llorch_http import ApiError, checked_id


def pool_status(orchestrator: Orchestrator, pool_id: str) -> PoolStatus:
    pool = orchestrator.pool(checked_id(pool_id, PoolId, "pool_id"))
    if pool is None:
        raise ApiError(ErrorKind.NOT_FOUND, f"no pool {pool_id!r}")
    return pool


def summary(orchestrator: Orchestrator, pool: PoolStatus) -> PoolSummary:
    ready = [r for r in pool.replicas if r.state == ReplicaState.ready]
    runtime = orchestrator.runtimes.get(pool.pool_id)
    active = sum(runtime.active.values()) if runtime else 0
    slots_total = sum(r.slots_total for r in ready)
    return PoolSummary(
        pool_id=pool.pool_id,
        engine=pool.engine,
        engine_version=next((r.engine_version for r in ready if r.engine_version), None),
        model_ref=pool.model_ref,
        model_digest=pool.model_digest,
        live=pool.live,
        ready=pool.ready,
        draining=pool.draining,
        state=pool.state,
        last_error=pool.last_error,
        queue_depth=len(runtime.queue) if runtime else 0,
        replicas=len(pool.replicas),
        slots_total=slots_total,
        slots_free=max(slots_total - active, 0),
    )


class PoolsController(Controller):
    path = "/v2/pools"

    @get("/", sync_to_thread=False)
    def list_pools(self, orchestrator: NamedDependency[Orchestrator]) -> list[PoolSummary]:
        return [summary(orchestrator, pool) for pool in orchestrator.pools()]

    @get("/{pool_id:str}/health", sync_to_thread=False)
    def pool_health(self, pool_id: FromPath[str], orchestrator: NamedDependency[Orchestrator]) -> PoolHealth:
        pool = pool_status(orchestrator, pool_id)
        info = summary(orchestrator, pool)
        return PoolHealth(
            live=pool.live,
            ready=pool.ready,
            draining=pool.draining,
            last_error=pool.last_error,
            metrics=PoolHealthMetrics(
                queue_depth=info.queue_depth, slots_total=info.slots_total, slots_free=info.slots_free
            ),
        )
