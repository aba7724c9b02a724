"""Rate estimates, the slot simulation of predicted_start_ms, and on_time_probability."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llorch_contracts.api import TaskRequest
from llorch_core import (
    MIN_COMPLETIONS_FOR_MEAN,
    RateEstimator,
    on_time_probability,
    predict_finish_ms,
    predict_start_ms,
)


def estimator(tokens_per_s: float = 100.0, first_token_ms: float = 50.0) -> RateEstimator:
    est = RateEstimator()
    est.seed(tokens_per_s, first_token_ms)
    return est


token_lists = st.lists(st.integers(0, 2000), max_size=8)
rates = st.floats(1.0, 5000.0)


@pytest.mark.req("OC-CORE-1110")
def test_slot_simulation_by_hand() -> None:
    est = estimator(100.0, 50.0)  # 10 ms per token
    # One free slot, nothing ahead: the task starts now.
    assert predict_start_ms([], [], 1, est) == 0
    assert predict_start_ms([30], [], 2, est) == 0
    # Two busy slots free at 300 ms and 100 ms; nothing ahead: the earlier one.
    assert predict_start_ms([30, 10], [], 2, est) == 100
    # The task ahead takes the slot freeing at 100 ms and holds it 50 + 400 ms; ours gets the one at 300.
    assert predict_start_ms([30, 10], [40], 2, est) == 300
    # Two ahead: the first holds 100 → 550, the second (first token only) 300 → 350; ours starts at 350.
    assert predict_start_ms([30, 10], [40, 0], 2, est) == 350
    # Three ahead: the third takes the slot free at 350 until 350 + 50 + 100 = 500; ours starts at 500.
    assert predict_start_ms([30, 10], [40, 0, 10], 2, est) == 500
    # A preparing pool adds what remains of its preparation.
    assert predict_start_ms([], [], 1, est, preparation_remaining_ms=2500) == 2500


@pytest.mark.req("OC-CORE-1110")
@given(token_lists, token_lists, st.integers(0, 2000), st.integers(0, 4), st.tuples(rates, st.floats(0, 500)))
def test_start_is_monotone_in_tasks_ahead_and_their_tokens(
    running: list[int], ahead: list[int], extra: int, free: int, rate: tuple[float, float]
) -> None:
    est = estimator(*rate)
    slots = len(running) + free or 1
    base = predict_start_ms(running, ahead, slots, est)
    assert base >= 0
    # One more task ahead, anywhere in the order, never makes the start earlier.
    for i in range(len(ahead) + 1):
        assert predict_start_ms(running, [*ahead[:i], extra, *ahead[i:]], slots, est) >= base
    # More tokens for any task ahead or running never make it earlier either.
    for i in range(len(ahead)):
        assert predict_start_ms(running, [*ahead[:i], ahead[i] + extra, *ahead[i + 1 :]], slots, est) >= base
    for i in range(len(running)):
        bigger = [*running[:i], running[i] + extra, *running[i + 1 :]]
        assert predict_start_ms(bigger, ahead, slots, est) >= base


@pytest.mark.req("OC-CORE-1110")
@given(token_lists, st.integers(1, 8))
def test_start_is_zero_with_a_free_slot_and_nothing_ahead(running: list[int], free: int) -> None:
    assert predict_start_ms(running, [], len(running) + free, estimator()) == 0


@pytest.mark.req("OC-CORE-1110")
@given(token_lists, token_lists, st.integers(1, 4))
def test_a_slower_measured_rate_never_predicts_an_earlier_start(
    running: list[int], ahead: list[int], slots: int
) -> None:
    running = running[:slots]
    fast, slow = estimator(200.0, 20.0), estimator(100.0, 40.0)
    assert predict_start_ms(running, ahead, slots, slow) >= predict_start_ms(running, ahead, slots, fast)


def test_predictions_refuse_impossible_slot_counts() -> None:
    with pytest.raises(ValueError, match="slots_total"):
        predict_start_ms([], [], 0, estimator())
    with pytest.raises(ValueError, match="exceed"):
        predict_start_ms([1, 1], [], 1, estimator())


def test_finish_adds_first_token_latency_and_decode() -> None:
    assert predict_finish_ms(300, 40, estimator(100.0, 50.0)) == 300 + 50 + 400


@pytest.mark.req("OC-CORE-1112")
def test_rates_are_seeded_by_the_probe_and_then_weighted_towards_completions() -> None:
    est = RateEstimator(alpha=0.5)
    assert not est.seeded
    with pytest.raises(ValueError, match="not measured"):
        predict_start_ms([5], [], 1, est)
    assert predict_start_ms([], [], 1, est) == 0  # no rate needed, none invented
    est.seed(100.0, 40.0)
    assert (est.tokens_per_s, est.first_token_ms) == (100.0, 40.0)
    est.observe(tokens_out=100, decode_time_ms=500.0, first_token_ms=80.0)  # 200 tok/s
    assert est.tokens_per_s == pytest.approx(150.0)
    assert est.first_token_ms == pytest.approx(60.0)
    est.observe(tokens_out=0, decode_time_ms=0.0, first_token_ms=None)  # says nothing about rates
    assert est.tokens_per_s == pytest.approx(150.0)
    assert est.first_token_ms == pytest.approx(60.0)
    assert est.completed == 2


@pytest.mark.req("OC-CORE-1112")
def test_observed_variability_widens_the_spread() -> None:
    steady, jumpy = estimator(100.0), estimator(100.0)
    for _ in range(20):
        steady.observe(100, 1000.0, 50.0)
    for i in range(20):
        jumpy.observe(100, 400.0 if i % 2 else 2000.0, 50.0)
    assert jumpy.relative_spread > steady.relative_spread
    assert jumpy.spread_ms(10_000) > steady.spread_ms(10_000)


@pytest.mark.req("OC-CORE-1111")
def test_expected_tokens_uses_the_pools_mean_only_after_ten_completions() -> None:
    est = estimator()
    task = TaskRequest(model_ref="m", prompt="p", max_tokens=500)
    for _ in range(MIN_COMPLETIONS_FOR_MEAN - 1):
        est.observe(tokens_out=40, decode_time_ms=400.0, first_token_ms=50.0)
    assert est.expected_tokens(task) == 500
    est.observe(tokens_out=61, decode_time_ms=400.0, first_token_ms=50.0)  # mean 42.1
    assert est.expected_tokens(task) == 43
    assert est.expected_tokens(TaskRequest(model_ref="m", prompt="p", max_tokens=20)) == 20
    assert est.expected_tokens(TaskRequest(model_ref="m", prompt="p", max_tokens=20, expected_tokens=7)) == 7


@pytest.mark.req("OC-CORE-1115")
@given(st.integers(0, 10**9), st.integers(1, 10**9), st.floats(1e-3, 1e12))
def test_on_time_probability_bounds_and_threshold(finish: int, deadline: int, spread: float) -> None:
    p = on_time_probability(finish, deadline, spread)
    assert 0.0 <= p <= 1.0
    assert on_time_probability(finish, None, spread) == 1.0
    if finish > deadline:
        assert p < 0.5
    if finish == deadline:
        assert p == 0.5


@pytest.mark.req("OC-CORE-1115")
@given(st.integers(0, 10**8), st.integers(0, 10**8), st.integers(1, 10**8), st.floats(1e-3, 1e9))
def test_on_time_probability_never_rises_as_the_finish_moves_later(
    finish: int, delay: int, deadline: int, spread: float
) -> None:
    assert on_time_probability(finish + delay, deadline, spread) <= on_time_probability(
        finish, deadline, spread
    )


@pytest.mark.req("OC-CORE-1115")
@given(
    st.integers(0, 10**8),
    st.integers(0, 10**8),
    st.integers(1, 10**8),
    st.lists(st.floats(1.0, 10_000.0), max_size=10),
)
def test_on_time_probability_with_the_estimators_spread_is_monotone(
    finish: int, delay: int, deadline: int, decode_times_ms: list[float]
) -> None:
    est = estimator()
    for decode_time_ms in decode_times_ms:
        est.observe(100, decode_time_ms, 50.0)
    later = finish + delay
    assert on_time_probability(later, deadline, est.spread_ms(later)) <= on_time_probability(
        finish, deadline, est.spread_ms(finish)
    )


def test_on_time_probability_shape() -> None:
    # A finish one spread early is about 84% likely on time, the logistic matched to a normal's std.
    assert on_time_probability(1000, 1100, 100.0) == pytest.approx(
        1 / (1 + math.exp(-math.pi / math.sqrt(3)))
    )
    assert on_time_probability(0, 10**9, 1.0) == 1.0
    assert on_time_probability(10**9, 1, 1.0) == 0.0


@pytest.mark.req("OC-CORE-1115")
def test_a_late_finish_scores_below_half_even_against_a_vast_spread() -> None:
    # The slack vanishes against the spread and the logistic rounds to 0.5; late must still mean < 0.5.
    assert on_time_probability(1001, 1000, 1e20) < 0.5
    assert on_time_probability(1000, 1000, 1e20) == 0.5
