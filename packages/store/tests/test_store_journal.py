"""The admission journal: recovery order, group commits, a writer that never blocks callers, failures.

Every test uses a real SQLite file in tmp_path. The writer is held back with a
real lock: a second connection's `BEGIN IMMEDIATE`, which the writer's own
transaction has to wait for.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from llorch_store import (
    JournaledFrame,
    JournaledTask,
    JournalOverflowError,
    SchemaTooNewError,
    TaskJournal,
)


@contextmanager
def writer_blocked(path: Path) -> Iterator[None]:
    """Hold the database's write lock from another connection until the block ends."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def writer_took_everything(journal: TaskJournal) -> None:
    """Wait until the writer drained the queue (it is then stuck on the lock with that batch)."""
    deadline = time.monotonic() + 60
    while journal.stats.pending:
        assert time.monotonic() < deadline, "the writer never drained its queue"
        time.sleep(0.001)


class Failures:
    """An on_failure callback that remembers what it was called with, and from which thread."""

    def __init__(self) -> None:
        self.errors: list[BaseException] = []
        self.threads: list[str] = []
        self.called = threading.Event()

    def __call__(self, exc: BaseException) -> None:
        self.errors.append(exc)
        self.threads.append(threading.current_thread().name)
        self.called.set()


def frames(task_id: str, count: int) -> list[JournaledFrame]:
    return [JournaledFrame(i, "token", f"{task_id}:{i}".encode(), None) for i in range(count)]


@pytest.mark.req("CAT-1073", "CAT-1074")
def test_recover_returns_unfinished_tasks_in_admission_order_with_frames_by_index(tmp_path: Path) -> None:
    journal = TaskJournal(tmp_path / "journal.sqlite3")
    for task_id in ("t-zeta", "t-alpha", "t-ended", "t-mid"):
        journal.admitted(task_id, "pool-a", b"record of " + task_id.encode())
    # Out of order on purpose: recovery orders frames by index, not by arrival.
    journal.frame("t-alpha", 2, "end", b"end-plain", b"end-verbose")
    journal.frame("t-alpha", 0, "started", b"s", None)
    journal.frame("t-alpha", 1, "token", b"tok", b"tok-verbose")
    journal.frame("t-ended", 0, "started", b"s", None)
    journal.ended("t-ended")
    assert journal.flush()
    journal.close()

    reopened = TaskJournal(tmp_path / "journal.sqlite3")
    recovered = reopened.recover()
    reopened.close()
    assert [t.task_id for t in recovered] == ["t-zeta", "t-alpha", "t-mid"]
    assert recovered[1] == JournaledTask(
        task_id="t-alpha",
        pool_id="pool-a",
        record=b"record of t-alpha",
        frames=(
            JournaledFrame(0, "started", b"s", None),
            JournaledFrame(1, "token", b"tok", b"tok-verbose"),
            JournaledFrame(2, "end", b"end-plain", b"end-verbose"),
        ),
    )
    assert recovered[0].frames == ()
    assert recovered[2].frames == ()
    with sqlite3.connect(tmp_path / "journal.sqlite3") as conn:
        assert conn.execute("SELECT count(*) FROM frames WHERE task_id = 't-ended'").fetchone()[0] == 0


@pytest.mark.req("CAT-1073")
def test_readmitting_an_id_keeps_its_place_and_late_frames_of_an_ended_task_are_swept(
    tmp_path: Path,
) -> None:
    journal = TaskJournal(tmp_path / "j.sqlite3")
    journal.admitted("first", "p", b"1")
    journal.admitted("second", "p", b"2")
    journal.admitted("first", "p", b"1 again")
    journal.ended("gone")
    journal.frame("gone", 0, "token", b"late", None)
    assert journal.flush()
    recovered = journal.recover()
    journal.close()
    assert [(t.task_id, t.record) for t in recovered] == [("first", b"1 again"), ("second", b"2")]
    with sqlite3.connect(tmp_path / "j.sqlite3") as conn:
        assert conn.execute("SELECT count(*) FROM frames").fetchone()[0] == 0


@pytest.mark.req("CAT-1074")
def test_forget_removes_the_rows_of_an_unfinished_task(tmp_path: Path) -> None:
    journal = TaskJournal(tmp_path / "j.sqlite3")
    journal.admitted("kept", "p", b"k")
    journal.admitted("dropped", "p", b"d")
    journal.frame("dropped", 0, "started", b"s", None)
    journal.forget("dropped")
    journal.close()
    with sqlite3.connect(tmp_path / "j.sqlite3") as conn:
        assert conn.execute("SELECT task_id FROM tasks").fetchall() == [("kept",)]
        assert conn.execute("SELECT count(*) FROM frames").fetchone()[0] == 0


