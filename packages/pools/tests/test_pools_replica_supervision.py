"""A replica's supervisor driven through scripted incarnations on a fake clock, with the default config."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest
from msgspec import UNSET

from llorch_config import parse_config
from llorch_contracts.api import BreakerState, PoolStatus, ReplicaState, ReplicaStatus
from llorch_contracts.config import PoolConfig, SupervisionConfig
from llorch_pools import (
    EngineExitedError,
    PoolRegistry,
    PortAllocator,
    PreparedEngine,
    ReplicaSupervisor,
    StagedModel,
    SupervisorSettings,
    initial_status,
)
from llorch_pools.testing import FakeClock, RecordingObserver, Run, ScriptedRunner, StaticPreparer

POOL: PoolConfig = parse_config("profile: dev\npools:\n  - id: p\n    allow_cpu_inference: true\n").pools[0]
KILLED = EngineExitedError("engine was killed by signal 9", signal=True)


@dataclass
class Supervised:
    clock: FakeClock
    runner: ScriptedRunner
    observer: RecordingObserver
    #: Every status the replica published, in order (from the registry's watch stream).
    history: list[ReplicaStatus]


@asynccontextmanager
async def supervise(
    runs: list[Run], registry: PoolRegistry | None = None, supervision: SupervisionConfig | None = None
) -> AsyncIterator[Supervised]:
    """Run one replica supervisor until the script is played and the replica serves again."""
    clock = FakeClock()
    runner = ScriptedRunner(clock, runs)
    observer = RecordingObserver()
    registry = registry or PoolRegistry([initial_status(POOL)])
    async with httpx.AsyncClient() as http:
        settings = SupervisorSettings(
            preparer=StaticPreparer(binary=None, model=Path("/x")),
            ports=PortAllocator(1, 1),
            http=http,
            runtime_dir=Path("/nonexistent"),
            supervision=supervision or SupervisionConfig(),
            health_timeout_s=1,
            health_interval_s=1,
            health_failure_threshold=3,
            environ={},
            clock=clock,
            sleep=clock.sleep,
            wall_clock=clock.wall,
            rng=random.Random(3),
            observer=observer,
        )
        supervisor = ReplicaSupervisor(
            pool=POOL,
            replica_id="p-r0",
            engine=PreparedEngine(
                binary_path=None, base_url=None, engine_version=None, vocab_path=None, detail="fake"
            ),
            model=StagedModel(path=Path("/x"), digest="sha256:" + "0" * 64, size_bytes=1),
            registry=registry,
            settings=settings,
            runner=runner,
        )
        history: list[ReplicaStatus] = []
        with registry.watch(maxsize=10_000) as watcher, anyio.fail_after(10):
            async with anyio.create_task_group() as group:
                group.start_soon(supervisor.run)
                await runner.done.wait()
                group.cancel_scope.cancel()
        while not watcher.queue.empty():
            _, pool = watcher.queue.get_nowait()
            if pool.replicas and (not history or history[-1] != pool.replicas[0]):
                history.append(pool.replicas[0])
        yield Supervised(clock, runner, observer, history)


def assert_backoff(sleeps: list[float], bases_s: list[float]) -> None:
    assert len(sleeps) == len(bases_s)
    for slept, base in zip(sleeps, bases_s, strict=True):
        assert 0.9 * base <= slept <= min(1.1 * base, 60), (sleeps, bases_s)


@pytest.mark.req("OC-POOL-3142")
async def test_restarts_back_off_and_reset_after_stable_readiness() -> None:
    runs = [Run(ready_s=2, error=KILLED)] * 3 + [Run(ready_s=300, error=KILLED), Run(ready_s=2, error=KILLED)]
    async with supervise(runs) as s:
        assert_backoff(s.clock.sleeps, [1, 2, 4, 1, 2])
        gaps = [b - a for a, b in zip(s.runner.started_at, s.runner.started_at[1:], strict=False)]
        assert gaps[3] < 300 + 0.5 + 1.2, "after 300 s of readiness the next restart waits ~1 s"


@pytest.mark.req("OC-POOL-3143", "OC-POOL-3145", "OC-POOL-3195")
async def test_five_failed_starts_open_the_breaker_and_trials_follow() -> None:
    runs = [Run(ready_s=None)] * 6  # five failed starts, then a failed trial; the next trial serves
    async with supervise(runs) as s:
        assert_backoff(s.clock.sleeps[:4], [1, 2, 4, 8])
        assert s.clock.sleeps[4:] == [300, 300]
        opened = [r for r in s.history if r.breaker is BreakerState.open]
        assert len(opened) == 2
        first = opened[0]
        assert first.state is ReplicaState.failed
        assert "circuit breaker open: 5 failed starts in a row" in (first.last_error or "")
        assert "scripted failure" in (first.last_error or "")
        # The trial is due breaker_timeout_ms after the breaker opened, in wall-clock epoch ms.
        opened_at = s.runner.started_at[4] + 0.5
        assert first.next_trial_ms == int((s.clock.epoch + opened_at + 300) * 1000)
        assert "the trial start failed" in (opened[1].last_error or "")
        trials = [r for r in s.history if r.breaker is BreakerState.half_open]
        assert {r.state for r in trials} == {ReplicaState.starting}
        final = s.history[-1]
        assert (final.state, final.breaker, final.next_trial_ms) == (
            ReplicaState.ready,
            BreakerState.closed,
            UNSET,
        )
        assert final.restarts == 6


@pytest.mark.req("OC-POOL-3193", "OC-POOL-3146", "OC-POOL-3196")
async def test_ten_quick_crashes_after_ready_are_a_storm_with_the_default_config() -> None:
    async with supervise([Run(ready_s=5, error=KILLED)] * 10) as s:
        assert_backoff(s.clock.sleeps[:9], [1, 2, 4, 8, 16, 32, 60, 60, 60])
        assert s.clock.sleeps[9] == 300
        storm = next(r for r in s.history if r.breaker is BreakerState.open)
        assert storm.state is ReplicaState.failed
        assert "restart storm stopped: 10 crashes within 60000 ms of becoming Ready" in (
            storm.last_error or ""
        )
        assert "killed by signal 9" in (storm.last_error or "")
        final = s.history[-1]
        assert (final.replica_id, final.state, final.breaker) == (
            "p-r0",
            ReplicaState.ready,
            BreakerState.closed,
        )
        assert final.restarts == 10
        assert final.endpoint == "http://127.0.0.1:20010", "the newest incarnation's endpoint is published"
        assert s.observer.restart_reasons == ["signal"] * 10


@pytest.mark.req("OC-POOL-3197")
async def test_an_unexpected_error_is_logged_and_is_a_failure_of_the_replica(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="llorch.pools"):
        async with supervise([Run(ready_s=1, error=RuntimeError("bug in a runner"))]) as s:
            backoff = next(r for r in s.history if r.state is ReplicaState.backoff)
            assert backoff.last_error == "unexpected supervision error: RuntimeError: bug in a runner"
            assert s.observer.restart_reasons == ["supervisor_error"]
            assert s.history[-1].state is ReplicaState.ready
            assert s.history[-1].restarts == 1
    assert any(r.exc_info and isinstance(r.exc_info[1], RuntimeError) for r in caplog.records)


class FailingOnceRegistry(PoolRegistry):
    """A registry whose first attempt to record a backoff fails, as a bug in bookkeeping would."""

    failed = False

    def put_replica(self, pool_id: str, replica: ReplicaStatus) -> PoolStatus:
        if replica.state is ReplicaState.backoff and not self.failed:
            self.failed = True
            raise RuntimeError("bug in bookkeeping")
        return super().put_replica(pool_id, replica)


@pytest.mark.req("OC-POOL-3197")
async def test_a_bug_in_bookkeeping_is_logged_and_supervision_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = FailingOnceRegistry([initial_status(POOL)])
    with caplog.at_level(logging.ERROR, logger="llorch.pools"):
        async with supervise([Run(ready_s=1, error=KILLED)], registry=registry) as s:
            assert registry.failed
            assert s.clock.sleeps == [60], "it waits backoff_max_ms, then starts the replica again"
            assert s.history[-1].state is ReplicaState.ready
            assert len(s.runner.started_at) == 2
    assert any(r.exc_info and "bug in bookkeeping" in str(r.exc_info[1]) for r in caplog.records)
