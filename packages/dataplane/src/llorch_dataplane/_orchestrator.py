"""The data plane: admit tasks, dispatch them onto Ready replicas, stream, cancel (OC-CTRL-2001..2029).

All state lives on one event loop, so every step between two awaits is
atomic: a cancel that closes a task's log to tokens before it is
acknowledged can never race a token append (ORCH-3026).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence

from msgspec import UNSET

from llorch_adapters import WorkerAdapter
from llorch_contracts.api import (
    ErrorKind,
    FinishReason,
    PoolStatus,
    ReplicaStatus,
    SessionInfo,
    TaskRequest,
    TaskState,
    TaskStatus,
)
from llorch_contracts.config import LlorchConfig
from llorch_core import (
    AdmissionError,
    PoolUnavailableError,
    QueueFullError,
    choose_pool,
    effective_seed,
)

from ._admission import check_request, guard_context
from ._dispatcher import DispatchContext, Dispatcher
from ._journaling import (
    AdmissionRecord,
    JournaledTaskLike,
    JournalSink,
    committed,
    decode_record,
    encode_record,
    journal_hook,
)
from ._observer import DataPlaneObserver, NullObserver
from ._pool_runtime import PoolRuntime
from ._poolview import PoolView, unreported_status
from ._restore import orphan_runtime, reinstate
from ._retention import Retention
from ._runner import Outcome, fail
from ._sessions import SessionStore, usage_of
from ._settings import DataPlaneSettings
from ._task import Task, request_digest
from ._tasklog import TaskLog
from ._waiting import end_if_pool_gone, refresh_waiting

log = logging.getLogger("llorch.dataplane")
CANCEL_WAIT_S = 2.0
#: Longest a 202 waits for the group commit holding its admission (OC-CTRL-2120).
JOURNAL_WAIT_S = 5.0
#: Suggested retry delay while orchestratord has no current pool view (OC-CTRL-2170).
NO_VIEW_RETRY_MS = 1000


class UnknownTaskError(LookupError):
    """No task with this id (never admitted, or forgotten after its retention time)."""


class Orchestrator:
    """Tasks, queues and dispatch for every configured pool."""

    def __init__(
        self,
        config: LlorchConfig,
        view: PoolView,
        adapters: Mapping[str, WorkerAdapter],
        *,
        observer: DataPlaneObserver | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        new_task_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        journal: JournalSink | None = None,
    ) -> None:
        self.config = config
        self.settings = DataPlaneSettings.from_config(config)
        self.view = view
        self.adapters = adapters
        self.observer = observer or NullObserver()
        self.clock = clock
        self.wall_ms = wall_ms
        self.new_task_id = new_task_id
        self.journal = journal
        self.tasks: dict[str, Task] = {}
        self.retention = Retention(
            self.settings.retain_s, self.settings.retain_max_tasks, self.settings.retain_max_bytes
        )
        self.sessions = SessionStore(config.sessions, clock=clock)
        self.runtimes = {
            pool.id: PoolRuntime(
                pool.id,
                str(pool.engine.kind),
                self.settings.queues[pool.id],
                self.settings.batch_aging_s,
                pool.replicas * pool.slots_per_replica,
            )
            for pool in config.pools
        }
        view.add_listener(self._view_changed)

    def admit(self, request: TaskRequest, correlation_id: str, identity: str = "localhost") -> Task:
        """Admit or refuse (AdmissionError); an admitted task's log already holds `started`."""
        check_request(request, self.settings)
        task_id = request.task_id if isinstance(request.task_id, str) else self.new_task_id()
        if (existing := self.tasks.get(task_id)) is not None:
            if existing.request_digest == request_digest(request):
                return existing  # a retried POST of the same body is the same task
            raise AdmissionError(ErrorKind.CONFLICT, f"task {task_id} exists with a different request")
        now = self.clock()
        try:
            pool_id = choose_pool(
                request.placement if request.placement is not UNSET else None,
                request.model_ref,
                engine=None if request.engine is UNSET else request.engine,
                ctx=None if request.ctx is UNSET else request.ctx,
                pools=self.pools(),
                predicted_start_ms_by_pool={
                    pid: rt.predict(self.view.get(pid), self.queued(rt, now))
                    for pid, rt in self.runtimes.items()
                },
                # A pool serves the model the pool view reports, not the configured one: after a
                # reload the old model is no longer admitted (OC-CORE-1165).
                served_refs_by_pool={},
            )
            runtime = self.runtimes[pool_id]
            if (unseen := self.view.unseen_reason(pool_id)) is not None:
                raise PoolUnavailableError(f"no current view of pool {pool_id}: {unseen}")
            pool = self.view.get(pool_id)
            guard_context(request, pool)
            self.sessions.check(request, now)
            task = self._new_task(request, task_id, runtime, (correlation_id, identity), now)
            ahead = self.queued(runtime, now)
            predicted = runtime.predict(pool, ahead)
            self._check_deadline(task, runtime, predicted)
            enqueued = runtime.queue.enqueue(task_id, task.priority, now)
        except QueueFullError as exc:
            exc.retry_after_ms = exc.retry_after_ms or max(1000, runtime.predict(pool, []))
            self.observer.rejected(runtime.engine, exc.kind, str(exc.policy_label or "") or None, exc.message)
            raise
        except AdmissionError as exc:
            if isinstance(exc, PoolUnavailableError) and exc.retry_after_ms is None:
                exc.retry_after_ms = NO_VIEW_RETRY_MS
            engine = str(request.engine) if request.engine is not UNSET else "unknown"
            self.observer.rejected(engine, exc.kind, None, exc.message)
            raise
        self.tasks[task_id] = task
        if isinstance(request.task_id, str):
            task.request_digest = request_digest(request)
        if self.journal is not None:
            record = AdmissionRecord(
                request=request,
                correlation_id=correlation_id,
                identity=identity,
                admitted_ms=task.admitted_ms,
            )
            self.journal.admitted(task_id, pool_id, encode_record(record))
        self.sessions.admit(request, task_id, now)
        if enqueued.evicted is not None:
            self._drop(self.tasks[enqueued.evicted], runtime)
        position = runtime.queue.position(task_id, now) or 0
        predicted = runtime.predict(pool, self.queued(runtime, now)[:position])
        task.events.started(position, predicted)
        task.last_wait = task.admitted_wait = (position, predicted)
        self.observer.admitted(task, position, predicted)
        runtime.kick()
        return task

    async def journaled(self) -> None:
        """Return once every admission so far is durable in the journal (OC-CTRL-2120)."""
        if self.journal is not None and not await committed(self.journal, JOURNAL_WAIT_S):
            log.error("the task journal did not commit within %.0f s: admissions may be lost", JOURNAL_WAIT_S)

    def _new_task(
        self, request: TaskRequest, task_id: str, runtime: PoolRuntime, caller: tuple[str, str], now: float
    ) -> Task:
        deadline = None if request.deadline_ms is UNSET else now + request.deadline_ms / 1000
        hook = None if self.journal is None else journal_hook(self.journal, task_id)
        return Task(
            log=TaskLog(on_append=hook),
            max_events=self.settings.max_events_per_task,
            task_id=task_id,
            request=request,
            pool_id=runtime.pool_id,
            engine=runtime.engine,
            priority=request.priority,
            seed=effective_seed(task_id, None if request.seed is UNSET else request.seed),
            expected_tokens=runtime.estimator.expected_tokens(request),
            correlation_id=caller[0],
            identity=caller[1],
            admitted_at=now,
            admitted_ms=self.wall_ms(),
            deadline_at=deadline,
        )

    def _check_deadline(self, task: Task, runtime: PoolRuntime, predicted_start_ms: int) -> None:
        if task.deadline_at is None:
            return
        finish_ms = runtime.predict_finish(predicted_start_ms, task)
        deadline_ms = (task.deadline_at - task.admitted_at) * 1000
        if finish_ms is not None and finish_ms > deadline_ms:
            raise AdmissionError(
                ErrorKind.DEADLINE_UNMET,
                f"predicted finish in {finish_ms:.0f} ms is after the deadline of {deadline_ms:.0f} ms",
            )

    def _drop(self, victim: Task, runtime: PoolRuntime) -> None:
        """drop-lru evicted this queued task: it ends with QUEUE_FULL_DROP_LRU (OC-CORE-1103)."""
        retry_ms = max(1000, runtime.predict(self.view.get(runtime.pool_id), []))
        message = "dropped from a full queue (drop-lru)"
        fail(victim, ErrorKind.QUEUE_FULL_DROP_LRU, message, retriable=True, retry_after_ms=retry_ms)
        self.finished(victim, None)

    def queued(self, runtime: PoolRuntime, now: float) -> list[Task]:
        return [self.tasks[t] for t in runtime.queue.ordered(now) if t in self.tasks]

    def pool(self, pool_id: str) -> PoolStatus | None:
        """A configured pool as last reported, or `provisioning` (with the feed's problem) until reported."""
        if (reported := self.view.get(pool_id)) is not None:
            return reported
        configured = next((p for p in self.config.pools if p.id == pool_id), None)
        return None if configured is None else unreported_status(configured, self.view.feed_error)

    def pools(self) -> list[PoolStatus]:
        """Every configured pool, in configuration order."""
        return [pool for p in self.config.pools if (pool := self.pool(p.id)) is not None]

    def replica(self, pool_id: str, replica_id: str) -> ReplicaStatus | None:
        """A replica as the pool view last reported it."""
        pool = self.view.get(pool_id)
        return next((r for r in pool.replicas if r.replica_id == replica_id), None) if pool else None

    def session(self, session_id: str) -> SessionInfo | None:
        """A live session's info, None when unknown or expired; reading never creates one (OC-CORE-1140)."""
        return self.sessions.info(session_id, self.replica)

    def delete_session(self, session_id: str) -> bool:
        """Forget a live session; its running and queued tasks are untouched (OC-CORE-1145)."""
        return self.sessions.delete(session_id)

    def get(self, task_id: str) -> Task:
        task = self.tasks.get(task_id)
        if task is None:
            raise UnknownTaskError(task_id)
        return task

    def status(self, task_id: str) -> TaskStatus:
        task = self.get(task_id)
        position, predicted = task.last_wait if task.last_wait is not None else (None, None)
        return task.status(position, predicted)

    async def cancel(self, task_id: str) -> None:
        """Cancel a task: no token is appended once this returns, and the engine request is aborted."""
        task = self.get(task_id)
        if task.terminal:
            return  # finished tasks: a no-op
        task.log.close_tokens()
        runtime = self.runtimes[task.pool_id]
        runtime.queue.remove(task_id)
        if task.events.end(task.events.tokens, task.decode_time_ms, FinishReason.canceled):
            task.state = TaskState.canceled
            task.finish_reason = FinishReason.canceled
        self.finished(task, None)
        runner = task.runner
        if runner is not None and not runner.done():
            runner.cancel()
            await asyncio.wait({runner}, timeout=CANCEL_WAIT_S)
            if task.replica_id is not None and (replica := self.replica(task.pool_id, task.replica_id)):
                await runtime.confirm_released(self.adapters[runtime.engine], replica, self.clock)
        runtime.kick()

    def finished(self, task: Task, outcome: Outcome | None) -> None:
        if task.ended_at is not None:
            return
        task.ended_at = self.clock()
        task.ended_ms = self.wall_ms()
        if outcome is not None and outcome.finished is not None and task.state == TaskState.completed:
            finished = outcome.finished
            self.runtimes[task.pool_id].estimator.observe(
                tokens_out=finished.tokens_out,
                decode_time_ms=finished.decode_time_ms,
                first_token_ms=outcome.first_token_ms,
            )
        self.sessions.ended(task.task_id, usage_of(task, outcome.finished if outcome is not None else None))
        if self.journal is not None:
            self.journal.ended(task.task_id)
        self.observer.ended(task)
        task.drop_prompt()
        for forgotten in self.retention.add(task.task_id, task.ended_at, task.log.size_bytes()):
            self._forget(forgotten)

    def _view_changed(self) -> None:
        for runtime in self.runtimes.values():
            runtime.review(self.view.get(runtime.pool_id))
            runtime.kick()

    def dispatch_context(self) -> DispatchContext:
        return DispatchContext(
            tasks=self.tasks,
            view=self.view,
            adapters=self.adapters,
            sessions=self.sessions,
            settings=self.settings,
            observer=self.observer,
            clock=self.clock,
            wall_ms=self.wall_ms,
            finished=self.finished,
            resumable=self.journal is not None,
        )

    async def run(self) -> None:
        """Dispatch, tick and forget old tasks until cancelled; running tasks are ended on the way out."""
        dispatcher = Dispatcher(self.dispatch_context())
        async with asyncio.TaskGroup() as group:
            for runtime in self.runtimes.values():
                group.create_task(dispatcher.loop(runtime, group), name=f"dispatch:{runtime.pool_id}")
            group.create_task(self._tick(), name="tick")

    async def _tick(self) -> None:
        """Each interval: refresh waiting tasks, end those whose pool went away, forget old ones."""
        while True:
            await asyncio.sleep(self.settings.metrics_interval_s)
            try:
                self.tick(self.clock())
            except Exception:  # one bad step must not stop the periodic work for good (OC-CORE-1160)
                log.exception("periodic data-plane step failed; it runs again next interval")

    def tick(self, now: float) -> None:
        """One periodic step (public so tests drive it with an injected clock)."""
        for runtime in self.runtimes.values():
            end_if_pool_gone(
                runtime,
                self.queued(runtime, now),
                pool=self.view.get(runtime.pool_id),
                unseen=self.view.unseen_reason(runtime.pool_id),
                now=now,
                grace_s=self.settings.pool_unavailable_s,
                finished=self.finished,
            )
            self._refresh_waiting(runtime, now)
        for forgotten in self.retention.expire(now):
            self._forget(forgotten)

    def _refresh_waiting(self, runtime: PoolRuntime, now: float) -> None:
        queued = self.queued(runtime, now)
        pool = self.pool(runtime.pool_id)
        refresh_waiting(runtime, queued, pool=pool, now=now, sessions=self.sessions, finished=self.finished)

    def _forget(self, task_id: str) -> None:
        self.tasks.pop(task_id, None)
        if self.journal is not None:
            self.journal.forget(task_id)

    def restore(self, entries: Sequence[JournaledTaskLike]) -> None:
        """Rebuild the tasks a previous life left unfinished, in admission order (OC-CTRL-2172).

        A task that never streamed a token is queued again and runs; one that did ends with a
        retriable WORKER_RESET, since running it again would repeat tokens (OC-CORE-1119).
        """
        now = self.clock()
        for entry in entries:
            try:
                self._restore_one(entry, now)
            except Exception:  # one unreadable entry must not cost the others their restart
                log.exception("task %s: could not be restored from the journal", entry.task_id)
                if self.journal is not None:
                    self.journal.ended(entry.task_id)
        for runtime in self.runtimes.values():
            self._refresh_waiting(runtime, now)  # positions and predictions, as at admission
            runtime.kick()

    def _restore_one(self, entry: JournaledTaskLike, now: float) -> None:
        record = decode_record(entry.record)
        runtime = self.runtimes.get(entry.pool_id)
        caller = (record.correlation_id, record.identity)
        task = self._new_task(
            record.request, entry.task_id, runtime or orphan_runtime(entry.pool_id), caller, now
        )
        task.admitted_ms = record.admitted_ms
        if isinstance(record.request.task_id, str):
            task.request_digest = request_digest(record.request)
        self.tasks[task.task_id] = task
        if reinstate(task, entry, runtime, max_events=self.settings.max_events_per_task, now=now):
            self.finished(task, None)
