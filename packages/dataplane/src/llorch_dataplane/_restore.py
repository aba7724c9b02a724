"""Putting a journaled task back after a restart (OC-CTRL-2172, OC-CTRL-2173).

A task that never streamed a token is queued again and runs; one that did ends
with a retriable WORKER_RESET, since running it again would repeat tokens
(OC-CORE-1119). Its log continues at ids above any sent before the restart.
"""

from __future__ import annotations

from llorch_contracts.api import ErrorKind, QueueFullPolicy, SseMetrics, TaskState
from llorch_core import QueueFullError

from ._journaling import JournaledTaskLike, next_epoch_id, restored_frames
from ._pool_runtime import PoolRuntime
from ._runner import fail
from ._settings import QueueSettings
from ._task import Task

#: Suggested retry delay for restored tasks that cannot run again.
RESTART_RETRY_MS = 1000


def orphan_runtime(pool_id: str) -> PoolRuntime:
    """A stand-in runtime for a journaled task whose pool is no longer configured."""
    return PoolRuntime(pool_id, "unknown", QueueSettings(capacity=1, policy=QueueFullPolicy.reject), 0.0, 0)


def reinstate(
    task: Task, entry: JournaledTaskLike, runtime: PoolRuntime | None, *, max_events: int, now: float
) -> bool:
    """Give `task` its journaled log, then queue it again or end it; True when it ended."""
    frames = restored_frames(entry)
    task.log.restore(frames, next_epoch_id(frames, max_events))
    if task.log.terminal is not None:  # it ended, but the crash kept `ended` from the journal
        task.state = TaskState.failed if task.log.terminal == "error" else TaskState.completed
        return True
    if runtime is None:
        message = f"pool {entry.pool_id} is no longer configured"
        fail(task, ErrorKind.POOL_UNAVAILABLE, message, retriable=False)
        return True
    if any(frame.event == "token" for _, frame in frames):
        message = "orchestratord restarted while the task streamed; its tokens were not kept"
        fail(task, ErrorKind.WORKER_RESET, message, retriable=True, retry_after_ms=RESTART_RETRY_MS)
        return True
    try:
        runtime.queue.enqueue(task.task_id, task.priority, now)
    except QueueFullError as full:
        message = f"could not be queued again after a restart: {full.message}"
        fail(task, full.kind, message, retriable=True, retry_after_ms=RESTART_RETRY_MS)
        return True
    task.events.metrics(
        SseMetrics(queue_depth=len(runtime.queue), on_time_probability=1.0, kv_warmth=False),
        human="orchestratord restarted; the task is queued again.",
    )
    return False
