"""Scenario 3: pool-managerd stopped while tasks stream, down past the grace, then started again (ORCH-3445).

Two long tasks stream and four wait when pool-managerd gets SIGTERM (it stops its replicas).
It stays down longer than `timeouts.pool_unavailable_ms`: the cut streams must end with a
retriable error, the queued tasks with `POOL_UNAVAILABLE` (OC-CORE-1164), and admission must
answer 503 while there is no pool view (OC-CTRL-2170). Then it starts again: the pool is Ready
and new tasks run. Nothing may hang.

On the code at 33ce483 (before issue 7's fixes) this scenario failed (run with the default
grace, as that code has no `pool_unavailable_ms` key): a task submitted while pool-managerd was
down got 202 instead of 503; the 4 queued tasks ended REPLICA_EXHAUSTED (not POOL_UNAVAILABLE);
and the first task submitted after pool-managerd was Ready again ended REPLICA_EXHAUSTED
(events `started, metrics, metrics, error`) instead of running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from harness.chaos._invariants import Expectations, check_invariants
from harness.chaos._recorder import Recorder
from harness.chaos._scenario import (
    LONG_TOKENS,
    SHORT_TOKENS,
    ran_or_retriable,
    submit_all,
    until_streaming,
    verdict,
)
from harness.chaos._stack import MODEL_REF, ChaosStack, StackShape, rss_kb

GRACE_MS = 2000
DOWN_S = 2 * GRACE_MS / 1000


@pytest.mark.req("ORCH-3445")
@pytest.mark.req("ORCH-3442")
async def test_pool_managerd_down_past_the_grace_then_back(
    start_stack: Callable[[StackShape], ChaosStack],
) -> None:
    stack = start_stack(StackShape(queue_capacity=8, pool_unavailable_ms=GRACE_MS))
    rss_before = rss_kb(stack.orchestratord.pid)
    async with Recorder(stack.orchestratord_url, MODEL_REF) as recorder:
        running = await submit_all(recorder, 2, LONG_TOKENS)
        queued = await submit_all(recorder, 4, SHORT_TOKENS, first_seed=10)
        await until_streaming(recorder, running)
        await asyncio.to_thread(stack.pool_managerd.stop)
        await asyncio.sleep(DOWN_S)
        while_down = await recorder.submit(SHORT_TOKENS, seed=30)
        problems = [
            r.summary() + " did not end while pool-managerd was down"
            for r in [*running, *queued]
            if r.terminal is None
        ]
        await asyncio.to_thread(stack.pool_managerd.start)
        await asyncio.to_thread(stack.wait_ready)
        problems += await check_invariants(stack, recorder, Expectations(rss_before_kb=rss_before))
        if while_down.status != 503 or while_down.error_code != "POOL_UNAVAILABLE":
            problems.append(
                "admission without a pool view: want 503 POOL_UNAVAILABLE, "
                f"got {while_down.status} {while_down.error_code}"
            )
        problems += ran_or_retriable(running, "cut by the engine stop; want `end` or a retriable error")
        problems += [
            f"queued past the grace; want POOL_UNAVAILABLE: {r.summary()}"
            for r in queued
            if r.outcome not in ("end:length", "error:POOL_UNAVAILABLE")
        ]
    assert not problems, verdict(stack, problems)
