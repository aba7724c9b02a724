"""Fakes for tests that need provisioning without a real cmake build.

``StubServerBuilder`` stands in for ``CMakeBuilder``: it produces a tiny executable
that answers ``--version`` like llama-server, so the whole install path (staging,
manifest, sha256, atomic rename, locking) runs for real in milliseconds.
``write_stub_sdist`` makes an archive shaped like the llama-cpp-python sdist.
"""

from __future__ import annotations

import io
import tarfile
import threading
import time
from collections.abc import Sequence
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
