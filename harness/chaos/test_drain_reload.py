"""Scenario 6: drain and reload through orchestratord's control API with tasks queued (ORCH-3448).

Two long tasks stream and four wait when the pool is drained with a short deadline (the
replicas are stopped, the pool is `stopped`). It stays stopped longer than
`timeouts.pool_unavailable_ms`, so the queued tasks must end with `POOL_UNAVAILABLE` before
the reload (OC-CORE-1164); then the pool is reloaded on the same model, is Ready again, and new
tasks run. None may hang.

On the code at 33ce483 (before issue 7's fixes) this scenario failed (run with the default
grace, as that code has no `pool_unavailable_ms` key): the 4 queued tasks were still open
(`started, metrics, metrics, metrics`, keepalives only) after the pool had been stopped for 4 s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest

from harness.chaos._invariants import Expectations, check_invariants
from harness.chaos._recorder import Recorder
from harness.chaos._scenario import LONG_TOKENS, SHORT_TOKENS, submit_all, until_streaming, verdict
from harness.chaos._stack import MODEL_REF, ChaosStack, StackShape, rss_kb

DRAIN_DEADLINE_MS = 500
STOPPED_BOUND_S = 30.0
GRACE_MS = 2000
PAUSE_STOPPED_S = 2 * GRACE_MS / 1000


@pytest.mark.req("ORCH-3448")
@pytest.mark.req("ORCH-3442")
async def test_drain_and_reload_with_tasks_queued(start_stack: Callable[[StackShape], ChaosStack]) -> None:
    stack = start_stack(StackShape(queue_capacity=8, pool_unavailable_ms=GRACE_MS))
    rss_before = rss_kb(stack.orchestratord.pid)
    pool_url = f"{stack.orchestratord_url}/v2/pools/{stack.shape.pool_id}"
    async with (
        Recorder(stack.orchestratord_url, MODEL_REF) as recorder,
        httpx.AsyncClient(timeout=10) as control,
    ):
        running = await submit_all(recorder, 2, LONG_TOKENS)
        queued = await submit_all(recorder, 4, SHORT_TOKENS, first_seed=10)
        await until_streaming(recorder, running)
        drain = await control.post(f"{pool_url}/drain", json={"deadline_ms": DRAIN_DEADLINE_MS})
        assert drain.status_code == 202, drain.text
        deadline = time.monotonic() + STOPPED_BOUND_S
        while (await asyncio.to_thread(stack.pool))["state"] != "stopped":
            assert time.monotonic() < deadline, f"pool not stopped after drain: {stack.pool()}"
            await asyncio.sleep(0.1)
        await asyncio.sleep(PAUSE_STOPPED_S)
        problems = [
            f"queued on the stopped pool past the grace; want POOL_UNAVAILABLE: {r.summary()}"
            for r in queued
            if r.outcome not in ("end:length", "error:POOL_UNAVAILABLE")
        ]
        reload = await control.post(f"{pool_url}/reload", json={"new_model_ref": MODEL_REF})
        assert reload.status_code == 202, reload.text
        await asyncio.to_thread(stack.wait_ready)
        problems += await check_invariants(stack, recorder, Expectations(rss_before_kb=rss_before))
    assert not problems, verdict(stack, problems)
