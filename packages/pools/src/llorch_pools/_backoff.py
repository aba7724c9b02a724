"""Restart pacing for crashed replicas (OC-POOL-3011): exponential backoff plus a restart-storm limit."""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

from llorch_contracts.config import SupervisionConfig


@dataclass
class RestartPolicy:
    """Delay before restart n (1-based) and whether restarts are still allowed.

    Delay: initial × 2^(n-1), capped at max, with ±jitter%; a replica that ran
    for `stable_run_ms` resets the count. More than `restart_limit` restarts in
    `restart_window_ms` is a storm: supervision stops and the replica is failed.
    """

    config: SupervisionConfig
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0
    _recent_ms: deque[float] = field(default_factory=deque)

    def record_failure(self, now_ms: float, ran_for_ms: float) -> None:
        if ran_for_ms >= self.config.stable_run_ms:
            self.failures = 0
        self.failures += 1
        self._recent_ms.append(now_ms)
        while self._recent_ms and now_ms - self._recent_ms[0] > self.config.restart_window_ms:
            self._recent_ms.popleft()

    def storm(self) -> bool:
        return len(self._recent_ms) >= self.config.restart_limit

    def delay_ms(self) -> float:
        exponent = min(max(self.failures - 1, 0), 16)
        ceiling = float(self.config.backoff_max_ms)
        base = min(float(self.config.backoff_initial_ms) * 2.0**exponent, ceiling)
        jitter = base * float(self.config.backoff_jitter_pct) / 100.0
        return min(max(0.0, base + self.rng.uniform(-jitter, jitter)), ceiling)
