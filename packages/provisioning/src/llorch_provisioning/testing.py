"""Fakes for tests that need provisioning without a real cmake build.

``StubServerBuilder`` stands in for ``CMakeBuilder``: it produces a tiny executable
that answers ``--version`` like llama-server, so the whole install path (staging,
manifest, sha256, atomic rename, locking) runs for real in milliseconds.
``write_stub_sdist`` makes an archive shaped like the llama-cpp-python sdist.
``FakeNvml`` stands in for the pynvml module: scripted devices and NVML failures.
``FakeCommands`` scripts ``shutil.which`` and ``subprocess.run`` for the provisioning modes.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ._errors import BuildError
from ._progress import Phase, ProgressCallback

STUB_COMMIT = "0c1e57098bba43ac29e6e3b677cdceebdd22334f"
_FIXED_MTIME = 1_600_000_000


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = _FIXED_MTIME
    tf.addfile(info, io.BytesIO(data))


def write_stub_sdist(path: Path, *, version: str = "9.9.9", with_vendor: bool = True) -> Path:
    """Write a small tar.gz laid out like ``llama_cpp_python-<version>.tar.gz``.

    It holds the submodule HEAD (commit ``STUB_COMMIT``), a ``vendor/llama.cpp`` tree with
    a CMakeLists.txt, the submodule's ``.git`` pointer file and two vocab files whose bytes
    are ``b"spm-vocab"`` and ``b"gpt2-vocab"``. ``with_vendor=False`` omits the tree.
    """
    top = f"llama_cpp_python-{version}"
    vendor = f"{top}/vendor/llama.cpp"
    with tarfile.open(path, "w:gz") as tf:
        _add(tf, f"{top}/pyproject.toml", b"[project]\n")
        _add(tf, f"{top}/.git/modules/vendor/llama.cpp/HEAD", f"{STUB_COMMIT}\n".encode())
        if with_vendor:
            _add(tf, f"{vendor}/CMakeLists.txt", b"project(llama.cpp)\n")
            _add(tf, f"{vendor}/.git", b"gitdir: ../../.git/modules/vendor/llama.cpp\n")
            _add(tf, f"{vendor}/models/ggml-vocab-llama-spm.gguf", b"spm-vocab")
            _add(tf, f"{vendor}/models/ggml-vocab-gpt-2.gguf", b"gpt2-vocab")
    return path


@dataclass
class StubServerBuilder:
    """A scriptable ``EngineBuilder``: counts calls, can fail, can be slow, can exit non-zero."""

    version_text: str = "version: 0.0.0-stub (build 0, commit 0c1e570)"
    version_exit_code: int = 0
    fail_build: bool = False
    delay_s: float = 0.0
    calls: int = 0
    flags_seen: list[tuple[str, ...]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def generator(self) -> str:
        """Recorded in the manifest like a real cmake generator."""
        return "Stub"

    def build(
        self, source_dir: Path, build_dir: Path, flags: Sequence[str], on_progress: ProgressCallback
    ) -> Path:
        """Write ``build_dir/bin/llama-server`` (a shell script) unless told to fail."""
        with self._lock:
            self.calls += 1
            self.flags_seen.append(tuple(flags))
        if not (source_dir / "CMakeLists.txt").is_file():
            raise BuildError(Phase.CONFIGURE, 1, (f"no CMakeLists.txt in {source_dir}",))
        time.sleep(self.delay_s)
        on_progress(Phase.BUILD, 50.0, "[ 50%] Building CXX object stub.o")
        if self.fail_build:
            raise BuildError(Phase.BUILD, 2, ("stub compiler error",))
        binary = build_dir / "bin" / "llama-server"
        binary.parent.mkdir(parents=True, exist_ok=True)
        script = f"#!/bin/sh\necho '{self.version_text}' >&2\nexit {self.version_exit_code}\n"
        binary.write_text(script)
        binary.chmod(0o755)
        return binary


_GIB = 1 << 30
# pynvml's strings for the codes the fakes raise (NVMLError.__str__ asks the library otherwise).
_NVML_STRINGS = {
    1: "Uninitialized",
    2: "Invalid Argument",
    3: "Not Supported",
    4: "Insufficient Permissions",
    9: "Driver Not Loaded",
    12: "NVML Shared Library Not Found",
    15: "GPU is lost",
    18: "RM has detected an NVML/RM version mismatch.",
    999: "Unknown Error",
}


class FakeNvmlError(Exception):
    """Raised by ``FakeNvml`` the way pynvml raises ``NVMLError``: ``value`` is the nvml.h code."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return _NVML_STRINGS.get(self.value, f"NVML Error with code {self.value}")


@dataclass(frozen=True, kw_only=True)
class FakeGpu:
    """One scripted device; ``fail`` maps a pynvml function name to the NVML code it raises."""

    name: str = "NVIDIA GeForce RTX 3090"
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    total_vram_bytes: int = 24 * _GIB
    free_vram_bytes: int = 24 * _GIB
    utilization_pct: int = 0
    fail: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class FakeMemoryInfo:
    """Shaped like pynvml's ``c_nvmlMemory_t``."""

    total: int
    free: int
    used: int


@dataclass(frozen=True)
class FakeUtilization:
    """Shaped like pynvml's ``c_nvmlUtilization_t``."""

    gpu: int
    memory: int


