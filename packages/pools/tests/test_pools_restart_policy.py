"""The restart rules as a pure state machine, with the default configuration and explicit times."""

from __future__ import annotations

import random

import pytest

from llorch_contracts.api import BreakerState
from llorch_contracts.config import SupervisionConfig
from llorch_pools import RestartPolicy

DEFAULTS = SupervisionConfig()
S = 1000.0  # one second in ms


def policy(seed: int = 7) -> RestartPolicy:
    return RestartPolicy(DEFAULTS, random.Random(seed))


def quick_crash(p: RestartPolicy, now_ms: float, ready_ms: float = 2 * S) -> float:
    """Ready at `now_ms`, crash `ready_ms` later; returns the delay the policy asks for."""
    p.ready(now_ms)
    verdict = p.failed(now_ms + ready_ms)
    assert verdict.breaker is BreakerState.closed
    return verdict.delay_ms


@pytest.mark.req("OC-POOL-3142")
def test_defaults_double_from_one_second_to_sixty_with_ten_percent_jitter() -> None:
    assert (DEFAULTS.backoff_initial_ms, DEFAULTS.backoff_max_ms, DEFAULTS.backoff_jitter_pct) == (
        1000,
        60000,
        10,
    )
    p = policy()
    delays = [quick_crash(p, i * 100 * S) for i in range(9)]
    bases = [1, 2, 4, 8, 16, 32, 60, 60, 60]
    for delay, base in zip(delays, bases, strict=True):
        assert 0.9 * base * S <= delay <= min(1.1 * base, 60) * S
    assert len({round(d / (b * S), 6) for d, b in zip(delays, bases, strict=True)}) > 1, "jitter varies"


@pytest.mark.req("OC-POOL-3142")
def test_backoff_resets_after_stable_readiness_not_after_process_run_time() -> None:
    p = policy()
    for i in range(4):
        quick_crash(p, i * 100 * S)
    assert p.failures == 4
    # 200 s starting + 150 s Ready ran 350 s, more than stable_run_ms, but readiness was 150 s.
    p.ready(1000 * S + 200 * S)
    assert p.failed(1000 * S + 350 * S).delay_ms >= 0.9 * 16 * S
    assert p.failures == 5
    # Ready for exactly stable_run_ms: n starts again at 1.
    p.ready(2000 * S)
    delay = p.failed(2000 * S + DEFAULTS.stable_run_ms).delay_ms
    assert 0.9 * S <= delay <= 1.1 * S
    assert p.failures == 1


@pytest.mark.req("OC-POOL-3143", "OC-POOL-3194")
def test_breaker_opens_after_five_failed_starts_then_half_opens_for_one_trial() -> None:
    p = policy()
    verdicts = [p.failed(i * 100 * S) for i in range(5)]
    assert [v.breaker for v in verdicts] == [BreakerState.closed] * 4 + [BreakerState.open]
    assert verdicts[-1].delay_ms == DEFAULTS.breaker_timeout_ms == 300_000
    assert verdicts[-1].opened_by == "failed_starts"
    p.trial()
    assert p.breaker is BreakerState.half_open
    reopened = p.failed(1000 * S)
    assert (reopened.breaker, reopened.delay_ms, reopened.opened_by) == (BreakerState.open, 300_000, "trial")
    p.trial()
    p.ready(2000 * S)
    assert (p.breaker, p.failed_starts) == (BreakerState.closed, 0)


@pytest.mark.req("OC-POOL-3194")
def test_a_start_that_becomes_ready_resets_the_failed_start_count() -> None:
    p = policy()
    for i in range(4):
        p.failed(i * 100 * S)
    quick_crash(p, 1000 * S)
    assert p.failed_starts == 0
    assert all(p.failed(2000 * S + i * 100 * S).breaker is BreakerState.closed for i in range(4))


@pytest.mark.req("OC-POOL-3193")
def test_ten_quick_crashes_with_the_default_config_are_a_storm() -> None:
    assert (DEFAULTS.restart_limit, DEFAULTS.restart_window_ms) == (10, 60000)
    p = policy()
    for i in range(9):
        quick_crash(p, i * 100 * S, ready_ms=59 * S)
    p.ready(1000 * S)
    verdict = p.failed(1000 * S + 5 * S)
    assert (verdict.breaker, verdict.opened_by, verdict.delay_ms) == (BreakerState.open, "storm", 300_000)
    p.trial()
    p.ready(2000 * S)
    assert p.breaker is BreakerState.closed
    assert p.quick_crashes == 0


@pytest.mark.req("OC-POOL-3193")
def test_slow_crashes_do_not_count_and_a_stable_run_clears_the_count() -> None:
    p = policy()
    for i in range(9):
        quick_crash(p, i * 1000 * S, ready_ms=61 * S)  # not quick: past restart_window_ms
    assert p.quick_crashes == 0
    for i in range(9):
        quick_crash(p, 10_000 * S + i * 1000 * S)
    assert p.quick_crashes == 9
    quick_crash(p, 20_000 * S, ready_ms=DEFAULTS.stable_run_ms)
    assert p.quick_crashes == 0
