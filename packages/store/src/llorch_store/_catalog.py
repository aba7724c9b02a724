"""The model catalog: one row per model in `<catalog.root>/catalog.sqlite3` (CAT-1001..1006, CAT-1030)."""

from __future__ import annotations

import builtins
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec

from llorch_contracts.api import CatalogEntry, ModelLifecycle, VerifyOutcome

from ._db import Database, Migration
from ._errors import ModelExistsError, UnknownModelError

CATALOG_FILE = "catalog.sqlite3"

MIGRATIONS: tuple[Migration, ...] = (
    (
        """CREATE TABLE models (
            id TEXT PRIMARY KEY,
            ref TEXT NOT NULL,
            digest TEXT,
            lifecycle TEXT NOT NULL,
            local_path TEXT,
            size_bytes INTEGER,
            tags TEXT NOT NULL,
            created_ms INTEGER NOT NULL,
            last_verified_ms INTEGER,
            last_verification TEXT
        )""",
        "CREATE INDEX models_by_ref ON models (ref)",
    ),
)

_COLUMNS = (
    "id, ref, digest, lifecycle, local_path, size_bytes, tags, created_ms, "
    "last_verified_ms, last_verification"
)
_tags = msgspec.json.Decoder(list[str])


def _entry(row: sqlite3.Row | tuple[object, ...]) -> CatalogEntry:
    (model_id, ref, digest, lifecycle, local_path, size_bytes, tags, created_ms, verified_ms, outcome) = row
    return CatalogEntry(
        id=str(model_id),
        ref=str(ref),
        digest=None if digest is None else str(digest),
        lifecycle=ModelLifecycle(str(lifecycle)),
        local_path=None if local_path is None else str(local_path),
        size_bytes=None if size_bytes is None else int(str(size_bytes)),
        tags=_tags.decode(str(tags)),
        created_ms=int(str(created_ms)),
        last_verified_ms=None if verified_ms is None else int(str(verified_ms)),
        last_verification=None if outcome is None else VerifyOutcome(str(outcome)),
    )


class CatalogStore:
    """Catalog entries, durable once a method returns; every method blocks (call it from a worker thread)."""

    def __init__(self, path: Path, *, wall_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        """Open (creating and migrating as needed) the catalog database file at `path`."""
        self._db = Database(path, MIGRATIONS)
        self.wall_ms = wall_ms
        self._listeners: builtins.list[Callable[[], None]] = []

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener()` after every committed write (in the writing thread)."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    @property
    def path(self) -> Path:
        return self._db.path

    def close(self) -> None:
        self._db.close()

    def put(
        self,
        model_id: str,
        ref: str,
        *,
        digest: str | None = None,
        tags: Sequence[str] = (),
        local_path: str | None = None,
        size_bytes: int | None = None,
    ) -> CatalogEntry:
        """Create an `Active` entry; an existing id raises `ModelExistsError` and is left untouched."""
        entry = CatalogEntry(
            id=model_id,
            ref=ref,
            digest=digest,
            lifecycle=ModelLifecycle.Active,
            local_path=local_path,
            size_bytes=size_bytes,
            tags=builtins.list(tags),
            created_ms=self.wall_ms(),
            last_verified_ms=None,
            last_verification=None,
        )
        try:
            with self._db.write() as conn:
                conn.execute(
                    f"INSERT INTO models ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
                    (
                        model_id,
                        ref,
                        digest,
                        entry.lifecycle.value,
                        local_path,
                        size_bytes,
                        msgspec.json.encode(entry.tags).decode(),
                        entry.created_ms,
                    ),
                )
        except sqlite3.IntegrityError:
            raise ModelExistsError(f"catalog model {model_id!r} exists already") from None
        self._changed()
        return entry

    def get(self, model_id: str) -> CatalogEntry:
        with self._db.read() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM models WHERE id = ?", (model_id,)).fetchone()
        if row is None:
            raise UnknownModelError(f"no catalog model {model_id!r}")
        return _entry(row)

    def find(self, model_ref: str) -> CatalogEntry | None:
        """The entry a task's `model_ref` names: by id first, else by reference."""
        with self._db.read() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM models WHERE id = ? OR ref = ? ORDER BY id = ? DESC, id LIMIT 1",
                (model_ref, model_ref, model_ref),
            ).fetchone()
        return None if row is None else _entry(row)

    def list(self) -> builtins.list[CatalogEntry]:
        """Every entry, ordered by id (CAT-1006)."""
        with self._db.read() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM models ORDER BY id").fetchall()
        return [_entry(row) for row in rows]

    def delete(self, model_id: str) -> CatalogEntry:
        """Remove the entry and return what it was; files are the caller's business (CAT-1012)."""
        with self._db.write() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM models WHERE id = ?", (model_id,)).fetchone()
            if row is None:
                raise UnknownModelError(f"no catalog model {model_id!r}")
            conn.execute("DELETE FROM models WHERE id = ?", (model_id,))
        self._changed()
        return _entry(row)

    def set_state(self, model_id: str, state: ModelLifecycle) -> CatalogEntry:
        """Set the lifecycle state; setting the current state again changes nothing."""
        return self._update(model_id, "lifecycle = ?", (state.value,))

    def record_verification(
        self,
        model_id: str,
        outcome: VerifyOutcome,
        *,
        verified_ms: int | None = None,
        size_bytes: int | None = None,
    ) -> CatalogEntry:
        """Record a verification's result and time, and the file size it saw when known (CAT-1021)."""
        when = self.wall_ms() if verified_ms is None else verified_ms
        return self._update(
            model_id,
            "last_verification = ?, last_verified_ms = ?, size_bytes = COALESCE(?, size_bytes)",
            (outcome.value, when, size_bytes),
        )

    def set_local_file(self, model_id: str, local_path: str | None, size_bytes: int | None) -> CatalogEntry:
        """Record where the model's file is (or that it is gone, with None)."""
        return self._update(model_id, "local_path = ?, size_bytes = ?", (local_path, size_bytes))

    def _update(self, model_id: str, assignments: str, values: tuple[object, ...]) -> CatalogEntry:
        with self._db.write() as conn:
            conn.execute(f"UPDATE models SET {assignments} WHERE id = ?", (*values, model_id))
            row = conn.execute(f"SELECT {_COLUMNS} FROM models WHERE id = ?", (model_id,)).fetchone()
            if row is None:
                raise UnknownModelError(f"no catalog model {model_id!r}")
        self._changed()
        return _entry(row)
