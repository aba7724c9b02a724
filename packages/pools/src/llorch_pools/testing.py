"""Test helpers: a Preparer with a given engine and model (or failure), pools run in a task group,
and fakes for supervision (a clock whose sleeps pass at once, a scripted replica runner, an observer
that records)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.lowlevel
import httpx
from msgspec import UNSET

from llorch_contracts.api import GpuInventory, PoolStatus
from llorch_contracts.config import LlorchConfig, PoolConfig
from llorch_provisioning import sha256_file

from ._errors import ReplicaError
from ._health import EngineFacts
from ._incarnation import IncarnationReports
from ._manager import PoolManager
from ._observer import NullObserver, SupervisionObserver
from ._preparation import PreparationError, PreparedEngine, Preparer, Report, StagedModel
from ._settings import SupervisorSettings


@dataclass
class StaticPreparer:
    """Hands every pool the same engine and model, or the file a `file:` model ref names.

    `fail_*` strings make that step fail instead.
    """

    binary: Path | None
    model: Path
    base_url: str | None = None
    fail_hardware: str | None = None
    fail_engine: str | None = None
    fail_model: str | None = None

    def gpu_inventory(self) -> GpuInventory:
        return GpuInventory(nvml_available=False, reason="test preparer: no NVML", devices=[])

    def hardware_problem(self, pool: PoolConfig) -> str | None:
        return self.fail_hardware

    def provision_engine(self, pool: PoolConfig, report: Report) -> PreparedEngine:
        report("verify", 50.0)
        if self.fail_engine:
            raise PreparationError(self.fail_engine)
        return PreparedEngine(
            binary_path=self.binary,
            base_url=self.base_url,
            engine_version=None,
            vocab_path=None,
            detail="test",
        )

    def stage_model(self, pool: PoolConfig, engine: PreparedEngine, report: Report) -> StagedModel:
        """`self.model`, or the file a `file:` ref names; a given `sha256` is checked either way."""
        if self.fail_model:
            raise PreparationError(self.fail_model)
        ref = pool.model.ref
        path = Path(ref.removeprefix("file:")) if ref.startswith("file:") else self.model
        if not path.is_file():
            raise PreparationError(f"model {ref}: no file at {path}")
        digest = f"sha256:{sha256_file(path)}"
        if pool.model.sha256 is not UNSET and pool.model.sha256 != digest:
            raise PreparationError(f"model {ref}: digest {digest} does not match {pool.model.sha256}")
        return StagedModel(path=path, digest=digest, size_bytes=path.stat().st_size)


@asynccontextmanager
async def run_pools(
    preparer: Preparer,
    tmp_path: Path,
    config: LlorchConfig,
    observer: SupervisionObserver | None = None,
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
) -> AsyncIterator[PoolManager]:
    """Supervise `config`'s pools until the block ends; every engine is stopped on the way out.

    `sleep` paces restarts (wrap `anyio.sleep` to see the delays supervision asked for).
    """
    async with httpx.AsyncClient() as http:
        environ = {"PATH": os.environ.get("PATH", "")}
        settings = SupervisorSettings.from_config(
            config,
            preparer=preparer,
            http=http,
            environ=environ,
            runtime_dir=tmp_path / "runtime",
            observer=observer,
        )
        manager = PoolManager(config, dataclasses.replace(settings, sleep=sleep))
        async with anyio.create_task_group() as group:
            await group.start(manager.run)
            yield manager
            group.cancel_scope.cancel()


async def until_pool(
    manager: PoolManager, pool_id: str, check: Callable[[PoolStatus], bool], timeout_s: float = 30
) -> PoolStatus:
    """Poll the registry until `check(pool)` holds (fails the test after `timeout_s`)."""
    with anyio.fail_after(timeout_s):
        while True:
            pool = manager.registry.get(pool_id)
            assert pool is not None, f"no pool {pool_id!r}"
            if check(pool):
                return pool
            await anyio.sleep(0.02)


@dataclass
class FakeClock:
    """Monotonic and wall time that only `sleep` and `advance` move; `sleeps` records every `sleep`."""

    now: float = 1000.0
    #: Added to `now` for the wall clock (Unix seconds).
    epoch: float = 1_700_000_000.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.epoch + self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await self.advance(seconds)

    async def advance(self, seconds: float) -> None:
        """Let time pass without recording it as a sleep (what a fake engine spends)."""
        self.now += seconds
        await anyio.lowlevel.checkpoint()


@dataclass(frozen=True)
class Run:
    """One scripted incarnation: start for `start_s`, be Ready for `ready_s` (None: never), then fail."""

    ready_s: float | None
    error: Exception = field(default_factory=lambda: ReplicaError("scripted failure"))
    start_s: float = 0.5


@dataclass
class ScriptedRunner:
    """A `ReplicaRunner` that plays `runs` in order on a `FakeClock`, then serves until cancelled."""

    clock: FakeClock
    runs: list[Run]
    facts: EngineFacts = field(
        default_factory=lambda: EngineFacts(
            engine_version="llamacpp:b1-cpu", ctx_max=512, slots_total=1, slots_free=1
        )
    )
    #: `clock.now` when each incarnation began.
    started_at: list[float] = field(default_factory=list)
    done: anyio.Event = field(default_factory=anyio.Event)

    async def serve(self, reports: IncarnationReports) -> None:
        index = len(self.started_at)
        self.started_at.append(self.clock.now)
        reports.starting(f"http://127.0.0.1:{20000 + index}", 40000 + index)
        if index >= len(self.runs):
            reports.ready(self.facts)
            self.done.set()
            await anyio.sleep_forever()
        run = self.runs[index]
        await self.clock.advance(run.start_s)
        if run.ready_s is not None:
            reports.ready(self.facts)
            await self.clock.advance(run.ready_s)
        raise run.error


@dataclass
class RecordingObserver(NullObserver):
    """A `SupervisionObserver` that keeps the `reason` of every restart."""

    restart_reasons: list[str] = field(default_factory=list)

    def restarted(
        self, *, engine: str, engine_version: str, pool_id: str, replica_id: str, reason: str
    ) -> None:
        self.restart_reasons.append(reason)
