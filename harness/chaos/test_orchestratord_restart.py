"""Scenario 2: SIGKILL and restart of orchestratord with tasks running and queued (ORCH-3444).

Two long tasks stream on the two slots and six wait in the queue when orchestratord is
SIGKILLed; it starts again on the same `state_dir`. Every client reconnects with
`Last-Event-ID`. Queued tasks must come back with their ids and run in admission order;
running tasks must end with a retriable error (or run again when no token had been sent); every
resumed stream must be complete and ordered. The `/metrics` comparison is off: the counters
start again at zero with the new process.

On the code at 33ce483 (before issue 7's fixes) this scenario failed: after the restart all 8
task ids answered 404 (each client reconnected ~980 times in the 60 s bound, always 404); the
2 running tasks (one had 9 tokens) and the 6 queued ones never got a terminal event.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

import httpx
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
from harness.chaos._stack import MODEL_REF, ChaosStack, StackShape


@pytest.mark.req("ORCH-3444")
@pytest.mark.req("ORCH-3442")
async def test_orchestratord_sigkill_and_restart(start_stack: Callable[[StackShape], ChaosStack]) -> None:
    stack = start_stack(StackShape(replicas=1, slots_per_replica=2, queue_capacity=8))
    async with Recorder(stack.orchestratord_url, MODEL_REF) as recorder:
        running = await submit_all(recorder, 2, LONG_TOKENS)
        queued = await submit_all(recorder, 6, SHORT_TOKENS, first_seed=10)
        await until_streaming(recorder, running)
        stack.restart_orchestratord(signal.SIGKILL)
        problems = await check_invariants(stack, recorder, Expectations(metrics=False, id_jumps=1))
        problems += ran_or_retriable(
            running, "was streaming when orchestratord died; want it run or a retriable error"
        )
        problems += [
            f"was queued when orchestratord died; want it run: {r.summary()}"
            for r in queued
            if r.outcome != "end:length"
        ]
        async with httpx.AsyncClient(base_url=stack.orchestratord_url, timeout=5) as client:
            statuses = [(await client.get(f"/v2/tasks/{r.task_id}")).json() for r in queued]
        started = [s.get("timestamps", {}).get("started_ms") for s in statuses]
        if None not in started and started != sorted(started):
            problems.append(f"queued tasks did not start in admission order: started_ms {started}")
    assert not problems, verdict(stack, problems)
