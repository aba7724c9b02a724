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
from collections.abc import Callable, Mapping

from msgspec import UNSET

from llorch_adapters import AdapterError, WorkerAdapter
from llorch_contracts.api import (
    EngineKind,
    ErrorKind,
    FinishReason,
    PoolState,
    PoolStatus,
    Preparation,
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
    QueueFullError,
    choose_pool,
    effective_seed,
    on_time_probability,
)

from ._admission import check_request, guard_context
from ._dispatcher import Dispatcher
from ._observer import DataPlaneObserver, NullObserver
from ._pool_runtime import PoolRuntime
from ._poolview import PoolView
from ._prep import prep_of
from ._runner import Outcome, fail
from ._sessions import SessionStore, usage_of
from ._settings import DataPlaneSettings
from ._task import Task

log = logging.getLogger("llorch.dataplane")
CANCEL_WAIT_S = 2.0
SLOT_POLL_S = 0.002


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
    ) -> None:
        self.config = config
        self.settings = DataPlaneSettings.from_config(config)
        self.view = view
        self.adapters = adapters
        self.observer = observer or NullObserver()
        self.clock = clock
        self.wall_ms = wall_ms
        self.new_task_id = new_task_id
        self.tasks: dict[str, Task] = {}
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
        self.served_refs = {pool.id: {pool.model.ref} for pool in config.pools}
        view.add_listener(self._kick_all)

    # ------------------------------------------------------------------ admission

    def admit(self, request: TaskRequest, correlation_id: str, identity: str = "localhost") -> Task:
        """Admit or refuse (AdmissionError); an admitted task's log already holds `started`."""
        check_request(request, self.settings)
        task_id = request.task_id if isinstance(request.task_id, str) else self.new_task_id()
        if (existing := self.tasks.get(task_id)) is not None:
            if existing.request == request:
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
                served_refs_by_pool=self.served_refs,
            )
            runtime = self.runtimes[pool_id]
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
            engine = str(request.engine) if request.engine is not UNSET else "unknown"
            self.observer.rejected(engine, exc.kind, None, exc.message)
            raise
        self.tasks[task_id] = task
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

    def _new_task(
        self, request: TaskRequest, task_id: str, runtime: PoolRuntime, caller: tuple[str, str], now: float
    ) -> Task:
        deadline = None if request.deadline_ms is UNSET else now + request.deadline_ms / 1000
        return Task(
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
        self.observer.ended(task)

    # ------------------------------------------------------------------ dispatch

    def _kick_all(self) -> None:
        for runtime in self.runtimes.values():
            runtime.kick()

    async def run(self) -> None:
        """Dispatch, tick and forget old tasks until cancelled; running tasks are ended on the way out."""
        dispatcher = Dispatcher(self)
        async with asyncio.TaskGroup() as group:
            for runtime in self.runtimes.values():
                group.create_task(dispatcher.loop(runtime, group))
            group.create_task(self._tick())

    async def _tick(self) -> None:
        """Each interval: refresh queued tasks' position and prediction, expire deadlines, forget old ones."""
        while True:
            await asyncio.sleep(self.settings.metrics_interval_s)
            now = self.clock()
            for runtime in self.runtimes.values():
                self._refresh_waiting(runtime, now)
            horizon = now - self.settings.retain_s
            for task_id in [
                t.task_id for t in self.tasks.values() if t.ended_at is not None and t.ended_at < horizon
            ]:
                del self.tasks[task_id]

    @staticmethod
    def on_time(runtime: PoolRuntime, task: Task, predicted_start_ms: int, now: float) -> float:
        """The chance the task meets its deadline if it starts in `predicted_start_ms` (1.0 without one)."""
        finish = runtime.predict_finish(predicted_start_ms, task)
        if task.deadline_at is None or finish is None:
            return 1.0
        deadline_ms = (task.deadline_at - now) * 1000
        return on_time_probability(finish, deadline_ms, runtime.estimator.spread_ms(finish))

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
            on_time = self.on_time(runtime, task, predicted, now)
            metrics = SseMetrics(
                queue_position=position,
                predicted_start_ms=predicted,
                queue_depth=len(runtime.queue),
                on_time_probability=on_time,
                kv_warmth=False,
            )
            task.events.metrics(
                self.sessions.with_budgets(task.task_id, metrics),
                human=f"Waiting: {position} task(s) ahead, start expected in about {predicted / 1000:.1f} s.",
                prep=prep_of(pool),
            )
