"""Time to first token: orchestratord against the engine called directly, sequential short tasks.

Both paths run in their own server process on the same uvicorn stack, with
the fast mock engine (no prompt delay), over a kept-alive connection each:

- direct: `POST /generate` to the bare engine server; TTFT is from sending
  the request to reading the first `token` frame.
- orchestratord: `POST /v2/tasks` (202), then `GET /v2/tasks/{id}/events`;
  TTFT is from sending the POST to reading the first `token` frame. This is
  what a client of the API sees, so it includes the second round trip the
  two-step API costs; the split is reported as `post_ms` and `events_ms`.
- orchestratord without its admission journal, the same way: the difference
  is what durability costs (the 202 waits for the group commit, OC-CTRL-2120).

Samples alternate between the paths, so drift (CPU frequency, other load)
hits both alike.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass

from sse_client import Connection, ProtocolError, tally_stream

PROMPT = "Time to first token."


@dataclass(frozen=True, slots=True)
class Percentiles:
    p50_ms: float
    p90_ms: float
    p99_ms: float
    min_ms: float

    @classmethod
    def of(cls, samples_ms: list[float]) -> Percentiles:
        cuts = statistics.quantiles(samples_ms, n=100, method="inclusive")
        return cls(statistics.median(samples_ms), cuts[89], cuts[98], min(samples_ms))


@dataclass(frozen=True, slots=True)
class TtftResult:
    samples: int
    max_tokens: int
    direct: Percentiles
    orchestratord: Percentiles
    orchestratord_post: Percentiles  # POST sent to 202 read
    orchestratord_events: Percentiles  # GET sent to first token read
    paired_overhead: Percentiles  # per pair: orchestratord minus direct
    orchestratord_no_journal: Percentiles
    paired_journal_cost: Percentiles  # per pair: orchestratord minus orchestratord without journal

    @property
    def overhead_p50_ms(self) -> float:
        """The headline: orchestratord's median TTFT minus the direct median."""
        return self.orchestratord.p50_ms - self.direct.p50_ms


def _body(max_tokens: int, seed: int) -> bytes:
    return json.dumps(
        {"model_ref": "mock-model", "prompt": PROMPT, "max_tokens": max_tokens, "seed": seed}
    ).encode()


async def direct_ttft_ms(connection: Connection, max_tokens: int, seed: int) -> float:
    posted = time.perf_counter()
    tally = await tally_stream(await connection.request("POST", "/generate", _body(max_tokens, seed)))
    if tally.first_token_at is None:
        raise ProtocolError(f"engine stream had no token: {tally.terminal!r}")
    return (tally.first_token_at - posted) * 1000


async def orchestratord_ttft_ms(
    connection: Connection, max_tokens: int, seed: int
) -> tuple[float, float, float]:
    """(TTFT, POST round trip, GET to first token), in ms."""
    posted = time.perf_counter()
    admitted = await connection.request("POST", "/v2/tasks", _body(max_tokens, seed))
    answer = await admitted.read()
    accepted = time.perf_counter()
    if admitted.status != 202:
        raise ProtocolError(f"POST /v2/tasks answered {admitted.status}: {answer!r}")
    events = await connection.request("GET", f"/v2/tasks/{json.loads(answer)['task_id']}/events")
    tally = await tally_stream(events)
    if tally.first_token_at is None:
        raise ProtocolError(f"orchestratord stream had no token: {tally.terminal!r}")
    first = tally.first_token_at
    return (first - posted) * 1000, (accepted - posted) * 1000, (first - accepted) * 1000


async def measure_ttft(
    orchestratord_url: str,
    engine_url: str,
    samples: int,
    warmup: int,
    max_tokens: int,
    *,
    no_journal_url: str,
) -> TtftResult:
    direct_conn = await Connection.open(engine_url)
    orch_conn = await Connection.open(orchestratord_url)
    bare_conn = await Connection.open(no_journal_url)
    direct: list[float] = []
    orch: list[tuple[float, float, float]] = []
    bare: list[float] = []
    try:
        for n in range(warmup + samples):
            d = await direct_ttft_ms(direct_conn, max_tokens, n)
            o = await orchestratord_ttft_ms(orch_conn, max_tokens, n)
            b = (await orchestratord_ttft_ms(bare_conn, max_tokens, n))[0]
            if n >= warmup:
                direct.append(d)
                orch.append(o)
                bare.append(b)
    finally:
        await direct_conn.close()
        await orch_conn.close()
        await bare_conn.close()
    return TtftResult(
        samples=samples,
        max_tokens=max_tokens,
        direct=Percentiles.of(direct),
        orchestratord=Percentiles.of([o[0] for o in orch]),
        orchestratord_post=Percentiles.of([o[1] for o in orch]),
        orchestratord_events=Percentiles.of([o[2] for o in orch]),
        paired_overhead=Percentiles.of([o[0] - d for o, d in zip(orch, direct, strict=True)]),
        orchestratord_no_journal=Percentiles.of(bare),
        paired_journal_cost=Percentiles.of([o[0] - b for o, b in zip(orch, bare, strict=True)]),
    )
