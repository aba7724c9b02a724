"""The periodic step for queued tasks: keep positions and predictions current, end what can no longer run.

OC-CORE-1107/1108 (positions and predictions while waiting), OC-CORE-1109 (deadlines),
OC-CORE-1164 (a pool that cannot run its queue), OC-CORE-1166 (the log's bound).
"""

from __future__ import annotations

from collections.abc import Callable

from llorch_contracts.api import ErrorKind, PoolStatus, SseMetrics

from ._pool_runtime import PoolRuntime
from ._prep import prep_of
from ._runner import Outcome, fail
from ._sessions import SessionStore
from ._task import Task

#: Suggested retry delay for tasks ended because their pool is unavailable.
UNAVAILABLE_RETRY_MS = 1000

Finished = Callable[[Task, Outcome | None], None]


def end_if_pool_gone(
    runtime: PoolRuntime,
    queued: list[Task],
    *,
    pool: PoolStatus | None,
    unseen: str | None,
    now: float,
    grace_s: float,
    finished: Finished,
) -> None:
    """Queued tasks of a pool that cannot run them end after the grace period (OC-CORE-1164).

    `unseen` is why orchestratord has no current view of the pool, None when it has one.
    """
    if unseen is None and runtime.can_serve(pool):
        runtime.unavailable_since = None
        return
    if runtime.unavailable_since is None:
        runtime.unavailable_since = now
    waited = now - runtime.unavailable_since
    if waited < grace_s or not queued:
        return
    why = unseen or _why_unavailable(runtime.pool_id, pool)
    message = f"{why}; the task waited {waited:.0f} s for the pool to come back"
    for task in queued:
        runtime.queue.remove(task.task_id)
        fail(task, ErrorKind.POOL_UNAVAILABLE, message, retriable=True, retry_after_ms=UNAVAILABLE_RETRY_MS)
        finished(task, None)


def refresh_waiting(
    runtime: PoolRuntime,
    queued: list[Task],
    *,
    pool: PoolStatus | None,
    now: float,
    sessions: SessionStore,
    finished: Finished,
) -> None:
    """A `metrics` event for each queued task whose position or prediction changed; deadlines expire."""
    for position, task in enumerate(queued):
        if task.deadline_at is not None and now >= task.deadline_at:
            runtime.queue.remove(task.task_id)
            fail(task, ErrorKind.DEADLINE_UNMET, "the deadline passed while the task waited", retriable=False)
            finished(task, None)
            continue
        predicted = runtime.predict(pool, queued[:position])
        if (position, predicted) == task.last_wait:
            continue
        task.last_wait = (position, predicted)
        metrics = SseMetrics(
            queue_position=position,
            predicted_start_ms=predicted,
            queue_depth=len(runtime.queue),
            on_time_probability=runtime.on_time(task, predicted, now),
            kv_warmth=False,
        )
        task.events.metrics(
            sessions.with_budgets(task.task_id, metrics),
            human=f"Waiting: {position} task(s) ahead, start expected in about {predicted / 1000:.1f} s.",
            prep=prep_of(pool),
        )
        if task.terminal:  # the log's bound ended it (OC-CORE-1166)
            runtime.queue.remove(task.task_id)
            finished(task, None)


def _why_unavailable(pool_id: str, pool: PoolStatus | None) -> str:
    if pool is None:
        return f"pool {pool_id} is gone from the pool view"
    if pool.draining:
        return f"pool {pool_id} is draining"
    reason = f"pool {pool_id} is {pool.state.value} with no Ready replica"
    return f"{reason}: {pool.last_error}" if pool.last_error else reason
