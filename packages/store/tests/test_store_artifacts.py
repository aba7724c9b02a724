"""The artifact store: content addressing, atomic files, idempotency, listing, and recovery at start-up."""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from llorch_contracts.api import ArtifactCreate, ArtifactKind
from llorch_store import (
    INDEX_FILE,
    ArtifactCorruptError,
    ArtifactStore,
    ArtifactTooLargeError,
    InvalidArtifactError,
    UnknownArtifactError,
    canonical_json,
)


class Clock:
    def __init__(self) -> None:
        self.ms = 1_000

    def __call__(self) -> int:
        self.ms += 1
        return self.ms


def store(root: Path, clock: Clock | None = None, **kwargs: Any) -> ArtifactStore:
    return ArtifactStore(root, wall_ms=clock or Clock(), **kwargs)


def plan(**content: Any) -> ArtifactCreate:
    return ArtifactCreate(kind=ArtifactKind.plan, content=content or {"goal": "x"})


def test_canonical_json_sorts_keys_drops_whitespace_keeps_non_ascii_and_refuses_nan() -> None:
    assert canonical_json({"b": 1, "a": ["é", 2.5]}) == '{"a":["é",2.5],"b":1}'.encode()
    with pytest.raises(InvalidArtifactError):
        canonical_json({"x": float("nan")})


@pytest.mark.req("CAT-1041", "CAT-1043")
def test_an_artifact_is_a_file_named_by_the_hash_of_its_canonical_document(tmp_path: Path) -> None:
    artifacts = store(tmp_path)
    ref = artifacts.put(ArtifactCreate(kind=ArtifactKind.diff, content={"patch": "+new"}, tags=["t1"]))
    path = tmp_path / ref.id[:2] / f"{ref.id}.json"
    document = {"content": {"patch": "+new"}, "kind": "diff", "metadata": {}, "tags": ["t1"]}
    assert path.read_bytes() == canonical_json(document)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == ref.id
    assert ref.digest == f"sha256:{ref.id}"
    assert not list(tmp_path.glob("*/.*.tmp"))


@pytest.mark.req("CAT-1043")
def test_a_write_that_fails_before_its_rename_leaves_no_file_and_no_index_row(tmp_path: Path) -> None:
    artifacts = store(tmp_path)
    doomed = plan(goal="doomed")
    artifact_id = hashlib.sha256(
        canonical_json({"content": {"goal": "doomed"}, "kind": "plan", "metadata": {}, "tags": []})
    ).hexdigest()
    artifacts.path_of(artifact_id).mkdir(parents=True)  # the rename onto a directory fails
    with pytest.raises(IsADirectoryError):
        artifacts.put(doomed)
    assert not list(tmp_path.glob("*/.*.tmp"))
    with pytest.raises(UnknownArtifactError):
        artifacts.get(artifact_id)


@pytest.mark.req("CAT-1042")
def test_storing_the_same_document_again_returns_the_first_record(tmp_path: Path) -> None:
    artifacts = store(tmp_path)
    first = artifacts.put(plan())
    again = artifacts.put(plan())
    assert again == first
    assert len(artifacts.list()) == 1


def test_artifacts_survive_a_reopen_with_their_content(tmp_path: Path) -> None:
    artifacts = store(tmp_path)
    parent = artifacts.put(plan())
    child = artifacts.put(
        ArtifactCreate(
            kind=ArtifactKind.summary, content={"ü": [1, None]}, parent=parent.id, metadata={"k": "v"}
        )
    )
    artifacts.close()
    got = store(tmp_path).get(child.id)
    assert (got.kind, got.content, got.parent, got.metadata) == (
        ArtifactKind.summary,
        {"ü": [1, None]},
        parent.id,
        {"k": "v"},
    )
    assert got.created_ms == child.created_ms


def test_listing_is_newest_first_and_filters_by_kind_tag_and_limit(tmp_path: Path) -> None:
    artifacts = store(tmp_path)
    a = artifacts.put(ArtifactCreate(kind=ArtifactKind.plan, content={"n": 1}, tags=["x"]))
    b = artifacts.put(ArtifactCreate(kind=ArtifactKind.trace, content={"n": 2}, tags=["x", "y"]))
    c = artifacts.put(ArtifactCreate(kind=ArtifactKind.plan, content={"n": 3}))
    assert [r.id for r in artifacts.list()] == [c.id, b.id, a.id]
    assert [r.id for r in artifacts.list(kind=ArtifactKind.plan)] == [c.id, a.id]
    assert [r.id for r in artifacts.list(tag="x")] == [b.id, a.id]
    assert [r.id for r in artifacts.list(kind=ArtifactKind.plan, tag="x")] == [a.id]
    assert [r.id for r in artifacts.list(limit=2)] == [c.id, b.id]


@pytest.mark.req("CAT-1046")
def test_an_unknown_parent_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArtifactError, match="parent"):
        store(tmp_path).put(ArtifactCreate(kind=ArtifactKind.plan, content={}, parent="0" * 64))


@pytest.mark.req("CAT-1047")
def test_an_artifact_over_the_limit_is_refused(tmp_path: Path) -> None:
    artifacts = store(tmp_path, max_artifact_bytes=64)
    with pytest.raises(ArtifactTooLargeError):
        artifacts.put(plan(text="x" * 64))
    assert artifacts.list() == []


@pytest.mark.req("CAT-1044")
def test_start_up_removes_temp_files_and_logs_index_rows_without_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    artifacts = store(tmp_path)
    ref = artifacts.put(plan())
    artifacts.close()
    leftover = tmp_path / "ab" / ".abc.json.xyz.tmp"
    leftover.parent.mkdir()
    leftover.write_bytes(b"{")
    (tmp_path / ref.id[:2] / f"{ref.id}.json").unlink()
    with caplog.at_level(logging.ERROR, logger="llorch.store"):
        store(tmp_path)
    assert not leftover.exists()
    assert any(ref.id in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)


@pytest.mark.req("CAT-1045")
def test_a_file_that_no_longer_matches_its_digest_is_reported_corrupt(tmp_path: Path) -> None:
    artifacts = store(tmp_path)
    ref = artifacts.put(plan())
    artifacts.path_of(ref.id).write_bytes(json.dumps({"content": {}, "kind": "plan"}).encode())
    with pytest.raises(ArtifactCorruptError):
        artifacts.get(ref.id)


def test_the_index_is_sqlite_in_wal_mode(tmp_path: Path) -> None:
    store(tmp_path)
    with sqlite3.connect(tmp_path / INDEX_FILE) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
