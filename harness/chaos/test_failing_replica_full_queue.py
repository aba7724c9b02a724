"""Scenario 5: a replica fails before its first token while the queue is full (ORCH-3447).

The engine is frozen (SIGSTOP) so two tasks are dispatched to it and get no token; four more
fill the queue (capacity 4) and a fifth is refused with 429. Then the frozen engine is
SIGKILLed: the two dispatched tasks cannot go back into the full queue. They must end with a
retriable error or run again; the queued tasks must run; dispatch must go on for new tasks.

On the code at 33ce483 (before issue 7's fixes) this scenario failed: after the kill no task
ever ended (the 2 dispatched ones stopped at `started, metrics`, the 4 queued at `started`),
orchestratord showed slots_free 2/2 with queue_depth 4 on a Ready pool for good, and a new
task got 429 ADMISSION_REJECT: the requeue raised QueueFullError and dispatch stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable

import pytest

from harness.chaos._invariants import Expectations, check_invariants
from harness.chaos._recorder import Recorder
from harness.chaos._scenario import SHORT_TOKENS, ran_or_retriable, submit_all, verdict
from harness.chaos._stack import MODEL_REF, ChaosStack, StackShape, rss_kb

DISPATCH_BOUND_S = 10.0


@pytest.mark.req("ORCH-3447")
@pytest.mark.req("ORCH-3442")
async def test_replica_fails_while_the_queue_is_full(start_stack: Callable[[StackShape], ChaosStack]) -> None:
    stack = start_stack(StackShape(replicas=1, slots_per_replica=2, queue_capacity=4))
    rss_before = rss_kb(stack.orchestratord.pid)
    engine = stack.engine_pid()
    async with Recorder(stack.orchestratord_url, MODEL_REF) as recorder:
        # One task first: orchestratord dispatches nothing before its readiness probe measured the
        # engine, and a probe caught by the freeze would keep the two below queued (OC-CORE-1112).
        warm = await submit_all(recorder, 1, SHORT_TOKENS, first_seed=30)
        await recorder.wait_for(lambda: warm[0].terminal is not None, DISPATCH_BOUND_S, why=warm[0].summary)
        os.kill(engine, signal.SIGSTOP)
        try:
            dispatched = await submit_all(recorder, 2, SHORT_TOKENS)
            for _ in range(int(DISPATCH_BOUND_S / 0.05)):
                if (await asyncio.to_thread(stack.orchestratord_pool))["slots_free"] == 0:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("precondition: the two tasks were never dispatched to the frozen engine")
            queued = await submit_all(recorder, 4, SHORT_TOKENS, first_seed=10)
            refused = await recorder.submit(SHORT_TOKENS, seed=20)
            assert refused.status == 429, f"queue not full: {refused.status} {refused.error_code}"
        finally:
            # The freeze must stay shorter than pool-managerd's health-failure detection (default
            # interval 5 s x 3); if it was detected anyway, the engine is already gone.
            with contextlib.suppress(ProcessLookupError):
                os.kill(engine, signal.SIGKILL)
        stack.wait_ready()
        problems = await check_invariants(stack, recorder, Expectations(rss_before_kb=rss_before))
        problems += ran_or_retriable(
            dispatched, "dispatched to the failed replica; want it run or a retriable error"
        )
        problems += [
            f"queued while the replica failed; want it run: {r.summary()}"
            for r in queued
            if r.outcome != "end:length"
        ]
    assert not problems, verdict(stack, problems)
