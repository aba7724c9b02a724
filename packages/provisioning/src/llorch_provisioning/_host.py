"""What the build host offers: a CUDA toolchain plus an NVIDIA GPU, and the CPU's feature set."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class Accelerator(StrEnum):
    """The engine variant; it is the suffix of the cache directory (``0.3.36-cpu``)."""

    CPU = "cpu"
    CUDA = "cuda"


@dataclass(frozen=True, kw_only=True)
class HostProbe:
    """Facts about the host that decide which variant we build and whether a cache fits."""

    nvcc_path: str | None
    nvidia_gpu_present: bool
    cpu_fingerprint: str

    @property
    def accelerator(self) -> Accelerator:
        """CUDA only when both the compiler and a GPU exist; nvcc alone (as on CI) is not enough."""
        if self.nvcc_path is not None and self.nvidia_gpu_present:
            return Accelerator.CUDA
        return Accelerator.CPU


def cpu_fingerprint(cpuinfo_text: str) -> str:
    """sha256 over the CPU model name and sorted feature flags of the first processor.

    We build with ``GGML_NATIVE=ON`` (``-march=native``), so a cached binary is only
    safe on a CPU with the same instruction set; the fingerprint lets a cache copied to
    another machine be rebuilt instead of dying with SIGILL.
    """
    model = ""
    flags: list[str] = []
    for raw in cpuinfo_text.splitlines():
        key, _, value = raw.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = sorted(value.split())
    return hashlib.sha256(f"{model}\n{' '.join(flags)}".encode()).hexdigest()


def probe_host(
    *,
    which: Callable[[str], str | None] = shutil.which,
    dev_dir: Path = Path("/dev"),
    cpuinfo_path: Path = Path("/proc/cpuinfo"),
) -> HostProbe:
    """Probe the current host; every source of truth is a parameter so tests can fake it."""
    try:
        cpuinfo = cpuinfo_path.read_text()
    except OSError:
        cpuinfo = ""
    # /dev/nvidia0, /dev/nvidia1, ... exist only when the kernel driver sees a GPU;
    # /dev/nvidiactl or nvidia-uvm alone do not mean there is a device to run on.
    gpu = any(p.name.removeprefix("nvidia").isdigit() for p in dev_dir.glob("nvidia*"))
    return HostProbe(
        nvcc_path=which("nvcc"), nvidia_gpu_present=gpu, cpu_fingerprint=cpu_fingerprint(cpuinfo)
    )
