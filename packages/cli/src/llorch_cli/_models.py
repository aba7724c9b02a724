"""`llorch models make-tiny`: write, or reuse, the deterministic tiny test model.

The model takes its vocabulary from the engine install, so the engine is ensured first;
with the engine cache in place that is only a verification, no build and no network.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from llorch_provisioning import (
    PINNED_LLAMA_CPP_PYTHON_VERSION,
    ModelFile,
    ProgressCallback,
    ProvisioningError,
    ensure_llamacpp_source,
    ensure_tiny_model,
    file_digest,
    progress_lines,
    tiny_model_path,
)

VocabProvider = Callable[[Path, ProgressCallback], Path]


def console_progress(phase: str, pct: float, line: str) -> None:
    """Print one progress line to stderr, so stdout keeps only the result."""
    print(f"[{phase:>9} {pct:5.1f}%] {line}", file=sys.stderr, flush=True)


def engine_vocab(cache_root: Path, on_progress: ProgressCallback) -> Path:
    """The SPM vocab file of the pinned engine, building the engine first if it is not cached."""
    return ensure_llamacpp_source(PINNED_LLAMA_CPP_PYTHON_VERSION, cache_root, on_progress).vocab_path()


def _copy_out(model: ModelFile, out: Path) -> bool:
    """Place the cached model at ``out``; False when an identical file is already there."""
    if out.is_file() and out.stat().st_size == model.size_bytes and file_digest(out) == model.sha256:
        return False
    # Copy then rename, so a reader of ``out`` never sees half a model.
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        shutil.copyfile(model.path, tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return True


def run_make_tiny(
    *,
    seed: int,
    out: Path | None,
    cache_root: Path,
    vocab_provider: VocabProvider = engine_vocab,
    stdout: TextIO = sys.stdout,
) -> int:
    """Ensure ``gen:tiny-llama?seed=<seed>`` in the cache (copied to ``out`` when given) and print it."""
    try:
        vocab = vocab_provider(cache_root, console_progress)
        dest = tiny_model_path(cache_root, seed)
        model = ensure_tiny_model(
            dest, seed=seed, vocab_path=vocab, on_progress=progress_lines(console_progress)
        )
        fresh = not model.reused
        if out is not None:
            fresh = _copy_out(model, out)
    except (ProvisioningError, OSError) as exc:
        print(f"llorch models make-tiny: {exc}", file=sys.stderr)
        return 1
    print(f"path    {out if out is not None else model.path}", file=stdout)
    print(f"size    {model.size_bytes} bytes", file=stdout)
    print(f"sha256  {model.sha256}", file=stdout)
    print(f"status  {'written' if fresh else 'reused'}", file=stdout)
    return 0


def seed_arg(text: str) -> int:
    """argparse type for ``--seed``: a non-negative integer, as numpy's generator needs."""
    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if not 0 <= seed < 2**63:
        raise argparse.ArgumentTypeError(f"seed must be an integer from 0 to 2**63-1, not {text!r}")
    return seed
