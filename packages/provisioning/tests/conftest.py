"""Fixtures shared by the provisioning tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from llorch_provisioning import HostProbe
from llorch_provisioning.testing import write_stub_sdist


@pytest.fixture
def host() -> HostProbe:
    """A CPU-only host with a fixed CPU fingerprint."""
    return HostProbe(nvcc_path=None, nvidia_gpu_present=False, cpu_fingerprint="cpu-a")


@pytest.fixture
def stub_sdist(tmp_path: Path) -> Path:
    """A llama-cpp-python-shaped sdist for version 9.9.9."""
    return write_stub_sdist(tmp_path / "llama_cpp_python-9.9.9.tar.gz")
