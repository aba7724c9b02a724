"""The readiness probe: measure a replica's real decode rate before predicting anything (OC-CORE-1112)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from llorch_adapters import Finished, GenerationRequest, TokenDelta, WorkerAdapter

PROBE_TOKENS = 32
PROBE_TIMEOUT_S = 30.0
PROBE_RETRY_S = 1.0
_REQUEST = GenerationRequest(
    task_id="readiness-probe",
    prompt="Readiness probe.",
    max_tokens=PROBE_TOKENS,
    seed=0,
    temperature=0.8,
    top_p=0.95,
    top_k=40,
)


async def measure_decode(
    adapter: WorkerAdapter, endpoint: str, clock: Callable[[], float]
) -> tuple[float, float]:
    """(decode tokens/s, first-token ms) of one short generation on `endpoint`."""
    started = clock()
    first: float | None = None
    tokens = 0
    finished: Finished | None = None
    stream = adapter.generate(
        endpoint, _REQUEST, first_token_timeout_s=PROBE_TIMEOUT_S, idle_timeout_s=PROBE_TIMEOUT_S
    )
    async with contextlib.aclosing(stream):
        async for item in stream:
            if isinstance(item, TokenDelta):
                first = first if first is not None else clock()
                tokens += 1
            else:
                finished = item
    ended = clock()
    if first is None or finished is None:
        raise RuntimeError("the probe produced no tokens")
    decode_s = finished.decode_time_ms / 1000 if finished.decode_time_ms > 0 else ended - first
    rate = max(finished.tokens_out, tokens) / max(decode_s, 1e-6)
    return rate, (first - started) * 1000
