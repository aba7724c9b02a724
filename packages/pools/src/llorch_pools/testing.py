"""A Preparer for tests: a given engine binary and model file, or a given failure."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llorch_contracts.api import GpuInventory
from llorch_contracts.config import PoolConfig
from llorch_provisioning import sha256_file

from ._preparation import PreparationError, PreparedEngine, Report, StagedModel


@dataclass
class StaticPreparer:
    """Hands every pool the same engine and model; `fail_*` strings make that step fail instead."""

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
        if self.fail_model:
            raise PreparationError(self.fail_model)
        return StagedModel(
            path=self.model, digest=f"sha256:{sha256_file(self.model)}", size_bytes=self.model.stat().st_size
        )
