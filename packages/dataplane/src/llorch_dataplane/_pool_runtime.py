"""Per-pool data-plane state: the queue, measured rates, and which replica slots are taken."""

from __future__ import annotations

import asyncio
from collections import Counter

from llorch_contracts.api import PoolStatus, ReplicaState
from llorch_core import PoolQueue, RateEstimator, predict_finish_ms, predict_start_ms

from ._settings import QueueSettings
from ._task import Task


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

    def kick(self) -> None:
        """Something changed that may let a task start: wake the dispatcher (OC-CORE-1116)."""
        self.wake.set()

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
