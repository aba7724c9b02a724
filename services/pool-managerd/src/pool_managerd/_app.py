"""The pool-managerd app factory: importing this module has no side effects."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

import anyio
import httpx
from litestar import Litestar

from llorch_contracts.config import LlorchConfig
from llorch_http import AuthPolicy, create_service_app
from llorch_metrics import ServiceMetrics
from llorch_pools import PoolManager, Preparer, SupervisorSettings

from ._control import ControlController
from ._gpus import gpus
from ._health import health
from ._metrics import SERVICE, PrometheusObserver, metrics_endpoint
from ._pools import PoolsController

# Paths any caller may read: they carry no secrets and no task data (AUTH-1103).
EXEMPT = {("GET", "/metrics"), ("GET", "/v2/health")}


def create_app(
    config: LlorchConfig,
    *,
    preparer: Preparer,
    environ: Mapping[str, str],
    clock: Callable[[], float] = time.monotonic,
    auth: AuthPolicy | None = None,
) -> Litestar:
    """Wire pool-managerd: the lifespan runs every pool's supervisor and stops every engine on exit."""
    metrics = ServiceMetrics(SERVICE)
    http = httpx.AsyncClient()
    settings = SupervisorSettings.from_config(
        config,
        preparer=preparer,
        http=http,
        environ=environ,
        clock=clock,
        observer=PrometheusObserver(metrics),
    )
    manager = PoolManager(config, settings)
    started = clock()

    def uptime_ms() -> int:
        return int((clock() - started) * 1000)

    @asynccontextmanager
    async def run_pools(_: Litestar) -> AsyncIterator[None]:
        async with http, anyio.create_task_group() as background:
            await background.start(manager.run)
            yield
            background.cancel_scope.cancel()

    return create_service_app(
        [health, gpus, PoolsController, ControlController, metrics_endpoint],
        provides={
            "metrics": metrics,
            "registry": manager.registry,
            "manager": manager,
            "preparer": preparer,
            "uptime_ms": uptime_ms,
            "keepalive_s": config.orchestratord.sse.keepalive_ms / 1000,
        },
        lifespan=[run_pools],
        auth=auth or AuthPolicy.from_config(config.auth, None, exempt=EXEMPT),
    )
