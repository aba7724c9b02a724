"""What stands between a configured pool and its first replica: an engine and a model.

The supervisor depends on this protocol, not on how preparation is done, so
tests can prepare pools with fakes and the real implementation can block
(builds, downloads) in a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from llorch_contracts.api import GpuInventory
from llorch_contracts.config import PoolConfig


class PreparationError(Exception):
    """Preparation failed; `str()` is the operator-facing reason (config problems included)."""


class Report(Protocol):
    """Progress of the running preparation step."""

    def __call__(
        self,
        phase: str,
        pct: float | None = None,
        bytes_done: int | None = None,
        bytes_total: int | None = None,
    ) -> None: ...


@dataclass(frozen=True, kw_only=True)
class PreparedEngine:
    """A runnable engine: a binary to spawn, or the URL of one that runs elsewhere."""

    binary_path: Path | None
    base_url: str | None
    engine_version: str | None
    vocab_path: Path | None
    detail: str
    mode: str = "source"
    reused: bool = False


@dataclass(frozen=True, kw_only=True)
class StagedModel:
    """A model file on local disk whose digest has been computed (and checked when one was given)."""

    path: Path
    digest: str
    size_bytes: int


@runtime_checkable
class Preparer(Protocol):
    """Prepares pools. Methods block and are called from worker threads."""

    def gpu_inventory(self) -> GpuInventory:
        """The machine's NVIDIA GPUs as NVML sees them (never raises)."""
        ...

    def hardware_problem(self, pool: PoolConfig) -> str | None:
        """Why this pool cannot run on this machine (GPU policy), or None."""
        ...

    def provision_engine(self, pool: PoolConfig, report: Report) -> PreparedEngine: ...

    def stage_model(self, pool: PoolConfig, engine: PreparedEngine, report: Report) -> StagedModel: ...
