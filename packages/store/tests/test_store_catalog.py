"""The catalog store: WAL, schema versions, one transaction per change, and durability across reopen."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from llorch_contracts.api import ModelLifecycle, VerifyOutcome
from llorch_store import CATALOG_FILE, CatalogStore, ModelExistsError, SchemaTooNewError, UnknownModelError

DIGEST = "sha256:" + "ab" * 32


def store(tmp_path: Path, now_ms: int = 1_000) -> CatalogStore:
    return CatalogStore(tmp_path / CATALOG_FILE, wall_ms=lambda: now_ms)


@pytest.mark.req("CAT-1001")
def test_database_is_in_wal_mode_and_two_openers_share_it(tmp_path: Path) -> None:
    first, second = store(tmp_path), store(tmp_path)
    with sqlite3.connect(tmp_path / CATALOG_FILE) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    first.put("a", "file:/models/a.gguf")
    assert [e.id for e in second.list()] == ["a"]


@pytest.mark.req("CAT-1002")
def test_schema_version_is_recorded_and_a_newer_one_is_refused(tmp_path: Path) -> None:
    store(tmp_path).close()
    with sqlite3.connect(tmp_path / CATALOG_FILE) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(SchemaTooNewError, match="version 99"):
        store(tmp_path)


@pytest.mark.req("CAT-1004", "CAT-1030")
def test_entries_start_active_and_survive_a_reopen(tmp_path: Path) -> None:
    catalog = store(tmp_path, now_ms=42)
    catalog.put(
        "m", "file:/models/m.gguf", digest=DIGEST, tags=["t"], local_path="/models/m.gguf", size_bytes=7
    )
    catalog.record_verification("m", VerifyOutcome.pass_, verified_ms=50)
    catalog.close()
    entry = store(tmp_path).get("m")
    assert entry.lifecycle == ModelLifecycle.Active
    assert (entry.ref, entry.digest, entry.local_path, entry.size_bytes) == (
        "file:/models/m.gguf",
        DIGEST,
        "/models/m.gguf",
        7,
    )
    assert (entry.created_ms, entry.last_verified_ms, entry.last_verification) == (
        42,
        50,
        VerifyOutcome.pass_,
    )
    assert entry.tags == ["t"]


@pytest.mark.req("CAT-1005")
def test_a_duplicate_id_fails_and_leaves_the_entry_untouched(tmp_path: Path) -> None:
    catalog = store(tmp_path)
    original = catalog.put("m", "file:/a.gguf", digest=DIGEST)
    with pytest.raises(ModelExistsError):
        catalog.put("m", "file:/b.gguf")
    assert catalog.get("m") == original


@pytest.mark.req("CAT-1006")
def test_list_is_ordered_by_id_and_unknown_ids_raise(tmp_path: Path) -> None:
    catalog = store(tmp_path)
    for model_id in ["b", "c", "a"]:
        catalog.put(model_id, f"file:/{model_id}.gguf")
    assert [e.id for e in catalog.list()] == ["a", "b", "c"]
    with pytest.raises(UnknownModelError):
        catalog.get("zz")


def test_state_changes_and_deletes_persist_and_find_matches_id_or_ref(tmp_path: Path) -> None:
    catalog = store(tmp_path)
    catalog.put("m", "hf:org/repo/m.gguf")
    catalog.set_state("m", ModelLifecycle.Retired)
    assert catalog.set_state("m", ModelLifecycle.Retired).lifecycle == ModelLifecycle.Retired
    reopened = store(tmp_path)
    assert reopened.get("m").lifecycle == ModelLifecycle.Retired
    found = reopened.find("hf:org/repo/m.gguf")
    assert found is not None
    assert found.id == "m"
    assert reopened.find("nothing") is None
    reopened.delete("m")
    with pytest.raises(UnknownModelError):
        store(tmp_path).delete("m")
