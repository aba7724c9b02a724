"""The orchestratord app factory: importing this module has no side effects."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from litestar import Litestar

from llorch_adapters import LlamaCppAdapter, MockAdapter, WorkerAdapter
from llorch_contracts.config import LlorchConfig
from llorch_dataplane import Orchestrator, PoolView, follow_pool_manager
from llorch_http import AuthPolicy, BuildInfo, FatalExit, background_loops, create_service_app
from llorch_metrics import ServiceMetrics

from ._artifacts_api import ArtifactsController
from ._catalog_api import CatalogController
from ._control_api import ControlController
from ._meta import MetaController
from ._metrics import metrics_endpoint
from ._model_gate import ModelGate
from ._observers import ObserverFanOut
from ._pool_api import PoolsController
from ._pools import is_local, mock_pool_status
from ._sessions_api import SessionsController
from ._state import Stores
from ._tasks import TasksController
from ._telemetry import SERVICE, DataPlaneTelemetry
from ._transcripts import TranscriptWriter

# Engines stream for minutes; only connecting is bounded here, decode limits are the watchdog's.
ENGINE_TIMEOUT = httpx.Timeout(10.0, read=None)
ENGINE_LIMITS = httpx.Limits(max_connections=512, max_keepalive_connections=64)
# Paths any caller may read: they carry no secrets and no task data (AUTH-1103).
EXEMPT = {("GET", "/metrics")}


def create_app(
    config: LlorchConfig,
    build: BuildInfo | None = None,
    *,
    adapters: Mapping[str, WorkerAdapter] | None = None,
    follow_pool_managerd: bool = True,
    auth: AuthPolicy | None = None,
    state_dir: Path | None = None,
    on_fatal: Callable[[str], None] | None = None,
    journal: bool = True,
) -> Litestar:
    """Wire orchestratord: the lifespan runs dispatch and follows pool-managerd's pool view.

    `auth` decides who may call (default: open, for loopback binds); its token is also sent to
    pool-managerd, never to engines (AUTH-1003). `state_dir` replaces the configured state directory
    and the catalog and artifact roots (tests pass a temporary directory). `on_fatal` is called when
    a background loop dies (default: shut down and exit non-zero, ORCH-3430). `journal=False` runs
    without the durable admission journal (benchmarks measure what it costs).
    """
    fatal = FatalExit()
    auth = auth or AuthPolicy.from_config(config.auth, None, exempt=EXEMPT)
    metrics = ServiceMetrics(SERVICE)
    http = httpx.AsyncClient(timeout=ENGINE_TIMEOUT, limits=ENGINE_LIMITS)
    bearer = {"Authorization": f"Bearer {auth.token}"} if auth.token else None
    pool_managerd_http = httpx.AsyncClient(timeout=ENGINE_TIMEOUT, headers=bearer)
    view = PoolView()
    for pool in config.pools:
        if is_local(pool):
            view.put_local(mock_pool_status(pool))
    engines = adapters or {"llamacpp": LlamaCppAdapter(http), "mock": MockAdapter()}
    stores = Stores.open(config, state_dir, on_failure=on_fatal or fatal, journal=journal)
    transcripts = TranscriptWriter(stores.artifacts, view)
    observer = ObserverFanOut(DataPlaneTelemetry(metrics), transcripts)
    orchestrator = Orchestrator(config, view, engines, observer=observer, journal=stores.journal)
    managed = follow_pool_managerd and any(not is_local(pool) for pool in config.pools)
    loops = {"dispatch": orchestrator.run}
    if managed:
        url = config.orchestratord.pool_managerd_url
        loops["pool-view"] = lambda: follow_pool_manager(view, pool_managerd_http, url)

    @asynccontextmanager
    async def run_data_plane(_: Litestar) -> AsyncIterator[None]:
        # Tasks a previous life left unfinished come back before anything is dispatched (OC-CTRL-2172).
        orchestrator.restore(stores.recovered)
        async with http, pool_managerd_http, background_loops(loops, on_fatal or fatal):
            yield

    app = create_service_app(
        [
            MetaController,
            TasksController,
            SessionsController,
            PoolsController,
            ControlController,
            CatalogController,
            ArtifactsController,
            metrics_endpoint,
        ],
        provides={
            "config": config,
            "build": build or BuildInfo(None, None),
            "orchestrator": orchestrator,
            "pool_managerd_http": pool_managerd_http,
            "catalog": stores.catalog,
            "models": ModelGate(stores.catalog),
            "artifacts": stores.artifacts,
            "metrics": metrics,
            "keepalive_s": config.orchestratord.sse.keepalive_ms / 1000,
        },
        # Exited in reverse: the data plane ends its tasks, their transcripts land, then the stores close.
        lifespan=[stores.lifespan, transcripts.running, run_data_plane],
        auth=auth,
    )
    app.state.fatal = fatal
    return app
