"""Run one dispatched task on one replica: relay tokens into its log, end it exactly once.

The hot path is `async for item in stream: events.token(text)`: one Struct
encode and one list append per token. A cancel closes the log to tokens
before it is acknowledged, so the first token the engine sends after it is
refused and the stream is closed, which frees the engine's slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import TypeVar

from msgspec import UNSET, UnsetType

from llorch_adapters import AdapterError, Finished, GenerationRequest, TokenDelta, WorkerAdapter
from llorch_contracts.api import ErrorEnvelope, ErrorKind, FinishReason, ReplicaStatus, Sampling, TaskState

from ._settings import DataPlaneSettings
from ._task import Task

T = TypeVar("T")


class RetryError(Exception):
    """The replica failed before the first token: requeue the task at its class's head once (OC-CORE-1118)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a run ended, for the estimator: decode facts when it completed."""

    finished: Finished | None
    first_token_ms: float | None


# The sampler profile a request gets for what it leaves out (llama.cpp's own defaults).
DEFAULT_TEMPERATURE = 0.8
DEFAULT_TOP_P = 0.95
DEFAULT_TOP_K = 40


def _given(value: T | UnsetType, default: T) -> T:
    return default if isinstance(value, UnsetType) else value


def generation_request(task: Task) -> GenerationRequest:
    """The engine request: the task's prompt and limits, its effective seed and its sampling."""
    sampling = task.request.sampling if task.request.sampling is not UNSET else Sampling()
    return GenerationRequest(
        task_id=task.task_id,
        prompt=task.request.prompt,
        max_tokens=task.request.max_tokens,
        seed=task.seed,
        temperature=_given(sampling.temperature, DEFAULT_TEMPERATURE),
        top_p=_given(sampling.top_p, DEFAULT_TOP_P),
        top_k=_given(sampling.top_k, DEFAULT_TOP_K),
        stop=tuple(_given(sampling.stop, [])),
    )


def fail(
    task: Task, kind: ErrorKind, message: str, *, retriable: bool, retry_after_ms: int | None = None
) -> None:
    """End a task with an `error` event (no-op if it already ended)."""
    if task.events.error(kind, message, retriable=retriable, retry_after_ms=retry_after_ms):
        task.state = TaskState.failed
        task.error = ErrorEnvelope(code=kind, message=message[:2048] or kind.value, retriable=retriable)


class _Relay:
    """Copies one engine stream into a task's log, noting when the first token came."""

    def __init__(
        self, task: Task, clock: Callable[[], float], on_first_token: Callable[[float], None]
    ) -> None:
        self.task = task
        self.clock = clock
        self.on_first_token = on_first_token
        self.started = clock()
        self.first_token: float | None = None
        self.finished: Finished | None = None

    async def pump(self, stream: AsyncGenerator[TokenDelta | Finished]) -> None:
        events = self.task.events
        async with contextlib.aclosing(stream):
            async for item in stream:
                if isinstance(item, TokenDelta):
                    if self.first_token is None:
                        self.first_token = self.clock()
                        self.on_first_token((self.first_token - self.started) * 1000)
                    if not events.token(item.text):
                        return  # canceled: closing the stream aborts the engine request
                else:
                    self.finished = item


#: Kinds that say the replica itself is broken (dead, unreachable, restarting), not the request.
REPLICA_FAULTS = frozenset({ErrorKind.WORKER_RESET, ErrorKind.POOL_UNAVAILABLE, ErrorKind.POOL_UNREADY})


def _adapter_failed(task: Task, replica: ReplicaStatus, exc: AdapterError, got_token: bool) -> None:
    if exc.before_first_token and not got_token and not task.retried and exc.retriable:
        raise RetryError(str(exc)) from exc
    # A second failure before any token means the pool has no replica left to try (OC-CORE-1118).
    kind = ErrorKind.REPLICA_EXHAUSTED if not got_token and exc.retriable else exc.kind
    fail(task, kind, f"{replica.replica_id}: {exc.message}", retriable=exc.retriable, retry_after_ms=1000)


def _timed_out(task: Task, wall_s: float, now: float) -> None:
    if task.deadline_at is not None and now >= task.deadline_at:
        fail(task, ErrorKind.DEADLINE_UNMET, "the task's deadline passed while it ran", retriable=False)
    else:
        message = f"decode exceeded {wall_s:g}s wall time"
        fail(task, ErrorKind.DECODE_TIMEOUT, message, retriable=True, retry_after_ms=1000)


def _conclude(task: Task, replica: ReplicaStatus, finished: Finished | None) -> None:
    """Append the `end` the engine's final frame calls for, unless the task already ended."""
    if task.log.terminal is not None:
        return  # a cancel, a watchdog, or the log's bound already ended it
    if finished is None:
        fail(
            task,
            ErrorKind.WORKER_RESET,
            f"{replica.replica_id}: the engine stream ended early",
            retriable=True,
        )
        return
    task.tokens_in = finished.tokens_in
    task.decode_time_ms = finished.decode_time_ms
    reason = FinishReason.length if finished.finish_reason == "length" else FinishReason.stop
    # `i` counts token events; `tokens_out` is the engine's own count (they differ when a frame spans tokens).
    if task.events.end(finished.tokens_out, finished.decode_time_ms, reason):
        task.state = TaskState.completed
        task.finish_reason = reason


async def run_on_replica(
    task: Task,
    replica: ReplicaStatus,
    adapter: WorkerAdapter,
    settings: DataPlaneSettings,
    *,
    on_first_token: Callable[[float], None],
    clock: Callable[[], float] = time.monotonic,
    time_budget_s: float | None = None,
    on_replica_failed: Callable[[], None] | None = None,
) -> Outcome:
    """Stream the task from the replica into its log; raises RetryError for a first, pre-token failure.

    `on_first_token(latency_ms)` is called when the first token arrives, while the stream goes on.
    `time_budget_s`, the session's remaining time budget, caps the wall timeout (OC-CORE-1147).
    `on_replica_failed()` is called when the engine failed in a way that says the replica is broken.
    """
    wall_s = settings.wall_timeout_s if time_budget_s is None else min(settings.wall_timeout_s, time_budget_s)
    budget = wall_s
    if task.deadline_at is not None:
        budget = min(budget, task.deadline_at - clock())
    relay = _Relay(task, clock, on_first_token)
    stream = adapter.generate(
        replica.endpoint,
        generation_request(task),
        first_token_timeout_s=settings.first_token_timeout_s,
        idle_timeout_s=settings.idle_timeout_s,
    )
    try:
        async with asyncio.timeout(max(budget, 0.0)):
            await relay.pump(stream)
    except AdapterError as exc:
        if exc.kind in REPLICA_FAULTS and on_replica_failed is not None:
            on_replica_failed()
        _adapter_failed(task, replica, exc, relay.first_token is not None)
    except TimeoutError:
        _timed_out(task, wall_s, clock())
    _conclude(task, replica, relay.finished)
    first_ms = None if relay.first_token is None else (relay.first_token - relay.started) * 1000
    return Outcome(relay.finished, first_ms)