@pytest.mark.req("CAT-1070")
def test_journal_is_wal_with_a_schema_version_and_refuses_a_newer_one(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    TaskJournal(path).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(SchemaTooNewError, match="version 99"):
        TaskJournal(path)


@pytest.mark.req("CAT-1072", "CAT-1079")
def test_a_burst_of_1000_frames_is_one_group_commit(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = TaskJournal(path)
    with writer_blocked(path):
        journal.admitted("t", "p", b"r")
        writer_took_everything(journal)
        for i in range(1000):
            journal.frame("t", i, "token", b"x", None)
        assert (journal.stats.commits, journal.stats.pending) == (0, 1000)
    assert journal.flush(timeout_s=60)
    stats = journal.stats
    # One commit for the admission the writer held, one for the whole burst behind it.
    assert stats.commits == 2
    assert stats.rows_written == 1001
    assert stats.largest_batch == 1000
    assert (stats.pending, stats.dropped, stats.failed) == (0, 0, False)
    [task] = journal.recover()
    journal.close()
    assert [f.index for f in task.frames] == list(range(1000))


@pytest.mark.req("CAT-1071")
def test_callers_return_while_the_writer_cannot_commit(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = TaskJournal(path, busy_timeout_s=300)
    count = 100_000
    with writer_blocked(path):
        journal.admitted("t", "p", b"r")
        writer_took_everything(journal)
        started = time.perf_counter()
        for i in range(count):
            journal.frame("t", i, "token", b"tok", None)
        elapsed_s = time.perf_counter() - started
        # Every call returned while the writer was stuck behind the lock: nothing is committed yet.
        assert (journal.stats.commits, journal.stats.pending) == (0, count)
    # Generous on purpose (a busy 2-core machine); it is about 0.1 s here.
    assert elapsed_s < 20
    assert journal.flush(timeout_s=120)
    assert journal.stats.commits == 2
    [task] = journal.recover()
    journal.close()
    assert len(task.frames) == count


@pytest.mark.req("CAT-1075", "CAT-1078")
def test_a_database_locked_past_the_busy_timeout_fails_the_journal_loudly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "j.sqlite3"
    failures = Failures()
    journal = TaskJournal(path, on_failure=failures, busy_timeout_s=0.05)
    with caplog.at_level(logging.CRITICAL, logger="llorch_store"), writer_blocked(path):
        journal.admitted("t", "p", b"r")
        assert failures.called.wait(30)
        assert not journal.flush(timeout_s=1)
    [error] = failures.errors
    assert isinstance(error, sqlite3.OperationalError)
    assert "locked" in str(error)
    assert failures.threads == ["journal:j.sqlite3"]
    assert any(r.levelno == logging.CRITICAL and r.exc_info for r in caplog.records)
    journal.frame("t", 0, "token", b"x", None)
    stats = journal.stats
    assert stats.failed
    assert stats.dropped == 2
    assert stats.commits == 0
    journal.close()
    journal.close()
    assert len(failures.errors) == 1


@pytest.mark.req("CAT-1076")
def test_too_many_pending_writes_fail_the_journal_with_an_overflow(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    failures = Failures()
    journal = TaskJournal(path, on_failure=failures, max_pending=10, busy_timeout_s=300)
    with writer_blocked(path):
        for i in range(20):
            journal.frame("t", i, "token", b"x", None)
        assert failures.called.is_set()
        [error] = failures.errors
        assert isinstance(error, JournalOverflowError)
        assert error.max_pending == 10
        assert journal.stats.failed
    journal.close()
    assert journal.stats.dropped >= 10


@pytest.mark.req("CAT-1077")
def test_close_commits_what_is_pending_and_later_writes_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = TaskJournal(path)
    journal.admitted("t", "p", b"r")
    for i in range(50):
        journal.frame("t", i, "token", b"x", None)
    journal.close()
    journal.close()
    journal.frame("t", 50, "token", b"after close", None)
    journal.ended("t")
    assert journal.stats.dropped == 2
    assert journal.flush()
    reopened = TaskJournal(path)
    [task] = reopened.recover()
    reopened.close()
    assert [f.index for f in task.frames] == list(range(50))


@pytest.mark.req("CAT-1078")
def test_flush_returns_false_while_the_writer_is_held_and_true_once_committed(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = TaskJournal(path, busy_timeout_s=300)
    with writer_blocked(path):
        journal.admitted("t", "p", b"r")
        assert not journal.flush(timeout_s=0.2)
    assert journal.flush(timeout_s=60)
    assert [t.task_id for t in journal.recover()] == ["t"]
    journal.close()


@pytest.mark.req("CAT-1078")
def test_when_committed_calls_back_from_the_writer_after_the_commit(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = TaskJournal(path, busy_timeout_s=300)
    called = threading.Event()
    seen: list[tuple[str, int]] = []

    def callback() -> None:
        seen.append((threading.current_thread().name, journal.stats.commits))
        called.set()

    with writer_blocked(path):
        journal.admitted("t", "p", b"r")
        journal.when_committed(callback)
        assert not called.wait(0.2)
    assert called.wait(60)
    assert seen == [("journal:j.sqlite3", 1)]
    journal.close()


@pytest.mark.req("CAT-1078")
def test_a_raising_callback_does_not_stop_the_writer_and_a_failed_journal_calls_back_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "j.sqlite3"
    journal = TaskJournal(path, busy_timeout_s=0.05)

    def boom() -> None:
        raise RuntimeError("the loop is closed")

    with caplog.at_level(logging.ERROR, logger="llorch_store"):
        journal.when_committed(boom)
        journal.admitted("t", "p", b"r")
        assert journal.flush(timeout_s=60)
    assert any("when_committed callback raised" in r.getMessage() for r in caplog.records)
    with writer_blocked(path):
        journal.admitted("u", "p", b"r")
        assert not journal.flush(timeout_s=60)
    called = threading.Event()
    journal.when_committed(called.set)
    assert called.is_set()
    journal.close()
