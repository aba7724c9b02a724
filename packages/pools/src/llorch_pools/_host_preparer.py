"""The real Preparer: this machine's GPUs, engines built or attached per mode, models staged and verified."""

from __future__ import annotations

from pathlib import Path

from msgspec import UNSET

from llorch_contracts.api import GpuInventory
from llorch_contracts.config import LlorchConfig, PoolConfig
from llorch_provisioning import (
    ModelProgress,
    OutboundGate,
    ProvisioningError,
    ensure_model,
    gpu_policy_problem,
    provision_engine,
    read_gpu_inventory,
)

from ._preparation import PreparationError, PreparedEngine, Report, StagedModel

# The generated test model takes its tokenizer from this vocabulary of the engine source tree.
TINY_VOCAB = "ggml-vocab-llama-spm.gguf"


class HostPreparer:
    """Prepares pools on this host with llorch_provisioning; every failure becomes a PreparationError."""

    def __init__(self, config: LlorchConfig, *, cache_root: Path, base_dir: Path) -> None:
        self.config = config
        self.cache_root = cache_root
        self.base_dir = base_dir
        self.gate = OutboundGate.from_policy(config.policy)

    def gpu_inventory(self) -> GpuInventory:
        return read_gpu_inventory()

    def hardware_problem(self, pool: PoolConfig) -> str | None:
        return gpu_policy_problem(
            self.config.profile, pool.devices, self.gpu_inventory(), pool.allow_cpu_inference
        )

    def provision_engine(self, pool: PoolConfig, report: Report) -> PreparedEngine:
        try:
            engine = provision_engine(
                pool.engine,
                policy=self.config.policy,
                cache_root=self.cache_root,
                on_progress=lambda phase, pct, line: report(phase, pct),
                uses_gpu=bool(pool.devices),
                hook=self.gate,
            )
        except ProvisioningError as exc:
            raise PreparationError(str(exc)) from exc
        if engine.mode in ("container", "mock"):
            raise PreparationError(
                f"pool {pool.id}: engine mode {engine.mode!r} has nothing pool-managerd can start here "
                f"({engine.detail or 'no process to supervise'}); use source, binary, package or external"
            )
        vocab = engine.vocab_dir / TINY_VOCAB if engine.vocab_dir is not None else None
        return PreparedEngine(
            binary_path=engine.binary_path,
            base_url=engine.base_url,
            engine_version=engine.engine_version,
            vocab_path=vocab,
            detail=engine.detail,
            mode=engine.mode,
        )

    def stage_model(self, pool: PoolConfig, engine: PreparedEngine, report: Report) -> StagedModel:
        def on_model_progress(progress: ModelProgress) -> None:
            report(progress.step, progress.pct, progress.bytes_done, progress.bytes_total)

        try:
            model = ensure_model(
                pool.model.ref,
                expected_sha256=None if pool.model.sha256 is UNSET else pool.model.sha256,
                cache_root=self.cache_root,
                base_dir=self.base_dir,
                gate=self.gate,
                vocab_path=engine.vocab_path,
                on_progress=on_model_progress,
            )
        except ProvisioningError as exc:
            raise PreparationError(str(exc)) from exc
        return StagedModel(path=model.path, digest=model.sha256, size_bytes=model.size_bytes)
