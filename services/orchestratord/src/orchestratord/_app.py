"""The orchestratord app factory: importing this module has no side effects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx
from litestar import Litestar

from llorch_adapters import LlamaCppAdapter, MockAdapter, WorkerAdapter
from llorch_contracts.config import LlorchConfig
from llorch_dataplane import Orchestrator, PoolView, follow_pool_manager
from llorch_http import BuildInfo, create_service_app
from llorch_metrics import ServiceMetrics

from ._meta import MetaController
from ._metrics import metrics_endpoint
from ._pool_api import PoolsController
from ._pools import is_local, mock_pool_status
from ._tasks import TasksController
from ._telemetry import SERVICE, DataPlaneTelemetry

# Engines stream for minutes; only connecting is bounded here, decode limits are the watchdog's.
ENGINE_TIMEOUT = httpx.Timeout(10.0, read=None)
ENGINE_LIMITS = httpx.Limits(max_connections=512, max_keepalive_connections=64)


def create_app(
    config: LlorchConfig,
    build: BuildInfo | None = None,
    *,
    adapters: Mapping[str, WorkerAdapter] | None = None,
    follow_pool_managerd: bool = True,
) -> Litestar:
    """Wire orchestratord: the lifespan runs dispatch and follows pool-managerd's pool view."""
    metrics = ServiceMetrics(SERVICE)
    http = httpx.AsyncClient(timeout=ENGINE_TIMEOUT, limits=ENGINE_LIMITS)
    view = PoolView()
    for pool in config.pools:
        if is_local(pool):
            view.put_local(mock_pool_status(pool))
    engines = adapters or {"llamacpp": LlamaCppAdapter(http), "mock": MockAdapter()}
    orchestrator = Orchestrator(config, view, engines, observer=DataPlaneTelemetry(metrics))
    managed = follow_pool_managerd and any(not is_local(pool) for pool in config.pools)

    @asynccontextmanager
    async def run_data_plane(_: Litestar) -> AsyncIterator[None]:
        async with http:
            background = [asyncio.create_task(orchestrator.run(), name="dispatch")]
            if managed:
                url = config.orchestratord.pool_managerd_url
                background.append(asyncio.create_task(follow_pool_manager(view, http, url), name="pool-view"))
            try:
                yield
            finally:
                for task in background:
                    task.cancel()
                await asyncio.gather(*background, return_exceptions=True)

    return create_service_app(
        [MetaController, TasksController, PoolsController, metrics_endpoint],
        provides={
            "config": config,
            "build": build or BuildInfo(None, None),
            "orchestrator": orchestrator,
            "metrics": metrics,
            "keepalive_s": config.orchestratord.sse.keepalive_ms / 1000,
        },
        lifespan=[run_data_plane],
    )
