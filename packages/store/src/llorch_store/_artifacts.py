"""Content-addressed artifacts: `<root>/<id[:2]>/<id>.json` plus a SQLite index for listing (CAT-1040..1047).

The file holds the artifact's canonical document (kind, content, tags,
metadata, parent), so its SHA-256 is the id and anyone can check it with
`sha256sum`. The index (`<root>/index.sqlite3`) records kind, tags, parent and
creation time for listing; a row is written only after its file is durable.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from llorch_contracts.api import Artifact, ArtifactCreate, ArtifactKind, ArtifactRef

from ._canonical import canonical_json, content_id, digest_of
from ._db import Database, Migration
from ._errors import ArtifactCorruptError, ArtifactTooLargeError, InvalidArtifactError, UnknownArtifactError
from ._files import atomic_write, remove_temp_files

INDEX_FILE = "index.sqlite3"
DEFAULT_MAX_ARTIFACT_BYTES = 16 * 1024 * 1024
log = logging.getLogger("llorch.store")

MIGRATIONS: tuple[Migration, ...] = (
    (
        """CREATE TABLE artifacts (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            parent TEXT,
            tags TEXT NOT NULL,
            created_ms INTEGER NOT NULL
        )""",
        "CREATE INDEX artifacts_newest ON artifacts (created_ms DESC, id)",
        "CREATE INDEX artifacts_by_kind ON artifacts (kind, created_ms DESC, id)",
        """CREATE TABLE artifact_tags (
            tag TEXT NOT NULL,
            artifact_id TEXT NOT NULL REFERENCES artifacts (id),
            PRIMARY KEY (tag, artifact_id)
        )""",
    ),
)

_tags = msgspec.json.Decoder(list[str])


def _ref(row: tuple[object, ...]) -> ArtifactRef:
    artifact_id, kind, tags, created_ms = row
    return ArtifactRef(
        id=str(artifact_id),
        kind=ArtifactKind(str(kind)),
        digest=digest_of(str(artifact_id)),
        created_ms=int(str(created_ms)),
        tags=_tags.decode(str(tags)),
    )


class ArtifactStore:
    """Durable, content-addressed artifacts; every method blocks (call it from a worker thread)."""

    def __init__(
        self,
        root: Path,
        *,
        max_artifact_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES,
        wall_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        """Open the store under `root`, remove interrupted writes and report lost files (CAT-1044)."""
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.max_artifact_bytes = max_artifact_bytes
        self.wall_ms = wall_ms
        self._db = Database(root / INDEX_FILE, MIGRATIONS)
        for temp in remove_temp_files(root):
            log.warning("removed %s, left over from an interrupted artifact write", temp)
        for missing in self.missing_files():
            log.error(
                "artifact %s is in the index but its file %s is missing", missing, self.path_of(missing)
            )

    def close(self) -> None:
        self._db.close()

    def path_of(self, artifact_id: str) -> Path:
        return self.root / artifact_id[:2] / f"{artifact_id}.json"

    def put(self, artifact: ArtifactCreate) -> ArtifactRef:
        """Store the artifact (or find it stored already) and return its reference.

        Raises `ArtifactTooLargeError` past the size limit and `InvalidArtifactError` for an
        unknown parent or content that has no canonical JSON form.
        """
        document = canonical_json(msgspec.to_builtins(artifact))
        if len(document) > self.max_artifact_bytes:
            raise ArtifactTooLargeError(len(document), self.max_artifact_bytes)
        artifact_id = content_id(document)
        path = self.path_of(artifact_id)
        existing = self._row(artifact_id)
        if existing is not None and path.exists():
            return _ref(existing)  # the first record's kind, tags and created_ms stay (CAT-1042)
        parent = artifact.parent if isinstance(artifact.parent, str) else None
        if parent is not None and self._row(parent) is None:
            raise InvalidArtifactError(f"parent artifact {parent} does not exist")
        atomic_write(path, document)
        tags = sorted(set(artifact.tags))
        with self._db.write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO artifacts (id, kind, parent, tags, created_ms) VALUES (?, ?, ?, ?, ?)",
                (
                    artifact_id,
                    artifact.kind.value,
                    parent,
                    msgspec.json.encode(artifact.tags).decode(),
                    self.wall_ms(),
                ),
            )
            conn.executemany(
                "INSERT OR IGNORE INTO artifact_tags (tag, artifact_id) VALUES (?, ?)",
                [(tag, artifact_id) for tag in tags],
            )
            row = self._select(conn, artifact_id)
        assert row is not None
        return _ref(row)

    def get(self, artifact_id: str) -> Artifact:
        """The artifact with its content, after checking its file against its digest (CAT-1045)."""
        row = self._row(artifact_id)
        if row is None:
            raise UnknownArtifactError(f"no artifact {artifact_id}")
        path = self.path_of(artifact_id)
        try:
            document = path.read_bytes()
        except FileNotFoundError:
            log.error("artifact %s: file %s is missing", artifact_id, path)
            raise ArtifactCorruptError(f"artifact {artifact_id} has no file") from None
        actual = hashlib.sha256(document).hexdigest()
        if actual != artifact_id:
            log.error("artifact %s: file %s hashes to %s; it is corrupt", artifact_id, path, actual)
            raise ArtifactCorruptError(f"artifact {artifact_id} does not match its digest")
        body = json.loads(document)
        ref = _ref(row)
        return Artifact(
            id=ref.id,
            kind=ref.kind,
            digest=ref.digest,
            created_ms=ref.created_ms,
            tags=ref.tags,
            parent=body.get("parent"),
            metadata=body.get("metadata", {}),
            content=body["content"],
        )

    def list(
        self, *, kind: ArtifactKind | None = None, tag: str | None = None, limit: int = 50
    ) -> builtins.list[ArtifactRef]:
        """References newest first (then by id), filtered by kind and tag, at most `limit` of them."""
        where, values = [], []
        if kind is not None:
            where.append("kind = ?")
            values.append(kind.value)
        if tag is not None:
            where.append("id IN (SELECT artifact_id FROM artifact_tags WHERE tag = ?)")
            values.append(tag)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        query = (
            f"SELECT id, kind, tags, created_ms FROM artifacts {clause} ORDER BY created_ms DESC, id LIMIT ?"
        )
        with self._db.read() as conn:
            rows = conn.execute(query, (*values, limit)).fetchall()
        return [_ref(row) for row in rows]

    def missing_files(self) -> builtins.list[str]:
        """Ids in the index whose file is gone."""
        with self._db.read() as conn:
            ids = [str(row[0]) for row in conn.execute("SELECT id FROM artifacts")]
        return [artifact_id for artifact_id in ids if not self.path_of(artifact_id).exists()]

    def _row(self, artifact_id: str) -> tuple[object, ...] | None:
        with self._db.read() as conn:
            return self._select(conn, artifact_id)

    @staticmethod
    def _select(conn: sqlite3.Connection, artifact_id: str) -> tuple[object, ...] | None:
        row: tuple[object, ...] | None = conn.execute(
            "SELECT id, kind, tags, created_ms FROM artifacts WHERE id = ?", (artifact_id,)
        ).fetchone()
        return row
