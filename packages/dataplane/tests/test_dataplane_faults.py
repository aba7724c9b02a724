"""Faults around a task: every admitted task ends exactly once and dispatch never stops (issue 7).

The orchestrator runs on the real event loop with the scriptable mock engine; the
pool view is fed by hand, as pool-managerd's watch stream would feed it, so pool
restarts, drains and reloads happen exactly when the test says.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import msgspec
import pytest

from llorch_adapters import MockAdapter, MockScript
from llorch_config import parse_config
from llorch_contracts.api import (
    ErrorKind,
    PoolState,
    PoolStatus,
    ReplicaState,
    ReplicaStatus,
    TaskRequest,
)
from llorch_core import AdmissionError
from llorch_dataplane import NullObserver, Orchestrator, PoolView, Task
from llorch_testkit import pool_status, replica_status

WAIT_S = 10.0


def config(extra: str = "", replicas: int = 1, capacity: int = 4) -> str:
    return (
        f"orchestratord:\n  queue: {{capacity: {capacity}, full_policy: reject}}\n{extra}"
        f"pools:\n  - id: p\n    engine: {{kind: mock}}\n    model: {{ref: m}}\n    replicas: {replicas}\n"
    )


def replica(index: int, *, state: ReplicaState = ReplicaState.ready, port: int = 1) -> ReplicaStatus:
    """Replica `p-r<index>`; a restart on a new port shows as another endpoint."""
    return replica_status("p", index, state=state, endpoint=f"http://127.0.0.1:{port}/p/r{index}")


def pool(*replicas: ReplicaStatus, model_ref: str = "m", state: PoolState | None = None) -> PoolStatus:
    return pool_status("p", *replicas, model_ref=model_ref, state=state)


def request(model_ref: str = "m", max_tokens: int = 4) -> TaskRequest:
    return msgspec.convert({"model_ref": model_ref, "prompt": "hello", "max_tokens": max_tokens}, TaskRequest)


def events(task: Task) -> list[tuple[str, dict[str, object]]]:
    out = []
    for frame in task.log.frames():
        data = frame.plain.decode().split("data: ", 1)[1]
        out.append((frame.event, json.loads(data)))
    return out


async def until(condition: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while not condition():
        assert loop.time() < deadline, f"timed out waiting for: {what}"
        await asyncio.sleep(0.002)


@asynccontextmanager
async def running(
    yaml: str,
    script: MockScript | Callable[[str], MockScript],
    view: PoolView | None = None,
    **kwargs: object,
) -> AsyncIterator[tuple[Orchestrator, MockAdapter, PoolView]]:
    view = view or PoolView()
    adapter = MockAdapter(script)
    orchestrator = Orchestrator(parse_config(yaml), view, {"mock": adapter}, **kwargs)  # type: ignore[arg-type]
    runner = asyncio.create_task(orchestrator.run())
    try:
        yield orchestrator, adapter, view
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def warmed(orchestrator: Orchestrator) -> None:
    """One task through a healthy engine, so the readiness probe has measured the pool."""
    task = orchestrator.admit(request(), "c")
    await until(lambda: task.terminal, "the warm-up task")


@pytest.mark.req("OC-CTRL-2170")
async def test_without_a_current_pool_view_admission_answers_pool_unavailable_with_a_retry_delay() -> None:
    async with running(config(), MockScript()) as (orchestrator, _, view):
        with pytest.raises(AdmissionError) as refused:
            orchestrator.admit(request(), "c")
        assert refused.value.kind == ErrorKind.POOL_UNAVAILABLE
        assert refused.value.retry_after_ms is not None
        assert "not connected to pool-managerd" in refused.value.message
        view.apply_snapshot([pool(replica(0))])
        task = orchestrator.admit(request(), "c")
        await until(lambda: task.terminal, "a task once the view arrived")
        view.lose_feed("pool-managerd at http://x unreachable: ConnectError")
        with pytest.raises(AdmissionError) as lost:
            orchestrator.admit(request(), "c")
        assert lost.value.kind == ErrorKind.POOL_UNAVAILABLE
        assert "unreachable" in lost.value.message
        shown = orchestrator.pool("p")
        assert shown is not None
        assert not shown.ready, "a pool is not shown Ready while admission refuses it"
        assert "unreachable" in str(shown.last_error)


@pytest.mark.req("OC-CORE-1163", "OC-CORE-1160")
async def test_a_retry_that_finds_the_queue_full_ends_its_task_and_dispatch_goes_on() -> None:
    view = PoolView()
    view.apply_snapshot([pool(replica(0))])
    async with running(config(capacity=1), MockScript(), view) as (orchestrator, adapter, _):
        await warmed(orchestrator)
        adapter.script = MockScript(first_token_delay_s=0.2, drop_at_token=0)
        first = orchestrator.admit(request(), "c")
        await until(lambda: first.replica_id is not None, "the first task dispatched")
        second = orchestrator.admit(request(), "c")  # fills the queue of capacity 1
        await until(lambda: first.terminal, "the first task to end")
        assert events(first)[-1][0] == "error"
        error = events(first)[-1][1]
        assert error["code"] == "REPLICA_EXHAUSTED"
        assert error["retriable"] is True
        assert isinstance(error["retry_after_ms"], int)
        # The engine comes back (a restart the pool view shows); the queue drains again.
        adapter.script = MockScript()
        view.apply_snapshot([pool(replica(0, state=ReplicaState.unready))])
        view.apply_snapshot([pool(replica(0))])
        await until(lambda: second.terminal, "the queued task to run")
        assert events(second)[-1][0] == "end"
        third = orchestrator.admit(request(), "c")
        await until(lambda: third.terminal, "a new task")
        assert events(third)[-1][0] == "end"


@pytest.mark.req("OC-CORE-1161")
async def test_a_cancel_between_reservation_and_the_runners_first_step_releases_the_slot() -> None:
    view = PoolView()
    view.apply_snapshot([pool(replica(0))])
    async with running(config(), MockScript(), view) as (orchestrator, adapter, _):
        await warmed(orchestrator)
        task = orchestrator.admit(request(), "c")
        for _ in range(100):  # one loop turn at a time: the dispatcher reserves, then we cancel
            if task.runner is not None:
                break
            await asyncio.sleep(0)
        assert task.started_ms is None, "precondition: the runner has not taken its first step"
        await orchestrator.cancel(task.task_id)
        runtime = orchestrator.runtimes["p"]
        assert runtime.active["p-r0"] == 0
        assert events(task)[-1][1]["finish_reason"] == "canceled"
        after = orchestrator.admit(request(), "c")
        await until(lambda: after.terminal, "the next task on the one-slot pool")
        assert events(after)[-1][0] == "end"
        assert adapter.active == 0


@pytest.mark.req("OC-CORE-1162")
async def test_a_task_retried_after_a_replica_failure_goes_to_another_replica() -> None:
    def script(endpoint: str) -> MockScript:
        return MockScript(drop_at_token=0) if "/p/r0" in endpoint else MockScript()

    view = PoolView()
    view.apply_snapshot([pool(replica(0), replica(1))])
    async with running(config(replicas=2), MockScript(), view) as (orchestrator, adapter, _):
        await warmed(orchestrator)
        adapter.script = script
        task = orchestrator.admit(request(), "c")
        await until(lambda: task.terminal, "the retried task")
    assert events(task)[-1][0] == "end"
    assert task.replica_id == "p-r1"


@pytest.mark.req("OC-CORE-1162", "OC-CORE-1118")
async def test_a_retry_waits_for_the_failed_replica_to_restart_instead_of_failing_at_once() -> None:
    view = PoolView()
    view.apply_snapshot([pool(replica(0))])
    async with running(config(), MockScript(), view) as (orchestrator, adapter, _):
        await warmed(orchestrator)
        adapter.script = MockScript(drop_at_token=0)
        task = orchestrator.admit(request(), "c")
        await until(lambda: task.retried and task.replica_id is None, "the first failure")
        await asyncio.sleep(0.1)
        assert not task.terminal, "the retry must not go straight back to the dead endpoint"
        adapter.script = MockScript()
        view.apply_snapshot([pool(replica(0, state=ReplicaState.unready))])
        view.apply_snapshot([pool(replica(0, port=2))])  # restarted on a new port
        await until(lambda: task.terminal, "the task after the restart")
    assert events(task)[-1][0] == "end"


@pytest.mark.req("OC-CORE-1164")
async def test_queued_tasks_of_a_pool_that_went_away_end_after_the_grace_period() -> None:
    yaml = config("  timeouts: {pool_unavailable_ms: 300}\n")
    view = PoolView()
    view.apply_snapshot([pool(replica(0))])
    async with running(yaml, MockScript(), view) as (orchestrator, adapter, _):
        await warmed(orchestrator)
        adapter.script = MockScript(token_delay_s=0.05)
        busy = orchestrator.admit(request(max_tokens=200), "c")
        queued = [orchestrator.admit(request(), "c") for _ in range(2)]
        view.apply_snapshot([pool(state=PoolState.stopped)])
        now = orchestrator.clock()
        orchestrator.tick(now)
        assert not any(t.terminal for t in queued), "inside the grace period they wait"
        orchestrator.tick(now + 0.31)
        for task in queued:
            name, data = events(task)[-1]
            assert (name, data["code"], data["retriable"]) == ("error", "POOL_UNAVAILABLE", True)
            assert "stopped" in str(data["message"])
        await orchestrator.cancel(busy.task_id)


@pytest.mark.req("OC-CORE-1164")
async def test_queued_tasks_run_when_their_pool_comes_back_within_the_grace_period() -> None:
    view = PoolView()
    view.apply_snapshot([pool(replica(0))])
    async with running(config(), MockScript(), view) as (orchestrator, adapter, _):
        await warmed(orchestrator)
        adapter.script = MockScript(first_token_delay_s=0.1)
        busy = orchestrator.admit(request(), "c")
        queued = orchestrator.admit(request(), "c")
        view.apply_snapshot([pool(state=PoolState.unready)])
        orchestrator.tick(orchestrator.clock())
        view.apply_snapshot([pool(replica(0, port=3))])
        orchestrator.tick(orchestrator.clock() + 100)
        await until(lambda: queued.terminal and busy.terminal, "both tasks")
    assert events(queued)[-1][0] == "end"


@pytest.mark.req("OC-CORE-1165")
async def test_after_a_reload_to_another_model_the_old_model_is_neither_admitted_nor_run() -> None:
    view = PoolView()
    view.apply_snapshot([pool(replica(0))])
    async with running(config(), MockScript(), view) as (orchestrator, adapter, _):
        await warmed(orchestrator)
        adapter.script = MockScript(first_token_delay_s=0.2)
        busy = orchestrator.admit(request(), "c")
        old = orchestrator.admit(request(), "c")
        view.apply_snapshot([pool(replica(0), model_ref="m2")])
        await until(lambda: old.terminal and busy.terminal, "the queued task")
        name, data = events(old)[-1]
        assert (name, data["code"], data["retriable"]) == ("error", "POOL_UNAVAILABLE", False)
        with pytest.raises(AdmissionError) as refused:
            orchestrator.admit(request(), "c")
        assert refused.value.kind == ErrorKind.INVALID_PARAMS
        new = orchestrator.admit(request("m2"), "c")
        await until(lambda: new.terminal, "a task for the new model")
    assert events(new)[-1][0] == "end"


@pytest.mark.req("OC-CORE-1166")
async def test_a_task_that_would_overflow_its_log_ends_with_internal_and_the_engine_is_released() -> None:
    yaml = config("  sse: {max_events_per_task: 16}\n")
    view = PoolView()
    view.apply_snapshot([pool(replica(0))])
    async with running(yaml, MockScript(), view) as (orchestrator, adapter, _):
        await warmed(orchestrator)
        task = orchestrator.admit(request(max_tokens=100), "c")
        await until(lambda: task.terminal, "the overflowing task")
        await until(lambda: adapter.active == 0, "the engine request aborted")
    assert len(task.log) == 16
    name, data = events(task)[-1]
    assert (name, data["code"]) == ("error", "INTERNAL")
    assert task.state.value == "failed"


class _BrokenOnce(NullObserver):
    def __init__(self) -> None:
        self.calls = 0

    def dispatched(self, task: Task) -> None:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("a bug in an observer")


@pytest.mark.req("OC-CORE-1160")
async def test_a_bug_while_running_one_task_ends_only_that_task() -> None:
    view = PoolView()
    view.apply_snapshot([pool(replica(0))])
    async with running(config(), MockScript(), view, observer=_BrokenOnce()) as (orchestrator, _, _):
        await warmed(orchestrator)
        broken = orchestrator.admit(request(), "c")
        await until(lambda: broken.terminal, "the task hit by the bug")
        healthy = orchestrator.admit(request(), "c")
        await until(lambda: healthy.terminal, "the next task")
    assert events(broken)[-1][1]["code"] == "INTERNAL"
    assert events(healthy)[-1][0] == "end"
