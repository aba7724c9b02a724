"""Dispatch: start queued tasks on Ready replicas with free slots, and run them (OC-CORE-1116/1117).

One loop per pool wakes on every change that can free a slot or add work
(enqueue, task end, pool view change), so the queue drains whether or not
anyone listens. A pool's first dispatch waits for the readiness probe that
measures its decode rate (OC-CORE-1112).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from msgspec import UNSET

from llorch_contracts.api import ErrorKind, ReplicaStatus, SseMetrics, TaskState
from llorch_core import choose_replica

from ._pool_runtime import PoolRuntime
from ._probe import PROBE_RETRY_S, measure_decode
from ._runner import RetryError, fail, run_on_replica
from ._task import Task

if TYPE_CHECKING:
    from ._orchestrator import Orchestrator

log = logging.getLogger("llorch.dataplane")


class Dispatcher:
    """Moves tasks from pool queues onto replicas for one Orchestrator."""

    def __init__(self, orchestrator: Orchestrator) -> None:
        self.orchestrator = orchestrator

    async def loop(self, runtime: PoolRuntime, group: asyncio.TaskGroup) -> None:
        """Start queued tasks whenever a Ready replica has a free slot, listener or not (OC-CORE-1116)."""
        while True:
            runtime.wake.clear()
            self._start_ready_tasks(runtime, group)
            await runtime.wake.wait()

    def _start_ready_tasks(self, runtime: PoolRuntime, group: asyncio.TaskGroup) -> None:
        pool = self.orchestrator.view.get(runtime.pool_id)
        if pool is not None and not runtime.estimator.seeded:
            # Measure the pool's decode rate before predicting or dispatching (OC-CORE-1112).
            if not runtime.probing and (replica := choose_replica(pool, dict(runtime.active), None)):
                runtime.probing = True
                runtime.active[replica.replica_id] += 1
                group.create_task(self._probe(runtime, replica))
            return
        sessions = self.orchestrator.sessions
        while pool is not None and len(runtime.queue):
            if choose_replica(pool, dict(runtime.active), None) is None:
                return
            task_id = runtime.queue.pop(self.orchestrator.clock())
            if task_id is None:
                return
            task = self.orchestrator.tasks.get(task_id)
            if task is None or task.terminal:
                continue
            # Some replica is free, so this finds one; the session's last replica first (OC-CORE-1013).
            replica = choose_replica(pool, dict(runtime.active), sessions.preferred_replica(task_id, pool))
            assert replica is not None
            runtime.active[replica.replica_id] += 1  # reserve the slot before the request (OC-CORE-1117)
            task.runner = group.create_task(self._run(runtime, task, replica))

    async def _run(self, runtime: PoolRuntime, task: Task, replica: ReplicaStatus) -> None:
        task.state = TaskState.running
        task.replica_id = replica.replica_id
        task.engine_version = replica.engine_version
        task.started_ms = self.orchestrator.wall_ms()
        runtime.running[task.task_id] = task
        sessions = self.orchestrator.sessions
        metrics = SseMetrics(
            queue_depth=len(runtime.queue),
            on_time_probability=self.orchestrator.on_time(runtime, task, 0, self.orchestrator.clock()),
            kv_warmth=sessions.dispatched(task.task_id, task.pool_id, replica),
            pool_id=task.pool_id,
            replica_id=replica.replica_id,
            engine_version=replica.engine_version or UNSET,
        )
        task.events.metrics(
            sessions.with_budgets(task.task_id, metrics),
            human=f"Running on {replica.replica_id} ({replica.engine_version or 'engine'}).",
        )
        self.orchestrator.observer.dispatched(task)
        outcome = None

        def first_token(latency_ms: float) -> None:
            task.first_token_ms = self.orchestrator.wall_ms()
            task.first_token_latency_ms = latency_ms
            self.orchestrator.observer.first_token(task, latency_ms)

        try:
            adapter = self.orchestrator.adapters[runtime.engine]
            outcome = await run_on_replica(
                task,
                replica,
                adapter,
                self.orchestrator.settings,
                on_first_token=first_token,
                clock=self.orchestrator.clock,
                time_budget_s=sessions.time_remaining_s(task.task_id),
            )
        except RetryError as retry:
            log.warning("task %s: %s; retrying once", task.task_id, retry)
            task.retried = True
            task.state = TaskState.queued
            task.replica_id = None
            runtime.queue.push_front(task.task_id, task.priority, task.admitted_at)
        except asyncio.CancelledError:
            fail(task, ErrorKind.INTERNAL, "orchestratord stopped while the task ran", retriable=True)
            raise
        except Exception as exc:  # a bug must still end the task, not leave its stream open
            log.exception("task %s crashed", task.task_id)
            fail(task, ErrorKind.INTERNAL, f"internal error: {type(exc).__name__}", retriable=False)
        finally:
            runtime.active[replica.replica_id] -= 1
            runtime.running.pop(task.task_id, None)
            if task.terminal:
                self.orchestrator.finished(task, outcome)
            runtime.kick()

    async def _probe(self, runtime: PoolRuntime, replica: ReplicaStatus) -> None:
        """The readiness probe: a short real generation whose rate and first-token latency seed estimates."""
        try:
            rate, first_ms = await measure_decode(
                self.orchestrator.adapters[runtime.engine], replica.endpoint, self.orchestrator.clock
            )
            runtime.estimator.seed(rate, first_ms)
            log.info(
                "pool %s: probe measured %.0f tokens/s, first token %.1f ms", runtime.pool_id, rate, first_ms
            )
        except Exception as exc:  # a failing probe only delays dispatch; pool-managerd handles the replica
            log.warning("pool %s: readiness probe on %s failed: %s", runtime.pool_id, replica.replica_id, exc)
            await asyncio.sleep(PROBE_RETRY_S)
        finally:
            runtime.active[replica.replica_id] -= 1
            runtime.probing = False
            runtime.kick()
