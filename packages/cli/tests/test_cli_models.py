"""`llorch models make-tiny`: writes the tiny model once, then reuses it; copies it to --out."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from llorch_cli import run_make_tiny
from llorch_cli.__main__ import main
from llorch_provisioning import (
    EngineInstall,
    ProgressCallback,
    ProvisioningError,
    file_digest,
    tiny_model_path,
)


@pytest.fixture(scope="module")
def vocab(llamacpp: EngineInstall) -> Path:
    """The SPM vocabulary of the real engine source tree (built by the root fixture when missing)."""
    return llamacpp.vocab_path("llama-spm")


def _fields(text: str) -> dict[str, str]:
    return dict(line.split(maxsplit=1) for line in text.splitlines())


def test_make_tiny_writes_then_reuses_and_copies_to_out(vocab: Path, tmp_path: Path) -> None:
    asked: list[Path] = []

    def provider(cache_root: Path, on_progress: ProgressCallback) -> Path:
        asked.append(cache_root)
        return vocab

    first, second, copied = io.StringIO(), io.StringIO(), io.StringIO()
    assert run_make_tiny(seed=2, out=None, cache_root=tmp_path, vocab_provider=provider, stdout=first) == 0
    assert run_make_tiny(seed=2, out=None, cache_root=tmp_path, vocab_provider=provider, stdout=second) == 0
    out = tmp_path / "elsewhere" / "tiny.gguf"
    assert run_make_tiny(seed=2, out=out, cache_root=tmp_path, vocab_provider=provider, stdout=copied) == 0

    cached = tiny_model_path(tmp_path, 2)
    a, b, c = _fields(first.getvalue()), _fields(second.getvalue()), _fields(copied.getvalue())
    assert (a["path"], a["status"], b["status"], c["status"]) == (str(cached), "written", "reused", "written")
    assert a["sha256"] == b["sha256"] == c["sha256"] == file_digest(out) == file_digest(cached)
    assert a["size"] == f"{cached.stat().st_size} bytes"
    assert c["path"] == str(out)
    assert asked == [tmp_path] * 3


def test_provisioning_errors_become_exit_status_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def provider(cache_root: Path, on_progress: ProgressCallback) -> Path:
        raise ProvisioningError("no engine for you")

    assert run_make_tiny(seed=0, out=None, cache_root=tmp_path, vocab_provider=provider) == 1
    assert "no engine for you" in capsys.readouterr().err


@pytest.mark.parametrize("seed", ["-1", "x", str(2**63)])
def test_seed_must_be_a_non_negative_int64(seed: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["models", "make-tiny", "--seed", seed])
    assert info.value.code == 2
    assert "seed must be an integer" in capsys.readouterr().err
