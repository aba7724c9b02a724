"""The pool-managerd app factory: importing this module has no side effects."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from litestar import Litestar

from llorch_contracts.config import LlorchConfig
from llorch_http import AuthPolicy, FatalExit, background_loops, create_service_app
from llorch_metrics import ServiceMetrics
from llorch_pools import PoolManager, Preparer, SupervisorSettings
from llorch_provisioning import ModelDirs

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
    on_fatal: Callable[[str], None] | None = None,
    base_dir: Path | None = None,
) -> Litestar:
    """Wire pool-managerd: the lifespan runs every pool's supervisor and stops every engine on exit.

    `base_dir` is where relative model paths resolve (the config file's directory; default the
    working directory), as for the preparer.
    """
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

    fatal = FatalExit()

    @asynccontextmanager
    async def run_pools(_: Litestar) -> AsyncIterator[None]:
        # The supervisors run until shutdown; if they end, the service cannot go on (ORCH-3430).
        async with http, background_loops({"pools": manager.run}, on_fatal or fatal):
            await manager.started()
            yield

    app = create_service_app(
        [health, gpus, PoolsController, ControlController, metrics_endpoint],
        provides={
            "metrics": metrics,
            "registry": manager.registry,
            "manager": manager,
            "preparer": preparer,
            # OC-POOL-3180: what a reload may name, resolved once at start-up.
            "model_dirs": ModelDirs.of(
                cache_root=Path(config.pool_managerd.cache_dir),
                extra_dirs=config.catalog.model_dirs,
                configured_refs={pool.model.ref for pool in config.pools},
            ),
            "base_dir": Path.cwd() if base_dir is None else base_dir,
            "uptime_ms": uptime_ms,
            "keepalive_s": config.orchestratord.sse.keepalive_ms / 1000,
        },
        lifespan=[run_pools],
        auth=auth or AuthPolicy.from_config(config.auth, None, exempt=EXEMPT),
    )
    app.state.fatal = fatal
    return app
