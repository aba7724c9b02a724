"""Per-pool rate estimates and the slot simulation behind `predicted_start_ms` and `on_time_probability`."""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

from msgspec import UNSET

from llorch_contracts.api import TaskRequest

#: OC-CORE-1111: below this many completions the pool's mean of `tokens_out` is not trusted yet.
MIN_COMPLETIONS_FOR_MEAN = 10
#: Relative spread of a prediction before any completed task has shown how variable the pool is.
DEFAULT_RELATIVE_SPREAD = 0.25
#: Bounds of `spread_ms`: a floor so that a short prediction is not treated as certain, a ceiling so that
#: a far one still says something.
MIN_SPREAD_MS = 50.0
MAX_SPREAD_MS = 3_600_000.0
_JUST_BELOW_HALF = math.nextafter(0.5, 0.0)


class RateEstimator:
    """One pool's measured decode rate and first-token latency per slot (OC-CORE-1112).

    Both are exponentially weighted means over completed tasks with weight `alpha` for the newest one.
    They start from the readiness probe's measurement (`seed`), never from a constant; until then the
    estimator is unseeded and predictions that need a rate raise `ValueError`.
    """

    def __init__(self, *, alpha: float = 0.2) -> None:
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self._tokens_per_s: float | None = None
        self._first_token_ms: float | None = None
        self._relative_spread = DEFAULT_RELATIVE_SPREAD
        self._completed = 0
        self._mean_tokens_out = 0.0

    @property
    def seeded(self) -> bool:
        """Whether a decode rate is known (from the probe or a completed task)."""
        return self._tokens_per_s is not None and self._first_token_ms is not None

    @property
    def tokens_per_s(self) -> float:
        """Decode tokens per second per slot; `ValueError` while unseeded."""
        if self._tokens_per_s is None:
            raise ValueError("the pool's decode rate is not measured yet (no readiness probe, no completion)")
        return self._tokens_per_s

    @property
    def first_token_ms(self) -> float:
        """Time from dispatch to the first token; `ValueError` while unseeded."""
        if self._first_token_ms is None:
            raise ValueError("the pool's first-token latency is not measured yet")
        return self._first_token_ms

    @property
    def completed(self) -> int:
        """How many completed tasks have been observed."""
        return self._completed

    @property
    def relative_spread(self) -> float:
        """Weighted mean of |observed rate / estimated rate − 1|: how far predictions tend to be off."""
        return self._relative_spread

    def seed(self, tokens_per_s: float, first_token_ms: float) -> None:
        """Take the readiness probe's measurement: the first one sets the means, later ones are blended in."""
        if tokens_per_s <= 0 or first_token_ms < 0:
            raise ValueError(f"invalid probe measurement: {tokens_per_s} tok/s, {first_token_ms} ms")
        self._update(tokens_per_s, first_token_ms)

    def observe(self, tokens_out: int, decode_time_ms: float, first_token_ms: float | None) -> None:
        """Fold in one completed task: its decode rate, first-token latency and output length."""
        if tokens_out < 0 or decode_time_ms < 0:
            raise ValueError(f"invalid completion: {tokens_out} tokens in {decode_time_ms} ms")
        # OC-CORE-1111: the running (arithmetic) mean of tokens_out over every completion.
        self._completed += 1
        self._mean_tokens_out += (tokens_out - self._mean_tokens_out) / self._completed
        # A task with no tokens or no measurable decode time says nothing about the rate.
        rate = tokens_out * 1000 / decode_time_ms if tokens_out > 0 and decode_time_ms > 0 else None
        self._update(rate, first_token_ms)

    def expected_tokens(self, task: TaskRequest) -> int:
        """The task's expected output length (OC-CORE-1111)."""
        if task.expected_tokens is not UNSET:
            return task.expected_tokens
        if self._completed < MIN_COMPLETIONS_FOR_MEAN:
            return task.max_tokens
        return min(task.max_tokens, math.ceil(self._mean_tokens_out))

    def spread_ms(self, predicted_finish_ms: float) -> float:
        """The uncertainty (about one standard deviation) of a prediction `predicted_finish_ms` ahead.

        `relative_spread × predicted_finish_ms`, clamped to [MIN_SPREAD_MS, MAX_SPREAD_MS]. Since
        (deadline − f) / (r·f) decreases in f, using this spread keeps `on_time_probability` monotone.
        """
        return min(MAX_SPREAD_MS, max(MIN_SPREAD_MS, self._relative_spread * predicted_finish_ms))

    def _update(self, tokens_per_s: float | None, first_token_ms: float | None) -> None:
        a = self.alpha
        if tokens_per_s is not None:
            if self._tokens_per_s is None:
                self._tokens_per_s = tokens_per_s
            else:
                error = abs(tokens_per_s / self._tokens_per_s - 1)
                self._relative_spread = (1 - a) * self._relative_spread + a * error
                self._tokens_per_s = (1 - a) * self._tokens_per_s + a * tokens_per_s
        if first_token_ms is not None:
            if self._first_token_ms is None:
                self._first_token_ms = first_token_ms
            else:
                self._first_token_ms = (1 - a) * self._first_token_ms + a * first_token_ms


