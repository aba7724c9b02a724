"""One SQLite database in WAL mode, its schema version and forward migrations (CAT-1001..1003).

The stores' methods are blocking; services call them from worker threads. One
connection per database is shared by those threads behind a lock, and every
change is one `BEGIN IMMEDIATE` transaction, so a method returns only after its
commit. WAL with a busy timeout lets orchestratord and pool-managerd open the
same file at the same time.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from ._errors import SchemaTooNewError, StoreError

BUSY_TIMEOUT_S = 10.0

Migration = Sequence[str]
Synchronous = Literal["FULL", "NORMAL"]


class Database:
    """A SQLite file opened in WAL mode and migrated to the newest schema this code knows."""

    def __init__(
        self,
        path: Path,
        migrations: Sequence[Migration],
        *,
        synchronous: Synchronous = "FULL",
        busy_timeout_s: float = BUSY_TIMEOUT_S,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        try:
            mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{path}: SQLite refused WAL mode (journal_mode is {mode})")
            # FULL (the stores): a commit is on disk before the method returns, so an acknowledged
            # write survives power loss. NORMAL (the admission journal, CAT-1070): a commit survives
            # the process being killed, and a power loss may lose the last commits.
            self._conn.execute(f"PRAGMA synchronous={synchronous}")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._migrate(migrations)
        except BaseException:
            self._conn.close()
            raise

    @property
    def schema_version(self) -> int:
        with self.read() as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self, migrations: Sequence[Migration]) -> None:
        known = len(migrations)
        with self.write() as conn:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > known:
                raise SchemaTooNewError(
                    f"{self.path} has schema version {version}, but this llama-orch knows only up to "
                    f"{known}; upgrade llama-orch or point the store at another directory"
                )
            for number, statements in enumerate(migrations[version:], start=version + 1):
                for statement in statements:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number:d}")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._conn.close()