@dataclass
class FakeNvml:
    """A scriptable stand-in for the pynvml module, with NVML's init/shutdown rules.

    ``init_error`` (e.g. 12, library not found) makes ``nvmlInit`` fail; ``count_error``
    makes ``nvmlDeviceGetCount`` fail. Like NVML, every device call before ``nvmlInit``
    (or after the matching ``nvmlShutdown``) raises Uninitialized, so a reader that forgets
    to initialise or shuts down too early fails in tests as it would on a real machine.
    """

    devices: list[FakeGpu] = field(default_factory=list)
    init_error: int | None = None
    count_error: int | None = None
    shutdown_error: int | None = None
    init_calls: int = 0
    shutdown_calls: int = 0
    _refcount: int = 0

    NVMLError = FakeNvmlError

    @classmethod
    def reference_workstation(cls) -> FakeNvml:
        """The home-profile reference box: an RTX 3090 (24 GB) and an RTX 3060 (12 GB)."""
        return cls(
            devices=[
                FakeGpu(
                    name="NVIDIA GeForce RTX 3090",
                    uuid="GPU-3090aaaa-0000-0000-0000-000000000000",
                    total_vram_bytes=24 * _GIB,
                    free_vram_bytes=23 * _GIB,
                    utilization_pct=7,
                ),
                FakeGpu(
                    name="NVIDIA GeForce RTX 3060",
                    uuid="GPU-3060bbbb-0000-0000-0000-000000000000",
                    total_vram_bytes=12 * _GIB,
                    free_vram_bytes=11 * _GIB,
                    utilization_pct=0,
                ),
            ]
        )

    @property
    def initialised(self) -> bool:
        """True between a successful ``nvmlInit`` and its ``nvmlShutdown``."""
        return self._refcount > 0

    def _check(self) -> None:
        if self._refcount == 0:
            raise FakeNvmlError(1)

    def _gpu(self, handle: object, call: str) -> FakeGpu:
        self._check()
        if not isinstance(handle, int) or not 0 <= handle < len(self.devices):
            raise FakeNvmlError(2)
        gpu = self.devices[handle]
        if call in gpu.fail:
            raise FakeNvmlError(gpu.fail[call])
        return gpu

    def nvmlInit(self) -> None:  # noqa: N802 - pynvml's names
        """Start NVML, or raise ``init_error``; NVML counts nested inits."""
        self.init_calls += 1
        if self.init_error is not None:
            raise FakeNvmlError(self.init_error)
        self._refcount += 1

    def nvmlShutdown(self) -> None:  # noqa: N802
        """Undo one ``nvmlInit``."""
        self.shutdown_calls += 1
        self._check()
        self._refcount -= 1
        if self.shutdown_error is not None:
            raise FakeNvmlError(self.shutdown_error)

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        """Number of scripted devices, or ``count_error``."""
        self._check()
        if self.count_error is not None:
            raise FakeNvmlError(self.count_error)
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> object:  # noqa: N802
        """The handle is the index itself."""
        self._gpu(index, "nvmlDeviceGetHandleByIndex")
        return index

    def nvmlDeviceGetName(self, handle: object) -> str:  # noqa: N802
        """The product name."""
        return self._gpu(handle, "nvmlDeviceGetName").name

    def nvmlDeviceGetUUID(self, handle: object) -> str:  # noqa: N802
        """``GPU-...``."""
        return self._gpu(handle, "nvmlDeviceGetUUID").uuid

    def nvmlDeviceGetMemoryInfo(self, handle: object) -> FakeMemoryInfo:  # noqa: N802
        """Total, free and used VRAM in bytes."""
        gpu = self._gpu(handle, "nvmlDeviceGetMemoryInfo")
        used = gpu.total_vram_bytes - gpu.free_vram_bytes
        return FakeMemoryInfo(total=gpu.total_vram_bytes, free=gpu.free_vram_bytes, used=used)

    def nvmlDeviceGetUtilizationRates(self, handle: object) -> FakeUtilization:  # noqa: N802
        """GPU utilisation in percent (memory-controller utilisation is not scripted)."""
        return FakeUtilization(
            gpu=self._gpu(handle, "nvmlDeviceGetUtilizationRates").utilization_pct, memory=0
        )


@dataclass
class FakeCommands:
    """Scripted ``which`` and ``run`` for code that looks up and runs host tools.

    ``on_path`` maps a command name to the path ``which`` returns. ``results`` maps an argv
    prefix to ``(returncode, stdout, stderr)``; the longest matching prefix wins, and an
    unscripted command exits 127 like a shell would. A prefix in ``timeouts`` raises
    ``TimeoutExpired``. Every argv is recorded in ``calls``.
    """

    on_path: dict[str, str] = field(default_factory=dict)
    results: dict[tuple[str, ...], tuple[int, str, str]] = field(default_factory=dict)
    timeouts: set[tuple[str, ...]] = field(default_factory=set)
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def which(self, name: str) -> str | None:
        """The scripted path of ``name``, or None."""
        return self.on_path.get(name)

    def run(self, argv: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        """Answer ``argv`` from the script (``kwargs`` such as ``timeout`` are accepted and ignored)."""
        args = tuple(str(a) for a in argv)
        self.calls.append(args)
        for prefix in sorted(self.timeouts, key=len, reverse=True):
            if args[: len(prefix)] == prefix:
                timeout = kwargs.get("timeout")
                raise subprocess.TimeoutExpired(list(args), timeout if isinstance(timeout, float) else 0.0)
        for prefix in sorted(self.results, key=len, reverse=True):
            if args[: len(prefix)] == prefix:
                code, out, err = self.results[prefix]
                return subprocess.CompletedProcess(list(args), code, out, err)
        return subprocess.CompletedProcess(list(args), 127, "", f"{args[0]}: command not scripted")
