"""Host probing: CUDA needs nvcc and a GPU; the CPU fingerprint tracks the instruction set."""

from __future__ import annotations

from pathlib import Path

from llorch_provisioning import Accelerator, cpu_fingerprint, default_cache_root, probe_host

CPUINFO = (
    "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: sse2 avx2 fma\n\nprocessor\t: 1\nflags\t: sse2\n"
)


def _probe(tmp_path: Path, *, nvcc: bool, devices: list[str]) -> Accelerator:
    dev = tmp_path / "dev"
    dev.mkdir()
    for name in devices:
        (dev / name).touch()
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO)
    probe = probe_host(
        which=lambda name: "/usr/local/bin/nvcc" if nvcc and name == "nvcc" else None,
        dev_dir=dev,
        cpuinfo_path=cpuinfo,
    )
    return probe.accelerator


def test_nvcc_without_a_gpu_builds_for_cpu(tmp_path: Path) -> None:
    assert _probe(tmp_path, nvcc=True, devices=["nvidiactl", "nvidia-uvm"]) is Accelerator.CPU


def test_gpu_without_nvcc_builds_for_cpu(tmp_path: Path) -> None:
    assert _probe(tmp_path, nvcc=False, devices=["nvidia0"]) is Accelerator.CPU


def test_nvcc_and_a_gpu_build_for_cuda(tmp_path: Path) -> None:
    assert _probe(tmp_path, nvcc=True, devices=["nvidiactl", "nvidia0"]) is Accelerator.CUDA


def test_cpu_fingerprint_ignores_flag_order_but_not_flags() -> None:
    base = cpu_fingerprint("model name: X\nflags: avx2 sse2\n")
    assert base == cpu_fingerprint("model name: X\nflags: sse2 avx2\n")
    assert base != cpu_fingerprint("model name: X\nflags: sse2 avx2 avx512f\n")
    assert base != cpu_fingerprint("model name: Y\nflags: avx2 sse2\n")


def test_cache_root_follows_xdg_and_ignores_relative_values() -> None:
    assert default_cache_root({"XDG_CACHE_HOME": "/xdg", "HOME": "/h"}) == Path("/xdg/llama-orch")
    assert default_cache_root({"XDG_CACHE_HOME": "rel", "HOME": "/h"}) == Path("/h/.cache/llama-orch")
    assert default_cache_root({"HOME": "/h"}) == Path("/h/.cache/llama-orch")
