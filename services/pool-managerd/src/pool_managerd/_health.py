"""`/v2/health`: is pool-managerd up, and how many of its pools are Ready."""

from __future__ import annotations

from collections.abc import Callable

from litestar import get
from litestar.di import NamedDependency

from llorch_contracts.api import ManagerHealth, ManagerHealthState, ServiceName
from llorch_contracts.config import LlorchConfig
from llorch_http import api_version

SERVICE = "pool-managerd"


@get("/v2/health", sync_to_thread=False)
def health(
    config: NamedDependency[LlorchConfig], uptime_ms: NamedDependency[Callable[[], int]]
) -> ManagerHealth:
    """Liveness of the daemon itself; `degraded` while any configured pool is not Ready."""
    ready = 0  # no pool is provisioned yet: pool supervision arrives with the engine issue
    total = len(config.pools)
    return ManagerHealth(
        api_version=api_version(SERVICE),
        service=ServiceName.pool_managerd,
        status=ManagerHealthState.ok if ready == total else ManagerHealthState.degraded,
        pools_ready=ready,
        pools_total=total,
        uptime_ms=uptime_ms(),
    )
