"""Test helpers: a Preparer with a given engine and model (or failure), and pools run in a task group."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
from msgspec import UNSET

from llorch_contracts.api import GpuInventory, PoolStatus
from llorch_contracts.config import LlorchConfig, PoolConfig
from llorch_provisioning import sha256_file

from ._manager import PoolManager
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
async def run_pools(preparer: Preparer, tmp_path: Path, config: LlorchConfig) -> AsyncIterator[PoolManager]:
    """Supervise `config`'s pools until the block ends; every engine is stopped on the way out."""
    async with httpx.AsyncClient() as http:
        environ = {"PATH": os.environ.get("PATH", "")}
        settings = SupervisorSettings.from_config(
            config, preparer=preparer, http=http, environ=environ, runtime_dir=tmp_path / "runtime"
        )
        manager = PoolManager(config, settings)
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
