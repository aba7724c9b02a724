"""The cmake recipe for a lean ``llama-server`` build, and the builder that runs it."""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ._errors import BuildError
from ._host import Accelerator
from ._progress import BuildProgress, Phase, ProgressCallback

SERVER_TARGET = "llama-server"
_TAIL_LINES = 40

# Why each option (llama.cpp as vendored in llama-cpp-python 0.3.36):
# - Release: the engine is benchmarked and used, never debugged here.
# - BUILD_SHARED_LIBS=OFF: one self-contained binary we can copy, hash and move
#   atomically, with no libllama.so/libggml.so to keep next to it (or RPATH to fix).
# - GGML_NATIVE=ON: -march=native; the binary runs on the machine that built it (CI is
#   this machine) and the manifest's CPU fingerprint forces a rebuild anywhere else.
# - LLAMA_BUILD_TESTS/EXAMPLES/APP=OFF: fewer targets to configure; we build one target.
# - LLAMA_BUILD_TOOLS/SERVER=ON: llama-server lives under tools/server.
# - LLAMA_BUILD_UI=OFF, LLAMA_USE_PREBUILT_UI=OFF: no npm and no Hugging Face download
#   of the web UI at build time; we only use the HTTP API and must build offline.
# - LLAMA_OPENSSL=OFF: no HTTPS client (model download) in the engine; we fetch models.
#   (LLAMA_CURL is deprecated in this version and only warns, so we do not pass it.)
_COMMON_OPTIONS: tuple[str, ...] = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DGGML_NATIVE=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
)


def cmake_options(accelerator: Accelerator) -> tuple[str, ...]:
    """The ``-D`` options that define a build; the cache is reused only if they match."""
    backend = "-DGGML_CUDA=ON" if accelerator is Accelerator.CUDA else "-DGGML_CUDA=OFF"
    return (*_COMMON_OPTIONS, backend)


def build_info_options(commit: str | None) -> tuple[str, ...]:
    """Options that stamp ``--version`` with the upstream commit.

    The extracted tree has no git repository, so llama.cpp's build-info would say
    "unknown" (or, worse, describe whatever repository encloses the cache). The build
    number is not recorded anywhere in the sdist, so it is pinned to 0 rather than guessed.
    """
    short = commit[:7] if commit else "unknown"
    return (f"-DLLAMA_BUILD_COMMIT={short}", "-DLLAMA_BUILD_NUMBER=0")


def default_generator() -> str:
    """Ninja when installed (faster no-op rebuilds, exact step counts), else Makefiles."""
    return "Ninja" if shutil.which("ninja") else "Unix Makefiles"


class EngineBuilder(Protocol):
    """Builds ``llama-server`` from ``source_dir`` in ``build_dir`` and returns the binary path."""

    @property
    def generator(self) -> str:
        """The build-system generator, recorded in the manifest."""
        ...

    def build(
        self, source_dir: Path, build_dir: Path, flags: Sequence[str], on_progress: ProgressCallback
    ) -> Path: ...


def run_streaming(argv: Sequence[str], cwd: Path, progress: BuildProgress, phase: str) -> None:
    """Run ``argv``, feeding each merged stdout/stderr line to ``progress`` as it arrives."""
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    # A new session makes cmake, ninja/make and the compilers one process group, so an
    # interrupted caller (Ctrl-C, a cancelled worker thread) can stop the whole build.
    with subprocess.Popen(
        list(argv),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        bufsize=1,
        start_new_session=True,
    ) as proc:
        assert proc.stdout is not None  # guaranteed by stdout=PIPE
        try:
            for raw in proc.stdout:
                line = raw.rstrip("\n")
                tail.append(line)
                progress.feed(line)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            raise
        returncode = proc.wait()
    if returncode != 0:
        raise BuildError(phase, returncode, tuple(tail))


@dataclass(frozen=True, kw_only=True)
class CMakeBuilder:
    """The real builder: ``cmake`` configure, then build only the server target."""

    jobs: int = 2
    generator: str = field(default_factory=default_generator)
    cmake: str = "cmake"

    def build(
        self, source_dir: Path, build_dir: Path, flags: Sequence[str], on_progress: ProgressCallback
    ) -> Path:
        """Configure and build; a leftover ``build_dir`` from an interrupted run is resumed."""
        build_dir.mkdir(parents=True, exist_ok=True)
        configure = BuildProgress(Phase.CONFIGURE, on_progress)
        configure_argv = [
            self.cmake,
            "-S",
            str(source_dir),
            "-B",
            str(build_dir),
            "-G",
            self.generator,
            *flags,
        ]
        run_streaming(configure_argv, build_dir, configure, Phase.CONFIGURE)
        configure.finish("configured")
        build = BuildProgress(Phase.BUILD, on_progress)
        build_argv = [self.cmake, "--build", str(build_dir), "--target", SERVER_TARGET, "-j", str(self.jobs)]
        run_streaming(build_argv, build_dir, build, Phase.BUILD)
        build.finish(f"built {SERVER_TARGET}")
        binary = build_dir / "bin" / SERVER_TARGET
        if not binary.is_file():
            raise BuildError(Phase.BUILD, 0, (f"build succeeded but {binary} is missing",))
        return binary
