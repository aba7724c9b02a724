"""Dispatch: start queued tasks on Ready replicas with free slots, and run them (OC-CORE-1116/1117).

One loop per pool wakes on every change that can free a slot or add work
(enqueue, task end, pool view change), so the queue drains whether or not
anyone listens. A pool's first dispatch waits for the readiness probe that
measures its decode rate (OC-CORE-1112). A failure while handling one task
ends that task only; the loop goes on (OC-CORE-1160).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from msgspec import UNSET

from llorch_adapters import AdapterError, WorkerAdapter
from llorch_contracts.api import ErrorKind, PoolStatus, ReplicaStatus, SseMetrics, TaskState
from llorch_core import QueueFullError, choose_replica

from ._observer import DataPlaneObserver
from ._pool_runtime import PoolRuntime
from ._poolview import PoolView
from ._probe import PROBE_RETRY_S, measure_decode
from ._runner import Outcome, RetryError, fail, run_on_replica
from ._sessions import SessionStore
from ._settings import DataPlaneSettings
from ._task import Task

log = logging.getLogger("llorch.dataplane")


@dataclass(frozen=True, kw_only=True)
class DispatchContext:
    """What dispatch reads and calls; the orchestrator owns all of it (OC-CORE-1116)."""

    tasks: Mapping[str, Task]
    view: PoolView
    adapters: Mapping[str, WorkerAdapter]
    sessions: SessionStore
    settings: DataPlaneSettings
    observer: DataPlaneObserver
    clock: Callable[[], float]
    wall_ms: Callable[[], int]
    #: Called once a task has ended (idempotent): estimator, sessions, observers.
    finished: Callable[[Task, Outcome | None], None]
    #: A journal keeps unfinished tasks across a restart, so a task that streamed no token yet is
    #: left to run again after it instead of failing at shutdown (OC-CTRL-2174).
    resumable: bool = False


class Dispatcher:
    """Moves tasks from pool queues onto replicas."""

    def __init__(self, context: DispatchContext) -> None:
        self.context = context

    async def loop(self, runtime: PoolRuntime, group: asyncio.TaskGroup) -> None:
        """Start queued tasks whenever a Ready replica has a free slot, listener or not (OC-CORE-1116)."""
        while True:
            runtime.wake.clear()
            try:
                self._start_ready_tasks(runtime, group)
            except Exception:  # a bug in one step must not stop dispatch for good (OC-CORE-1160)
                log.exception("pool %s: a dispatch step failed; dispatch goes on", runtime.pool_id)
            await runtime.wake.wait()

    def _start_ready_tasks(self, runtime: PoolRuntime, group: asyncio.TaskGroup) -> None:
        context = self.context
        reported = context.view.get(runtime.pool_id)
        pool = None if reported is None else runtime.usable(reported, context.clock())
        if pool is not None and not runtime.estimator.seeded:
            # Measure the pool's decode rate before predicting or dispatching (OC-CORE-1112).
            if not runtime.probing and (replica := choose_replica(pool, dict(runtime.active), None)):
                runtime.probing = True
                runtime.active[replica.replica_id] += 1
                group.create_task(self._probe(runtime, replica))
            return
        while pool is not None and len(runtime.queue):
            if choose_replica(pool, dict(runtime.active), None) is None:
                return
            task_id = runtime.queue.pop(context.clock())
            if task_id is None:
                return
            task = context.tasks.get(task_id)
            if task is None or task.terminal:
                continue
            try:
                self._start(runtime, pool, task, group)
            except Exception as exc:  # end this task, keep dispatching the others (OC-CORE-1160)
                log.exception("task %s: could not be dispatched", task_id)
                message = f"internal error: {type(exc).__name__}"
                fail(task, ErrorKind.INTERNAL, message, retriable=True, retry_after_ms=1000)
                context.finished(task, None)

    def _start(self, runtime: PoolRuntime, pool: PoolStatus, task: Task, group: asyncio.TaskGroup) -> None:
        if task.request.model_ref != pool.model_ref:
            # The pool was reloaded to another model while the task waited (OC-CORE-1165).
            message = f"pool {pool.pool_id} now serves {pool.model_ref!r}, not {task.request.model_ref!r}"
            fail(task, ErrorKind.POOL_UNAVAILABLE, message, retriable=False)
            self.context.finished(task, None)
            return
        preferred = self.context.sessions.preferred_replica(task.task_id, pool)
        # Some replica is free, so this finds one; the session's last replica first (OC-CORE-1013).
        replica = choose_replica(pool, dict(runtime.active), preferred)
        assert replica is not None
        # Reserve the slot before the request (OC-CORE-1117); the runner's done callback gives it back
        # however the runner ends, even when a cancel lands before its first step (OC-CORE-1161).
        runtime.active[replica.replica_id] += 1
        task.state = TaskState.running
        task.replica_id = replica.replica_id
        runner = group.create_task(self._run(runtime, task, replica))
        task.runner = runner
        runner.add_done_callback(lambda _: self._released(runtime, task, replica.replica_id))

    def _released(self, runtime: PoolRuntime, task: Task, replica_id: str) -> None:
        runtime.active[replica_id] -= 1
        runtime.running.pop(task.task_id, None)
        if task.state == TaskState.running:  # the runner never got to run: orchestratord is stopping
            self._stopped(task)
        if task.terminal:
            self.context.finished(task, None)  # a no-op when the runner already reported its outcome
        runtime.kick()

    async def _run(self, runtime: PoolRuntime, task: Task, replica: ReplicaStatus) -> None:
        """Run one task; never raises but for cancellation, so no bug can stop the task group."""
        context = self.context
        outcome = None
        try:
            self._announce(runtime, task, replica)
            outcome = await run_on_replica(
                task,
                replica,
                context.adapters[runtime.engine],
                context.settings,
                on_first_token=lambda latency_ms: self._first_token(task, latency_ms),
                clock=context.clock,
                time_budget_s=context.sessions.time_remaining_s(task.task_id),
                # Only pool-managerd's view can show a replica restart: in-process pools are never avoided.
                on_replica_failed=None
                if context.view.is_local(task.pool_id)
                else lambda: runtime.suspect(replica, context.clock()),
            )
        except RetryError as retry:
            self._retry(runtime, task, str(retry))
        except asyncio.CancelledError:
            self._stopped(task)
            raise
        except Exception as exc:  # a bug must still end the task, not leave its stream open (OC-CORE-1160)
            log.exception("task %s crashed", task.task_id)
            fail(task, ErrorKind.INTERNAL, f"internal error: {type(exc).__name__}", retriable=False)
        finally:
            if task.terminal:
                context.finished(task, outcome)

    def _announce(self, runtime: PoolRuntime, task: Task, replica: ReplicaStatus) -> None:
        """The task starts: its `running` metrics event and the observers' `dispatched`."""
        context = self.context
        task.engine_version = replica.engine_version
        task.started_ms = context.wall_ms()
        runtime.running[task.task_id] = task
        sessions = context.sessions
        metrics = SseMetrics(
            queue_depth=len(runtime.queue),
            on_time_probability=runtime.on_time(task, 0, context.clock()),
            kv_warmth=sessions.dispatched(task.task_id, task.pool_id, replica),
            pool_id=task.pool_id,
            replica_id=replica.replica_id,
            engine_version=replica.engine_version or UNSET,
        )
        task.events.metrics(
            sessions.with_budgets(task.task_id, metrics),
            human=f"Running on {replica.replica_id} ({replica.engine_version or 'engine'}).",
        )
        context.observer.dispatched(task)

    def _first_token(self, task: Task, latency_ms: float) -> None:
        task.first_token_ms = self.context.wall_ms()
        task.first_token_latency_ms = latency_ms
        self.context.observer.first_token(task, latency_ms)

    def _stopped(self, task: Task) -> None:
        """orchestratord stops under a running task (OC-CTRL-2174)."""
        if task.terminal:
            return  # a cancel ended it first
        if self.context.resumable and not task.events.tokens:
            task.state = TaskState.queued  # the journal brings it back after the restart
            return
        message = "orchestratord stopped while the task ran"
        fail(task, ErrorKind.INTERNAL, message, retriable=True, retry_after_ms=1000)

    def _retry(self, runtime: PoolRuntime, task: Task, why: str) -> None:
        """Put a task whose replica failed before its first token back at the head (OC-CORE-1118)."""
        task.retried = True
        task.replica_id = None
        try:
            runtime.queue.push_front(task.task_id, task.priority, task.admitted_at)
        except QueueFullError as full:
            fail(task, full.kind, f"{why}; {full.message}", retriable=True, retry_after_ms=1000)
            return
        task.state = TaskState.queued
        log.warning("task %s: %s; queued again at the head", task.task_id, why)

    async def _probe(self, runtime: PoolRuntime, replica: ReplicaStatus) -> None:
        """The readiness probe: a short real generation whose rate and first-token latency seed estimates."""
        context = self.context
        try:
            rate, first_ms = await measure_decode(
                context.adapters[runtime.engine], replica.endpoint, context.clock
            )
            runtime.estimator.seed(rate, first_ms)
            log.info(
                "pool %s: probe measured %.0f tokens/s, first token %.1f ms", runtime.pool_id, rate, first_ms
            )
        except Exception as exc:  # a failing probe only delays dispatch; pool-managerd handles the replica
            if isinstance(exc, AdapterError):
                runtime.suspect(replica, context.clock())
            log.warning("pool %s: readiness probe on %s failed: %s", runtime.pool_id, replica.replica_id, exc)
            await asyncio.sleep(PROBE_RETRY_S)
        finally:
            runtime.active[replica.replica_id] -= 1
            runtime.probing = False
            runtime.kick()
