"""orchestratord's pure core: per-pool queues, start predictions, placement and seeds.

Nothing here performs I/O or reads a clock: times (seconds from a monotonic clock, or milliseconds from
now) and the pool view are passed in, so every decision is a function of its inputs.
"""

from ._errors import (
    AdmissionError,
    InvalidParamsError,
    PoolUnavailableError,
    PoolUnreadyError,
    QueueFullError,
)
from ._placement import choose_pool, choose_replica, free_vram_bytes
from ._prediction import (
    MIN_COMPLETIONS_FOR_MEAN,
    RateEstimator,
    on_time_probability,
    predict_finish_ms,
    predict_start_ms,
)
from ._queue import Enqueued, PoolQueue
from ._seed import MAX_SEED, effective_seed

__all__ = [
    "MAX_SEED",
    "MIN_COMPLETIONS_FOR_MEAN",
    "AdmissionError",
    "Enqueued",
    "InvalidParamsError",
    "PoolQueue",
    "PoolUnavailableError",
    "PoolUnreadyError",
    "QueueFullError",
    "RateEstimator",
    "choose_pool",
    "choose_replica",
    "effective_seed",
    "free_vram_bytes",
    "on_time_probability",
    "predict_finish_ms",
    "predict_start_ms",
]
