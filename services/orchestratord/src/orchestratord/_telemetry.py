"""Metrics and narrated JSON logs from real data-plane events (OC-METRICS-7101, ORCH-3027, ORCH-3300).

Counters move only when the event they count happens; gauges are read from
live state at scrape time. No value is ever seeded.
"""

from __future__ import annotations

import logging

from llorch_contracts.api import ErrorKind, Placement, PlacementMode, Priority, TaskState
from llorch_dataplane import Orchestrator, Task
from llorch_metrics import ServiceMetrics

SERVICE = "orchestratord"
UNASSIGNED = "none"
_REJECT_REASONS = {
    ErrorKind.ADMISSION_REJECT,
    ErrorKind.QUEUE_FULL_DROP_LRU,
    ErrorKind.INVALID_PARAMS,
    ErrorKind.POOL_UNREADY,
    ErrorKind.POOL_UNAVAILABLE,
    ErrorKind.REPLICA_EXHAUSTED,
}
narration = logging.getLogger("llorch.narration")


def _fields(task: Task, **extra: object) -> dict[str, object]:
    """The log fields every task line carries (ORCH-3027, OC-CORE-1040)."""
    session = task.request.session_id
    position, predicted = task.admitted_wait
    return {
        "task_id": task.task_id,
        "correlation_id": task.correlation_id,
        "identity": task.identity,
        "session_id": session if isinstance(session, str) else None,
        "engine": task.engine,
        "engine_version": task.engine_version,
        "pool_id": task.pool_id,
        "replica_id": task.replica_id,
        "model_id": task.request.model_ref,
        "tokens_in": task.tokens_in,
        "tokens_out": task.events.tokens,
        "decode_time_ms": task.decode_time_ms,
        "queue_position": position,
        "predicted_start_ms": predicted,
        "first_token_ms": task.first_token_latency_ms,
        **extra,
    }


def narrate(action: str, human: str, **fields: object) -> None:
    """One JSON log line with a short human sentence (ORCH-3300..3312)."""
    narration.info(human, extra={"action": action, "fields": fields})


class DataPlaneTelemetry:
    """A DataPlaneObserver that counts into the metrics contract and narrates each step."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.metrics = metrics

    def admitted(self, task: Task, queue_position: int, predicted_start_ms: int) -> None:
        self.metrics.counter(
            "tasks_enqueued_total",
            engine=task.engine,
            engine_version=task.engine_version or "unknown",
            pool_id=task.pool_id,
            replica_id=UNASSIGNED,
            priority=str(task.priority),
        ).inc()
        self.metrics.counter(
            "placement_decisions_total", outcome="assigned", pinned=_pinned(task), fallback="false"
        ).inc()
        narrate(
            "admission",
            f"Accepted task into pool {task.pool_id}: position {queue_position}, "
            f"start expected in about {predicted_start_ms} ms.",
            **_fields(task),
        )

    def rejected(self, engine: str, kind: ErrorKind, policy: str | None, message: str) -> None:
        if kind in _REJECT_REASONS:
            self.metrics.counter("tasks_rejected_total", engine=engine, reason=kind.value).inc()
        if policy:
            self.metrics.counter("admission_backpressure_events_total", engine=engine, policy=policy).inc()
        narrate(
            "admission", f"Refused a task ({kind.value}): {message}", engine=engine, error_kind=kind.value
        )

    def dispatched(self, task: Task) -> None:
        self.metrics.counter(
            "tasks_started_total",
            engine=task.engine,
            engine_version=task.engine_version or "unknown",
            pool_id=task.pool_id,
            replica_id=task.replica_id or UNASSIGNED,
            priority=str(task.priority),
        ).inc()
        narrate("placement", f"Started the task on replica {task.replica_id}.", **_fields(task))

    def first_token(self, task: Task, latency_ms: float) -> None:
        self.metrics.histogram(
            "latency_first_token_ms",
            engine=task.engine,
            engine_version=task.engine_version or "unknown",
            pool_id=task.pool_id,
            priority=str(task.priority),
        ).observe(latency_ms)
        narrate(
            "stream_start",
            f"First token after {latency_ms:.0f} ms.",
            **_fields(task),
        )

    def ended(self, task: Task) -> None:
        labels = {
            "engine": task.engine,
            "engine_version": task.engine_version or "unknown",
            "pool_id": task.pool_id,
            "replica_id": task.replica_id or UNASSIGNED,
        }
        if task.replica_id is not None:
            self.metrics.counter("tokens_in_total", **labels).inc(task.tokens_in)
            self.metrics.counter("tokens_out_total", **labels).inc(task.events.tokens)
        if task.state == TaskState.completed:
            self.metrics.histogram(
                "latency_decode_ms",
                engine=task.engine,
                engine_version=task.engine_version or "unknown",
                pool_id=task.pool_id,
                priority=str(task.priority),
            ).observe(task.decode_time_ms)
        if task.state == TaskState.canceled:
            self.metrics.counter("tasks_canceled_total", reason="client", **labels).inc()
            narrate(
                "cancel",
                f"Canceled after {task.events.tokens} token(s) at the client's request.",
                **_fields(task),
            )
            return
        if task.error is not None and task.error.code == ErrorKind.QUEUE_FULL_DROP_LRU:
            self.metrics.counter(
                "tasks_rejected_total", engine=task.engine, reason=task.error.code.value
            ).inc()
        outcome = task.error.code.value if task.error is not None else "completed"
        narrate(
            "stream_end",
            f"Task ended ({outcome}) after {task.events.tokens} token(s), {task.decode_time_ms} ms decoding.",
            **_fields(task, outcome=outcome),
        )


def _pinned(task: Task) -> str:
    placement = task.request.placement
    return "true" if isinstance(placement, Placement) and placement.mode == PlacementMode.pin else "false"


def refresh_queue_gauges(metrics: ServiceMetrics, orchestrator: Orchestrator) -> None:
    """queue_depth per pool and priority, read from the live queues at scrape time."""
    metrics.metric("queue_depth").clear()
    for runtime in orchestrator.runtimes.values():
        pool = orchestrator.view.get(runtime.pool_id)
        version = next((r.engine_version for r in pool.replicas if r.engine_version), None) if pool else None
        for priority in Priority:
            metrics.gauge(
                "queue_depth",
                engine=runtime.engine,
                engine_version=version or "unknown",
                pool_id=runtime.pool_id,
                priority=str(priority),
            ).set(runtime.queue.depth(priority))
