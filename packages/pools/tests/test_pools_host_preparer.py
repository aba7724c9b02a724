"""The real Preparer's failures surface as an Unready pool with a readable `last_error`."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from llorch_config import parse_config
from llorch_contracts.api import PoolState, PreparationStepStatus
from llorch_pools import HostPreparer
from llorch_pools.testing import run_pools, until_pool
from llorch_provisioning import EngineInstall, sha256_file
from llorch_testkit import free_port


def config_for(tmp_path: Path, pool_yaml: str) -> str:
    port = free_port()
    return (
        "profile: dev\n"
        f"pool_managerd:\n  engine_ports: {{start: {port}, end: {port + 5}}}\n  cache_dir: {tmp_path}/cache\n"
        "pools:\n  - id: p\n    allow_cpu_inference: true\n    ctx_max: 512\n" + pool_yaml
    )


async def unready_reason(tmp_path: Path, pool_yaml: str) -> str:
    config = parse_config(config_for(tmp_path, pool_yaml))
    preparer = HostPreparer(config, cache_root=tmp_path / "cache", base_dir=tmp_path)
    async with run_pools(preparer, tmp_path, config) as manager:
        pool = await until_pool(manager, "p", lambda p: p.last_error is not None)
    assert pool.state == PoolState.unready
    assert not pool.ready
    assert any(s.status == PreparationStepStatus.failed for s in pool.preparation.steps)
    assert pool.last_error is not None
    return pool.last_error


def binary_mode(binary: Path) -> str:
    return f"    engine:\n      provisioning:\n        mode: binary\n        binary: {{path: {binary}}}\n"


@pytest.mark.req("OC-POOL-3003")
async def test_missing_model_file(llamacpp: EngineInstall, tmp_path: Path) -> None:
    reason = await unready_reason(
        tmp_path, binary_mode(llamacpp.binary_path) + "    model: {ref: missing.gguf}\n"
    )
    assert str(tmp_path / "missing.gguf") in reason


@pytest.mark.req("ORCH-3097")
async def test_wrong_model_digest_refuses_the_preload(
    llamacpp: EngineInstall, tiny_model_path: Path, tmp_path: Path
) -> None:
    wrong = "sha256:" + "0" * 64
    model = f"    model: {{ref: 'file:{tiny_model_path}', sha256: '{wrong}'}}\n"
    reason = await unready_reason(tmp_path, binary_mode(llamacpp.binary_path) + model)
    assert wrong in reason
    assert sha256_file(tiny_model_path) in reason, "the message names the actual digest too"


async def test_bad_binary_path(tmp_path: Path) -> None:
    reason = await unready_reason(tmp_path, binary_mode(tmp_path / "no-such-llama-server"))
    assert str(tmp_path / "no-such-llama-server") in reason


async def test_binary_that_is_not_executable(tmp_path: Path) -> None:
    binary = tmp_path / "llama-server"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(binary.stat().st_mode & ~stat.S_IXUSR & ~stat.S_IXGRP & ~stat.S_IXOTH)
    reason = await unready_reason(tmp_path, binary_mode(binary))
    assert "executable" in reason


async def test_home_profile_without_a_gpu_fails_fast(tmp_path: Path) -> None:
    port = free_port()
    text = f"pool_managerd:\n  engine_ports: {{start: {port}, end: {port + 5}}}\npools:\n  - id: p\n"
    config = parse_config(text)
    preparer = HostPreparer(config, cache_root=tmp_path / "cache", base_dir=tmp_path)
    async with run_pools(preparer, tmp_path, config) as manager:
        pool = await until_pool(manager, "p", lambda p: p.last_error is not None)
    assert pool.state == PoolState.unready
    assert "allow_cpu_inference" in (pool.last_error or ""), "the message says how to run on CPU instead"
