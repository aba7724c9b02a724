"""The admission journal across real process deaths: SIGKILL after a flush, and a full disk.

Each test runs the journal in a child Python process and kills or starves it
for real (os.kill with SIGKILL; RLIMIT_FSIZE for the full disk).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from llorch_store import TaskJournal

TASKS = 60
FRAMES = 25

# Admits TASKS tasks with FRAMES frames each, ends every fifth, flushes and says so; then keeps
# journaling frames of one more task until it is killed.
ADMIT_FLUSH_AND_KEEP_WRITING = f"""
import sys
from pathlib import Path
from llorch_store import TaskJournal

journal = TaskJournal(Path(sys.argv[1]))
for t in range({TASKS}):
    journal.admitted(f"task-{{t:03d}}", f"pool-{{t % 3}}", f"record-{{t}}".encode())
    for i in range({FRAMES}):
        journal.frame(f"task-{{t:03d}}", i, "token", f"{{t}}:{{i}}".encode(), None if i % 2 else b"verbose")
    if t % 5 == 0:
        journal.ended(f"task-{{t:03d}}")
assert journal.flush(60)
journal.admitted("late", "pool-0", b"late")
print("flushed", flush=True)
i = 0
while True:
    journal.frame("late", i, "token", b"x" * 100, None)
    i += 1
    if i % 1000 == 0:
        journal.flush(60)
"""

# Opens the journal, then caps the size of any file it may grow, and writes until the journal fails.
WRITE_UNTIL_THE_DISK_IS_FULL = """
import resource, signal, sys, threading
from pathlib import Path
from llorch_store import TaskJournal

failed = threading.Event()
errors = []
def on_failure(exc):
    errors.append(exc)
    failed.set()

journal = TaskJournal(Path(sys.argv[1]), on_failure=on_failure)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG from write(2) instead of a signal
resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, resource.RLIM_INFINITY))
journal.admitted("t", "p", b"r")
for i in range(10_000):
    journal.frame("t", i, "token", b"y" * 4096, None)
    if i % 50 == 49 and not journal.flush(60):
        break
failed.wait(60)
print(type(errors[0]).__name__ if errors else "no failure", str(errors[0]) if errors else "", flush=True)
print("flush", journal.flush(1), "failed", journal.stats.failed, flush=True)
journal.close()
"""


def run_child(program: str, path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", program, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.req("CAT-1070", "CAT-1073")
def test_everything_flushed_before_a_sigkill_is_recovered(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    child = run_child(ADMIT_FLUSH_AND_KEEP_WRITING, path)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line == "flushed\n", child.stderr.read() if child.stderr else line
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
    assert child.returncode == -signal.SIGKILL

    journal = TaskJournal(path)
    recovered = journal.recover()
    journal.close()
    # "late" was admitted after the flush: the kill may come before its first commit.
    late = [t for t in recovered if t.task_id == "late"]
    expected = [f"task-{t:03d}" for t in range(TASKS) if t % 5] + [t.task_id for t in late]
    assert [t.task_id for t in recovered] == expected
    for task in recovered[: TASKS - TASKS // 5]:
        t = int(task.task_id.removeprefix("task-"))
        assert (task.pool_id, task.record) == (f"pool-{t % 3}", f"record-{t}".encode())
        assert [(f.index, f.plain, f.verbose) for f in task.frames] == [
            (i, f"{t}:{i}".encode(), None if i % 2 else b"verbose") for i in range(FRAMES)
        ]
    # Group commits are applied in order, so what the kill left of the last task is a prefix.
    for task in late:
        assert [f.index for f in task.frames] == list(range(len(task.frames)))


@pytest.mark.req("CAT-1075")
def test_a_full_disk_fails_the_journal_through_on_failure(tmp_path: Path) -> None:
    child = run_child(WRITE_UNTIL_THE_DISK_IS_FULL, tmp_path / "journal.sqlite3")
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    verdict, flushed = out.splitlines()
    # SQLite reports EFBIG as "disk I/O error" or "database or disk is full", depending on the write.
    assert verdict.startswith(("OperationalError database or disk", "OperationalError disk I/O error"))
    assert flushed == "flush False failed True"
    assert "admission journal" in err
    assert "stopped writing" in err
