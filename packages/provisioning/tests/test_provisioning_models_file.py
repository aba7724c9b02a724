"""File references: used in place, hashed, refused with the resolved path when missing."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from llorch_provisioning import (
    InvalidDigestError,
    ModelDigestMismatchError,
    ModelFile,
    ModelNotFoundError,
    ModelSource,
    OutboundDecision,
    OutboundGate,
    ensure_model,
)

BODY = b"GGUF pretend model bytes" * 1000
DIGEST = "sha256:" + hashlib.sha256(BODY).hexdigest()


def _no_network_gate(decisions: list[OutboundDecision]) -> OutboundGate:
    return OutboundGate(allow=False, allowed_hosts=[], audit=decisions.append)


def _ensure(ref: str, tmp_path: Path, expected: str | None = None) -> ModelFile:
    decisions: list[OutboundDecision] = []
    model = ensure_model(
        ref,
        expected_sha256=expected,
        cache_root=tmp_path / "cache",
        base_dir=tmp_path / "conf",
        gate=_no_network_gate(decisions),
        vocab_path=None,
    )
    assert decisions == []  # a local file never asks the outbound policy
    return model


@pytest.mark.req("CAT-1012")
def test_file_ref_is_used_in_place_and_hashed(tmp_path: Path) -> None:
    model_path = tmp_path / "models" / "a.gguf"
    model_path.parent.mkdir()
    model_path.write_bytes(BODY)
    model = _ensure(f"file:{model_path}", tmp_path, expected=DIGEST)
    assert model == ModelFile(
        path=model_path,
        sha256=DIGEST,
        size_bytes=len(BODY),
        ref=f"file:{model_path}",
        source=ModelSource.LOCAL_FILE,
        reused=True,
    )
    assert not (tmp_path / "cache").exists()  # nothing copied into the cache


def test_relative_paths_resolve_against_the_config_dir(tmp_path: Path) -> None:
    (tmp_path / "conf" / "models").mkdir(parents=True)
    (tmp_path / "conf" / "models" / "a.gguf").write_bytes(BODY)
    model = _ensure("models/a.gguf", tmp_path)
    assert model.path == tmp_path / "conf" / "models" / "a.gguf"
    assert model.sha256 == DIGEST


def test_missing_file_names_the_resolved_path(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist") as info:
        _ensure("models/missing.gguf", tmp_path)
    assert str(tmp_path / "conf" / "models" / "missing.gguf") in str(info.value)
    assert info.value.path == tmp_path / "conf" / "models" / "missing.gguf"


def test_a_directory_is_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "dir.gguf").mkdir()
    with pytest.raises(ModelNotFoundError, match="not a regular file"):
        _ensure(f"file:{tmp_path / 'dir.gguf'}", tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret.gguf"
    path.write_bytes(BODY)
    path.chmod(0)
    with pytest.raises(ModelNotFoundError, match="not readable"):
        _ensure(str(path), tmp_path)


@pytest.mark.req("CAT-1012")
def test_digest_mismatch_names_both_digests_and_keeps_the_users_file(tmp_path: Path) -> None:
    path = tmp_path / "a.gguf"
    path.write_bytes(BODY)
    wrong = "sha256:" + "0" * 64
    with pytest.raises(ModelDigestMismatchError) as info:
        _ensure(str(path), tmp_path, expected=wrong)
    message = str(info.value)
    assert wrong in message
    assert DIGEST in message
    assert str(path) in message
    assert not info.value.deleted
    assert path.read_bytes() == BODY  # never delete a file outside the model directory


def test_expected_digest_may_be_bare_or_upper_case_hex_but_not_garbage(tmp_path: Path) -> None:
    path = tmp_path / "a.gguf"
    path.write_bytes(BODY)
    assert _ensure(str(path), tmp_path, expected=DIGEST.removeprefix("sha256:").upper()).sha256 == DIGEST
    with pytest.raises(InvalidDigestError, match="64 hex digits"):
        _ensure(str(path), tmp_path, expected="md5:abc")
