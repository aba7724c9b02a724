"""`/v2/health`: is pool-managerd up, and how many of its pools are Ready."""

from __future__ import annotations

from collections.abc import Callable

from litestar import get
from litestar.di import NamedDependency

from llorch_contracts.api import ManagerHealth, ManagerHealthState, ServiceName
from llorch_http import api_version
from llorch_pools import PoolRegistry

SERVICE = "pool-managerd"


@get("/v2/health", sync_to_thread=False)
def health(
    registry: NamedDependency[PoolRegistry], uptime_ms: NamedDependency[Callable[[], int]]
) -> ManagerHealth:
    """Liveness of the daemon itself; `degraded` while any configured pool is not Ready."""
    pools = registry.snapshot()
    ready = sum(1 for pool in pools if pool.ready)
    total = len(pools)
    return ManagerHealth(
        api_version=api_version(SERVICE),
        service=ServiceName.pool_managerd,
        status=ManagerHealthState.ok if ready == total else ManagerHealthState.degraded,
        pools_ready=ready,
        pools_total=total,
        uptime_ms=uptime_ms(),
    )
