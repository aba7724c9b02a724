"""Per-pool data-plane state: the queue, measured rates, and which replica slots are taken."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from llorch_adapters import AdapterError, WorkerAdapter
from llorch_contracts.api import PoolState, PoolStatus, ReplicaState, ReplicaStatus
from llorch_core import (
    PoolQueue,
    RateEstimator,
    on_time_probability,
    predict_finish_ms,
    predict_start_ms,
)

from ._settings import QueueSettings
from ._task import Task

log = logging.getLogger("llorch.dataplane")
_PREPARING = frozenset({PoolState.provisioning, PoolState.loading})
#: How long a cancel waits for the engine to report the slot free, and how often it asks.
RELEASE_WAIT_S = 2.0
SLOT_POLL_S = 0.002
#: Longest a failed replica is avoided when the pool view never shows it restart (OC-CORE-1162).
SUSPECT_MAX_S = 10.0


@dataclass(slots=True)
class _Suspect:
    """A replica whose engine just failed: avoided until the pool view shows it restarted."""

    endpoint: str
    since: float
    seen_down: bool = False


class PoolRuntime:
    """One pool as the dispatcher sees it."""

    def __init__(
        self, pool_id: str, engine: str, queue: QueueSettings, batch_aging_s: float, configured_slots: int
    ) -> None:
        self.pool_id = pool_id
        self.engine = engine
        self.configured_slots = configured_slots
        self.queue = PoolQueue(queue.capacity, queue.policy, batch_aging_s, pool_id=pool_id)
        self.estimator = RateEstimator()
        self.active: Counter[str] = Counter()
        self.running: dict[str, Task] = {}
        self.wake = asyncio.Event()
        self.probing = False
        self.suspects: dict[str, _Suspect] = {}
        #: When the pool last stopped being able to run its queue (None while it can), OC-CORE-1164.
        self.unavailable_since: float | None = None

    def kick(self) -> None:
        """Something changed that may let a task start: wake the dispatcher (OC-CORE-1116)."""
        self.wake.set()

    def suspect(self, replica: ReplicaStatus, now: float) -> None:
        """The replica's engine failed: dispatch avoids it until it restarted (OC-CORE-1162)."""
        self.suspects[replica.replica_id] = _Suspect(replica.endpoint, now)

    def review(self, pool: PoolStatus | None) -> None:
        """A new pool view: forgive replicas that went down and came back, or moved to a new endpoint."""
        replicas = {} if pool is None else {r.replica_id: r for r in pool.replicas}
        for replica_id, suspect in list(self.suspects.items()):
            replica = replicas.get(replica_id)
            if replica is None or replica.endpoint != suspect.endpoint:
                del self.suspects[replica_id]
            elif replica.state != ReplicaState.ready:
                suspect.seen_down = True
            elif suspect.seen_down:
                del self.suspects[replica_id]

    def usable(self, pool: PoolStatus, now: float) -> PoolStatus:
        """The pool without the replicas dispatch must avoid right now."""
        for replica_id, suspect in list(self.suspects.items()):
            if now - suspect.since >= SUSPECT_MAX_S:
                del self.suspects[replica_id]
        if not self.suspects:
            return pool
        replicas = [r for r in pool.replicas if r.replica_id not in self.suspects]
        return msgspec.structs.replace(pool, replicas=replicas)

    def can_serve(self, pool: PoolStatus | None) -> bool:
        """Whether queued tasks may still start here: Ready replicas, or a pool still preparing."""
        if pool is None or pool.draining:
            return False
        if any(r.state == ReplicaState.ready for r in pool.replicas):
            return True
        return pool.state in _PREPARING

    def slots_total(self, pool: PoolStatus | None) -> int:
        if pool is None or pool.draining:
            return 0
        return sum(r.slots_total for r in pool.replicas if r.state == ReplicaState.ready)

    def predict(self, pool: PoolStatus | None, ahead: list[Task]) -> int:
        """Milliseconds until a task behind `ahead` would start, by slot simulation (OC-CORE-1110).

        Until the readiness probe measured the pool's rate the answer is 0 ("unknown, soon"): nothing
        is dispatched before the probe, and the next metrics event carries the measured prediction.
        """
        if not self.estimator.seeded:
            return 0
        running = [max(t.expected_tokens - t.events.tokens, 0) for t in self.running.values()]
        # Before any replica is Ready the configured slots are the best knowledge of capacity.
        slots = max(self.slots_total(pool) or self.configured_slots, len(running), 1)
        return predict_start_ms(running, [t.expected_tokens for t in ahead], slots, self.estimator)

    def predict_finish(self, predicted_start_ms: int, task: Task) -> int | None:
        """When the task would end, or None while the pool's rate is unmeasured."""
        if not self.estimator.seeded:
            return None
        return predict_finish_ms(predicted_start_ms, task.expected_tokens, self.estimator)

    def on_time(self, task: Task, predicted_start_ms: int, now: float) -> float:
        """The chance the task meets its deadline if it starts in `predicted_start_ms` (1.0 without one)."""
        finish = self.predict_finish(predicted_start_ms, task)
        if task.deadline_at is None or finish is None:
            return 1.0
        deadline_ms = (task.deadline_at - now) * 1000
        return on_time_probability(finish, deadline_ms, self.estimator.spread_ms(finish))

    async def confirm_released(
        self, adapter: WorkerAdapter, replica: ReplicaStatus, clock: Callable[[], float]
    ) -> None:
        """Return once the engine reports a canceled request's slot free again (OC-ADAPT-5204)."""
        deadline = clock() + RELEASE_WAIT_S
        while clock() < deadline:
            try:
                slots = await adapter.slots(replica.endpoint)
            except AdapterError:
                return  # the replica is gone; pool-managerd will report it
            if slots.free >= slots.total - self.active[replica.replica_id]:
                return
            await asyncio.sleep(SLOT_POLL_S)
        log.warning(
            "replica %s still reports a busy slot %.1fs after a cancel", replica.replica_id, RELEASE_WAIT_S
        )
