"""``gen:tiny-llama``: generated once per seed into the cache, deterministic, reused while intact.

Uses the real SPM vocab from the engine cache, like the other real-vocab tests, and skips
until that cache is built.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llorch_provisioning import (
    EngineInstall,
    ModelDigestMismatchError,
    ModelFile,
    ModelGenerationError,
    ModelProgress,
    ModelSource,
    OutboundDecision,
    OutboundGate,
    ensure_model,
    ensure_tiny_model,
    tiny_model_path,
)


@pytest.fixture(scope="module")
def vocab(llamacpp: EngineInstall) -> Path:
    """The SPM vocabulary of the real engine source tree (built by the root fixture when missing)."""
    return llamacpp.vocab_path("llama-spm")


def _ensure(
    ref: str,
    cache: Path,
    vocab: Path | None,
    *,
    expected: str | None = None,
    progress: list[ModelProgress] | None = None,
) -> ModelFile:
    decisions: list[OutboundDecision] = []
    model = ensure_model(
        ref,
        expected_sha256=expected,
        cache_root=cache,
        base_dir=cache,
        gate=OutboundGate(allow=False, allowed_hosts=[], audit=decisions.append),
        vocab_path=vocab,
        on_progress=progress.append if progress is not None else lambda _: None,
    )
    assert decisions == []  # generating needs no network
    return model


def test_same_seed_gives_the_same_file_and_is_reused(vocab: Path, tmp_path: Path) -> None:
    progress: list[ModelProgress] = []
    first = _ensure("gen:tiny-llama?seed=7", tmp_path, vocab, progress=progress)
    assert first.path == tiny_model_path(tmp_path, 7) == tmp_path / "models" / "tiny-llama-s7.gguf"
    assert (first.source, first.reused, first.ref) == (ModelSource.GENERATED, False, "gen:tiny-llama?seed=7")
    assert first.sha256.startswith("sha256:")
    assert first.size_bytes == first.path.stat().st_size
    assert progress[-1].step == "generate"
    assert progress[-1].bytes_done == first.size_bytes
    inode = first.path.stat().st_ino

    again = _ensure("gen:tiny-llama?seed=7", tmp_path, vocab)
    assert again.reused
    assert (again.path, again.sha256, again.size_bytes) == (first.path, first.sha256, first.size_bytes)
    assert again.path.stat().st_ino == inode  # not rewritten

    elsewhere = _ensure("gen:tiny-llama?seed=7", tmp_path / "other-cache", vocab)
    assert elsewhere.sha256 == first.sha256  # same seed, same bytes, on any cache
    other_seed = _ensure("gen:tiny-llama?seed=8", tmp_path, vocab)
    assert other_seed.sha256 != first.sha256


def test_default_seed_is_zero(vocab: Path, tmp_path: Path) -> None:
    model = _ensure("gen:tiny-llama", tmp_path, vocab)
    assert model.path == tiny_model_path(tmp_path, 0)
    assert model.ref == "gen:tiny-llama"
    assert _ensure("gen:tiny-llama?seed=0", tmp_path, vocab).reused


def test_a_tampered_cached_model_is_regenerated(vocab: Path, tmp_path: Path) -> None:
    good = _ensure("gen:tiny-llama?seed=3", tmp_path, vocab)
    with good.path.open("r+b") as fh:
        fh.seek(-4, os.SEEK_END)
        fh.write(b"\0\0\0\1")
    again = _ensure("gen:tiny-llama?seed=3", tmp_path, vocab)
    assert not again.reused
    assert again.sha256 == good.sha256


def test_expected_digest_is_checked(vocab: Path, tmp_path: Path) -> None:
    good = _ensure("gen:tiny-llama?seed=1", tmp_path, vocab)
    assert _ensure("gen:tiny-llama?seed=1", tmp_path, vocab, expected=good.sha256).reused
    wrong = "sha256:" + "f" * 64
    with pytest.raises(ModelDigestMismatchError) as info:
        _ensure("gen:tiny-llama?seed=1", tmp_path, vocab, expected=wrong)
    assert (info.value.expected, info.value.actual) == (wrong, good.sha256)
    assert good.path.is_file()  # deterministic output: regenerating would not help, so keep it


def test_without_the_engine_vocab_generation_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelGenerationError, match="provision the engine first"):
        _ensure("gen:tiny-llama", tmp_path, None)
    with pytest.raises(ModelGenerationError, match="missing"):
        ensure_tiny_model(tmp_path / "m.gguf", seed=0, vocab_path=tmp_path / "nope.gguf")
    assert not (tmp_path / "models").exists()