def predict_start_ms(
    running_remaining_tokens: Sequence[int],
    ahead_expected_tokens: Sequence[int],
    slots_total: int,
    estimator: RateEstimator,
    *,
    preparation_remaining_ms: float = 0.0,
) -> int:
    """Milliseconds until a task would start, by simulating the pool's slots (OC-CORE-1110).

    Each running task frees its slot after its remaining tokens at the measured rate; each task ahead, in
    dispatch order, takes the earliest free slot for first-token latency plus its expected tokens at that
    rate; the answer is when the next slot frees, plus what remains of a preparing pool's steps.
    """
    if slots_total < 1:
        raise ValueError(f"slots_total must be at least 1, got {slots_total}")
    if len(running_remaining_tokens) > slots_total:
        raise ValueError(f"{len(running_remaining_tokens)} running tasks exceed {slots_total} slots")
    free_at = [0.0] * (slots_total - len(running_remaining_tokens))
    if running_remaining_tokens or ahead_expected_tokens:
        ms_per_token = 1000 / estimator.tokens_per_s
        free_at += [max(0, n) * ms_per_token for n in running_remaining_tokens]
        heapq.heapify(free_at)
        for tokens in ahead_expected_tokens:
            start = heapq.heappop(free_at)
            heapq.heappush(free_at, start + estimator.first_token_ms + max(0, tokens) * ms_per_token)
    return math.ceil(min(free_at) + max(0.0, preparation_remaining_ms))


def predict_finish_ms(predicted_start_ms: int, expected_tokens: int, estimator: RateEstimator) -> int:
    """Milliseconds until a task would end: its start, first-token latency and expected tokens' decode."""
    decode_ms = max(0, expected_tokens) * 1000 / estimator.tokens_per_s
    return math.ceil(predicted_start_ms + estimator.first_token_ms + decode_ms)


def on_time_probability(predicted_finish_ms: float, deadline_ms: float | None, spread_ms: float) -> float:
    """The chance that a task finishes by its deadline (OC-CORE-1115); both times count from now.

    A logistic in the slack: `1 / (1 + exp(−(deadline − finish) / s))` with `s = spread · √3 / π`, the
    logistic whose standard deviation is `spread_ms`. It is 0.5 exactly at the deadline, below 0.5 after
    it, non-increasing as the finish moves later, and 1.0 when there is no deadline.
    """
    if deadline_ms is None:
        return 1.0
    if spread_ms <= 0:
        raise ValueError(f"spread_ms must be positive, got {spread_ms}")
    z = (deadline_ms - predicted_finish_ms) / (spread_ms * math.sqrt(3) / math.pi)
    # Two branches keep exp() from overflowing.
    if z >= 0:
        return 1 / (1 + math.exp(-z))
    e = math.exp(z)
    # A slack too small against the spread rounds to exactly 0.5; a late finish must still score below it.
    return min(e / (1 + e), _JUST_BELOW_HALF)
