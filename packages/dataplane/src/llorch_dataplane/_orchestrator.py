"""The data plane: admit tasks, dispatch them onto Ready replicas, stream, cancel (OC-CTRL-2001..2029).

All state lives on one event loop, so every step between two awaits is
atomic: a cancel that closes a task's log to tokens before it is
acknowledged can never race a token append (ORCH-3026).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence

import msgspec
from msgspec import UNSET

from llorch_adapters import AdapterError, WorkerAdapter
from llorch_contracts.api import (
    EngineKind,
    ErrorKind,
    FinishReason,
    PoolState,
    PoolStatus,
    Preparation,
    QueueFullPolicy,
    ReplicaStatus,
    SessionInfo,
    SseMetrics,
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
    next_epoch_id,
    restored_frames,
)
from ._observer import DataPlaneObserver, NullObserver
from ._pool_runtime import PoolRuntime
from ._poolview import PoolView
from ._prep import prep_of
from ._retention import Retention
from ._runner import Outcome, fail
from ._sessions import SessionStore, usage_of
from ._settings import DataPlaneSettings, QueueSettings
from ._task import Task
from ._tasklog import TaskLog

log = logging.getLogger("llorch.dataplane")
CANCEL_WAIT_S = 2.0
SLOT_POLL_S = 0.002
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

    # ------------------------------------------------------------------ admission

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
        fail(victim, ErrorKind.QUEUE_FULL_DROP_LRU, "dropped from a full queue (drop-lru)", retriable=True,
             retry_after_ms=retry_ms)  # fmt: skip
        self.finished(victim, None)

    def queued(self, runtime: PoolRuntime, now: float) -> list[Task]:
        return [self.tasks[t] for t in runtime.queue.ordered(now) if t in self.tasks]

    # ------------------------------------------------------------------ queries and cancel

    def pool(self, pool_id: str) -> PoolStatus | None:
        """A configured pool as last reported, or `provisioning` (with the feed's problem) until reported."""
        if (reported := self.view.get(pool_id)) is not None:
            return reported
        configured = next((p for p in self.config.pools if p.id == pool_id), None)
        if configured is None:
            return None
        return PoolStatus(
            pool_id=configured.id,
            engine=EngineKind(str(configured.engine.kind)),
            model_ref=configured.model.ref,
            model_digest=None,
            live=False,
            ready=False,
            draining=False,
            state=PoolState.provisioning,
            last_error=self.view.feed_error,
            preparation=Preparation(steps=[]),
            replicas=[],
        )

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
            if task.replica_id is not None:
                await self._confirm_released(runtime, task.replica_id)
        runtime.kick()

    async def _confirm_released(self, runtime: PoolRuntime, replica_id: str) -> None:
        """Return once the engine reports the canceled request's slot free again (OC-ADAPT-5204)."""
        replica = self.replica(runtime.pool_id, replica_id)
        if replica is None:
            return
        adapter = self.adapters[runtime.engine]
        deadline = self.clock() + CANCEL_WAIT_S
        while self.clock() < deadline:
            try:
                slots = await adapter.slots(replica.endpoint)
            except AdapterError:
                return  # the replica is gone; pool-managerd will report it
            if slots.free >= slots.total - runtime.active[replica_id]:
                return
            await asyncio.sleep(SLOT_POLL_S)
        log.warning("replica %s still reports a busy slot %.1fs after a cancel", replica_id, CANCEL_WAIT_S)

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

    # ------------------------------------------------------------------ dispatch

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
            self._end_if_pool_gone(runtime, now)
            self._refresh_waiting(runtime, now)
        for forgotten in self.retention.expire(now):
            self._forget(forgotten)

    def _forget(self, task_id: str) -> None:
        self.tasks.pop(task_id, None)
        if self.journal is not None:
            self.journal.forget(task_id)

    def _end_if_pool_gone(self, runtime: PoolRuntime, now: float) -> None:
        """Queued tasks of a pool that cannot run them end after the grace period (OC-CORE-1164)."""
        unseen = self.view.unseen_reason(runtime.pool_id)
        pool = self.view.get(runtime.pool_id)
        if unseen is None and runtime.can_serve(pool):
            runtime.unavailable_since = None
            return
        if runtime.unavailable_since is None:
            runtime.unavailable_since = now
        waited = now - runtime.unavailable_since
        if waited < self.settings.pool_unavailable_s or not len(runtime.queue):
            return
        why = unseen or _why_unavailable(runtime.pool_id, pool)
        message = f"{why}; the task waited {waited:.0f} s for the pool to come back"
        for task in self.queued(runtime, now):
            runtime.queue.remove(task.task_id)
            fail(task, ErrorKind.POOL_UNAVAILABLE, message, retriable=True, retry_after_ms=NO_VIEW_RETRY_MS)
            self.finished(task, None)

    def _refresh_waiting(self, runtime: PoolRuntime, now: float) -> None:
        pool = self.pool(runtime.pool_id)
        ordered = self.queued(runtime, now)
        for position, task in enumerate(ordered):
            if task.deadline_at is not None and now >= task.deadline_at:
                runtime.queue.remove(task.task_id)
                fail(
                    task,
                    ErrorKind.DEADLINE_UNMET,
                    "the deadline passed while the task waited",
                    retriable=False,
                )
                self.finished(task, None)
                continue
            predicted = runtime.predict(pool, ordered[:position])
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
                self.sessions.with_budgets(task.task_id, metrics),
                human=f"Waiting: {position} task(s) ahead, start expected in about {predicted / 1000:.1f} s.",
                prep=prep_of(pool),
            )
            if task.terminal:  # the log's bound ended it (OC-CORE-1166)
                runtime.queue.remove(task.task_id)
                self.finished(task, None)

    # ------------------------------------------------------------------ restart

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
        self._kick_all()

    def _restore_one(self, entry: JournaledTaskLike, now: float) -> None:
        record = decode_record(entry.record)
        runtime = self.runtimes.get(entry.pool_id)
        frames = restored_frames(entry)
        caller = (record.correlation_id, record.identity)
        task = self._new_task(record.request, entry.task_id, runtime or _orphan(entry.pool_id), caller, now)
        task.admitted_ms = record.admitted_ms
        if isinstance(record.request.task_id, str):
            task.request_digest = request_digest(record.request)
        task.log.restore(frames, next_epoch_id(frames, self.settings.max_events_per_task))
        streamed = any(frame.event == "token" for _, frame in frames)
        self.tasks[task.task_id] = task
        if task.log.terminal is not None:  # it ended, but the crash kept `ended` from the journal
            task.state = TaskState.failed if task.log.terminal == "error" else TaskState.completed
            self.finished(task, None)
            return
        if runtime is None:
            message = f"pool {entry.pool_id} is no longer configured"
            fail(task, ErrorKind.POOL_UNAVAILABLE, message, retriable=False)
        elif streamed:
            message = "orchestratord restarted while the task streamed; its tokens were not kept"
            fail(task, ErrorKind.WORKER_RESET, message, retriable=True, retry_after_ms=NO_VIEW_RETRY_MS)
        else:
            try:
                runtime.queue.enqueue(task.task_id, task.priority, now)
            except QueueFullError as full:
                message = f"could not be queued again after a restart: {full.message}"
                fail(task, full.kind, message, retriable=True, retry_after_ms=NO_VIEW_RETRY_MS)
            else:
                task.events.metrics(
                    SseMetrics(queue_depth=len(runtime.queue), on_time_probability=1.0, kv_warmth=False),
                    human="orchestratord restarted; the task is queued again.",
                )
                return
        self.finished(task, None)

    def _kick_all(self) -> None:
        for runtime in self.runtimes.values():
            runtime.kick()


def request_digest(request: TaskRequest) -> bytes:
    """What identifies a request body for idempotent retries, without keeping the body."""
    return hashlib.blake2b(_encode_request(request), digest_size=16).digest()


_encode_request = msgspec.json.Encoder().encode


def _orphan(pool_id: str) -> PoolRuntime:
    """A stand-in runtime for a journaled task whose pool is no longer configured."""
    return PoolRuntime(pool_id, "unknown", QueueSettings(capacity=1, policy=QueueFullPolicy.reject), 0.0, 0)


def _why_unavailable(pool_id: str, pool: PoolStatus | None) -> str:
    if pool is None:
        return f"pool {pool_id} is gone from the pool view"
    if pool.draining:
        return f"pool {pool_id} is draining"
    reason = f"pool {pool_id} is {pool.state.value} with no Ready replica"
    return f"{reason}: {pool.last_error}" if pool.last_error else reason
