"""Restart pacing for one replica (OC-POOL-3011): backoff, circuit breaker and restart-storm limit.

A pure state machine: the supervisor tells it when a start became Ready and
when the replica failed, with times from its injected clock, and it answers
how long to wait and whether the breaker is open. Nothing here sleeps.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

from llorch_contracts.api import BreakerState
from llorch_contracts.config import SupervisionConfig

# 2^16 × the smallest initial backoff already exceeds any sane cap; bounds the float.
_MAX_EXPONENT = 16


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do after a failure: wait `delay_ms`, then start again (a trial start if the breaker opened)."""

    delay_ms: float
    breaker: BreakerState
    #: Why the breaker opened: failed starts (OC-POOL-3143), a failed trial, or a storm (OC-POOL-3193).
    opened_by: Literal["failed_starts", "trial", "storm"] | None = None


@dataclass
class RestartPolicy:
    """The rules of OC-POOL-3142, 3143, 3193 and 3194 for one replica.

    - `failures` is n of the backoff: failures since the last stable run
      (`stable_run_ms` of continuous readiness, OC-POOL-3142).
    - `failed_starts` counts starts in a row that never became Ready; at
      `breaker_threshold` the breaker opens (OC-POOL-3143, OC-POOL-3194).
    - `quick_crashes` counts Ready replicas that failed within
      `restart_window_ms` of becoming Ready since the last stable run; at
      `restart_limit` the breaker opens at once (OC-POOL-3193). Backoff alone
      spaces restarts 1, 2, 4 … s apart, so a count of restarts per sliding
      window could never reach the default limit; quick crashes can.
    """

    config: SupervisionConfig
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0
    failed_starts: int = 0
    quick_crashes: int = 0
    breaker: BreakerState = BreakerState.closed
    _ready_since_ms: float | None = None

    def ready(self, now_ms: float) -> None:
        """A start became Ready: failed starts reset and a half-open breaker closes (OC-POOL-3194)."""
        self._ready_since_ms = now_ms
        self.failed_starts = 0
        if self.breaker is BreakerState.half_open:
            self.breaker = BreakerState.closed

    def failed(self, now_ms: float) -> Verdict:
        """The current start or Ready replica failed at `now_ms`: count it and say what comes next."""
        ready_ms = None if self._ready_since_ms is None else now_ms - self._ready_since_ms
        self._ready_since_ms = None
        config = self.config
        if ready_ms is not None and ready_ms >= config.stable_run_ms:
            # Readiness, not process run time, makes a run stable (OC-POOL-3142).
            self.failures = 0
            self.quick_crashes = 0
        self.failures += 1
        if ready_ms is None:
            self.failed_starts += 1
        elif ready_ms < config.restart_window_ms:
            self.quick_crashes += 1
        opened_by: Literal["failed_starts", "trial", "storm"] | None = None
        if self.quick_crashes >= config.restart_limit:
            opened_by = "storm"
            self.quick_crashes = 0  # the trial start begins a fresh count
        elif self.breaker is BreakerState.half_open:
            opened_by = "trial"
        elif self.failed_starts >= config.breaker_threshold:
            opened_by = "failed_starts"
        if opened_by is not None:
            self.breaker = BreakerState.open
            return Verdict(float(config.breaker_timeout_ms), BreakerState.open, opened_by)
        return Verdict(self.delay_ms(), BreakerState.closed)

    def trial(self) -> None:
        """The open breaker's timeout passed: the next start is its one trial (half-open)."""
        if self.breaker is BreakerState.open:
            self.breaker = BreakerState.half_open

    def delay_ms(self) -> float:
        """min(initial × 2^(n−1), max) with ±jitter %, clamped to [0, max] (OC-POOL-3142)."""
        exponent = min(max(self.failures - 1, 0), _MAX_EXPONENT)
        ceiling = float(self.config.backoff_max_ms)
        base = min(float(self.config.backoff_initial_ms) * 2.0**exponent, ceiling)
        jitter = base * float(self.config.backoff_jitter_pct) / 100.0
        return min(max(0.0, base + self.rng.uniform(-jitter, jitter)), ceiling)
