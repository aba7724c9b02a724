"""pool-managerd's `/metrics`: supervision events as counters, current state as gauges (OC-POOL-3030).

Gauges are recomputed from the registry at scrape time, so they can never
drift from what `/v2/pools` says; counters count events as they happen.
"""

from __future__ import annotations

from litestar import Response, get
from litestar.di import NamedDependency

from llorch_contracts.api import ReplicaState
from llorch_metrics import ServiceMetrics
from llorch_pools import PoolRegistry

SERVICE = "pool-managerd"
_DERIVED = ("replica_state", "replica_slots", "replica_slots_free")


class PrometheusObserver:
    """A `SupervisionObserver` that counts into the contract's metrics."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.metrics = metrics

    def provisioned(self, *, engine: str, mode: str, outcome: str, duration_s: float) -> None:
        self.metrics.counter("engine_provisioning_total", engine=engine, mode=mode, outcome=outcome).inc()
        self.metrics.histogram("engine_provisioning_duration_ms", engine=engine, mode=mode).observe(
            duration_s * 1000
        )

    def preloaded(
        self, *, engine: str, engine_version: str, pool_id: str, outcome: str, duration_s: float
    ) -> None:
        labels = {"engine": engine, "engine_version": engine_version, "pool_id": pool_id, "outcome": outcome}
        self.metrics.counter("preload_outcomes_total", **labels).inc()
        if outcome == "success":
            self.metrics.histogram("preload_duration_ms", engine=engine, pool_id=pool_id).observe(
                duration_s * 1000
            )

    def restarted(
        self, *, engine: str, engine_version: str, pool_id: str, replica_id: str, reason: str
    ) -> None:
        self.metrics.counter(
            "replica_restarts_total",
            engine=engine,
            engine_version=engine_version,
            pool_id=pool_id,
            replica_id=replica_id,
            reason=reason,
        ).inc()

    def health_check_failed(self, *, engine: str, pool_id: str, replica_id: str) -> None:
        self.metrics.counter(
            "health_check_failures_total", engine=engine, pool_id=pool_id, replica_id=replica_id
        ).inc()


def refresh_state_gauges(metrics: ServiceMetrics, registry: PoolRegistry) -> None:
    """Set replica state and slot gauges from the registry (series of vanished replicas disappear)."""
    for name in _DERIVED:
        metrics.metric(name).clear()
    for pool in registry.snapshot():
        for replica in pool.replicas:
            ids = {"pool_id": pool.pool_id, "replica_id": replica.replica_id}
            for state in ReplicaState:
                metrics.gauge("replica_state", state=str(state), **ids).set(
                    1 if replica.state == state else 0
                )
            engine = {
                "engine": str(replica.engine),
                "engine_version": replica.engine_version or "unknown",
                **ids,
            }
            metrics.gauge("replica_slots", **engine).set(replica.slots_total)
            metrics.gauge("replica_slots_free", **engine).set(replica.slots_free)


@get("/metrics", sync_to_thread=False)
def metrics_endpoint(
    metrics: NamedDependency[ServiceMetrics], registry: NamedDependency[PoolRegistry]
) -> Response[bytes]:
    refresh_state_gauges(metrics, registry)
    # Litestar appends the charset to text media types itself.
    return Response(metrics.exposition(), media_type=metrics.content_type.removesuffix("; charset=utf-8"))
