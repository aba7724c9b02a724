"""The admission journal's schema, its batched writes and its recovery read (CAT-1070, CAT-1073, CAT-1074).

Everything here runs on the journal's writer thread or at start-up, inside one
transaction that the caller opened; nothing here knows about threads.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter

from ._db import Migration

MIGRATIONS: tuple[Migration, ...] = (
    (
        # seq is the rowid: new rows get max(seq) + 1, so it orders tasks by admission (CAT-1073).
        """CREATE TABLE tasks (
            seq INTEGER PRIMARY KEY,
            task_id TEXT NOT NULL UNIQUE,
            pool_id TEXT NOT NULL,
            record BLOB NOT NULL
        )""",
        """CREATE TABLE frames (
            task_id TEXT NOT NULL,
            idx INTEGER NOT NULL,
            event TEXT NOT NULL,
            plain BLOB NOT NULL,
            verbose BLOB,
            PRIMARY KEY (task_id, idx)
        ) WITHOUT ROWID""",
    ),
)

ADMITTED, FRAME, DELETE = 0, 1, 2
#: One queued write: its kind and the parameters of its statements.
Op = tuple[int, tuple[object, ...]]

_STATEMENTS: dict[int, tuple[str, ...]] = {
    # An upsert keeps the first seq, so admitting an id again never reorders it.
    ADMITTED: (
        "INSERT INTO tasks (task_id, pool_id, record) VALUES (?, ?, ?) "
        "ON CONFLICT (task_id) DO UPDATE SET pool_id = excluded.pool_id, record = excluded.record",
    ),
    FRAME: ("INSERT OR REPLACE INTO frames (task_id, idx, event, plain, verbose) VALUES (?, ?, ?, ?, ?)",),
    # ended and forget both delete: the journal holds unfinished tasks only (CAT-1074).
    DELETE: ("DELETE FROM frames WHERE task_id = ?", "DELETE FROM tasks WHERE task_id = ?"),
}


@dataclass(frozen=True, slots=True)
class JournaledFrame:
    """One committed frame of a task's event log."""

    index: int
    event: str
    plain: bytes
    verbose: bytes | None


@dataclass(frozen=True, slots=True)
class JournaledTask:
    """A task that was admitted and had not ended when the journal was last written."""

    task_id: str
    pool_id: str
    record: bytes
    frames: tuple[JournaledFrame, ...]


def apply(conn: sqlite3.Connection, ops: Sequence[Op]) -> None:
    """Run the writes in order; consecutive writes of one kind go to SQLite as one `executemany`."""
    for kind, run in groupby(ops, key=itemgetter(0)):
        params = [op[1] for op in run]
        for statement in _STATEMENTS[kind]:
            conn.executemany(statement, params)


def unfinished(conn: sqlite3.Connection) -> list[JournaledTask]:
    """Every task not ended, in admission order, with its frames by index (CAT-1073)."""
    # A frame enqueued after its task's end would outlive the delete; nothing can use it.
    conn.execute("DELETE FROM frames WHERE task_id NOT IN (SELECT task_id FROM tasks)")
    frames: dict[str, list[JournaledFrame]] = {}
    for task_id, index, event, plain, verbose in conn.execute(
        "SELECT task_id, idx, event, plain, verbose FROM frames ORDER BY task_id, idx"
    ):
        frames.setdefault(task_id, []).append(
            JournaledFrame(int(index), str(event), bytes(plain), None if verbose is None else bytes(verbose))
        )
    tasks = conn.execute("SELECT task_id, pool_id, record FROM tasks ORDER BY seq")
    return [
        JournaledTask(str(task_id), str(pool_id), bytes(record), tuple(frames.get(task_id, ())))
        for task_id, pool_id, record in tasks
    ]
