"""The real engine and the generated model, for tests (built or reused from the user's cache).

Tests run against a real llama-server: the first run on a machine builds it
(minutes; progress goes to stderr), later runs reuse the verified cache.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from llorch_provisioning import (
    PINNED_LLAMA_CPP_PYTHON_VERSION,
    EngineInstall,
    default_cache_root,
    ensure_llamacpp_source,
    make_tiny_model,
)

TINY_SEED = 0


def _print_progress(phase: str, pct: float, line: str) -> None:
    if line:
        print(f"[engine build {phase} {pct:5.1f}%] {line[:120]}", file=sys.stderr, flush=True)


def engine_install() -> EngineInstall:
    """llama-server from the pinned sdist, from `$XDG_CACHE_HOME/llama-orch` (built once per machine)."""
    cache_root = default_cache_root(os.environ)
    return ensure_llamacpp_source(PINNED_LLAMA_CPP_PYTHON_VERSION, cache_root, _print_progress)


def tiny_model(install: EngineInstall, directory: Path, seed: int = TINY_SEED) -> Path:
    """The project's deterministic tiny llama GGUF, written into `directory`."""
    out = directory / f"tiny-llama-s{seed}.gguf"
    make_tiny_model(out, seed=seed, vocab_gguf_path=install.vocab_path("llama-spm"))
    return out
