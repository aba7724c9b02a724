"""orchestratord's `/metrics` (OC-METRICS-7101): contract metrics, gauges refreshed per scrape."""

from __future__ import annotations

from litestar import Response, get
from litestar.di import NamedDependency

from llorch_dataplane import Orchestrator
from llorch_metrics import ServiceMetrics

from ._telemetry import refresh_queue_gauges


@get("/metrics", sync_to_thread=False)
def metrics_endpoint(
    metrics: NamedDependency[ServiceMetrics], orchestrator: NamedDependency[Orchestrator]
) -> Response[bytes]:
    refresh_queue_gauges(metrics, orchestrator)
    # Litestar appends the charset to text media types itself.
    return Response(metrics.exposition(), media_type=metrics.content_type.removesuffix("; charset=utf-8"))
