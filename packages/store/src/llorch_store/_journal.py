"""The durable admission journal: enqueue-only writes, group commits in one writer thread (CAT-1070..1079).

orchestratord records each admitted task, each frame of its event log and its
end here, so a restart after SIGTERM or SIGKILL brings unfinished tasks back
(OC-CTRL-2120). The event loop must never wait on the disk, so the write
methods only append to an in-memory deque; one writer thread drains all that
is pending into one SQLite transaction per wake-up.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ._db import BUSY_TIMEOUT_S, Database
from ._errors import JournalOverflowError
from ._journal_sql import ADMITTED, DELETE, FRAME, MIGRATIONS, JournaledTask, Op, apply, unfinished

log = logging.getLogger(__name__)

DEFAULT_MAX_PENDING = 1_000_000


@dataclass(frozen=True, slots=True)
class JournalStats:
    """What the writer has done so far (CAT-1079)."""

    commits: int
    rows_written: int
    largest_batch: int
    pending: int
    dropped: int
    failed: bool


class _Marker(threading.Event):
    """A point in the write order; set once everything enqueued before it is committed (or never will be)."""

    def __init__(self, then: Callable[[], None] | None = None) -> None:
        super().__init__()
        self._then = then

    def set(self) -> None:
        super().set()
        if self._then is not None:
            # A raising callback (say, call_soon_threadsafe on a closed loop) must not end the writer.
            try:
                self._then()
            except Exception:
                log.exception("an admission journal when_committed callback raised")


class TaskJournal:
    """The admission journal in one SQLite file; see the module docstring.

    `admitted`, `frame`, `ended` and `forget` only enqueue: they never block and
    never touch SQLite on the caller's thread (CAT-1071). After `close`, or after
    the writer failed, they are ignored and counted in `stats.dropped` (CAT-1077).
    `on_failure` is called once, with the exception, when the journal cannot go
    on (CAT-1075, CAT-1076).
    """

    def __init__(
        self,
        path: Path,
        *,
        on_failure: Callable[[BaseException], None] | None = None,
        max_pending: int = DEFAULT_MAX_PENDING,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
    ) -> None:
        self._db = Database(path, MIGRATIONS, synchronous="NORMAL", busy_timeout_s=busy_timeout_s)
        self._on_failure = on_failure
        self._max_pending = max_pending
        # deque.append and popleft are atomic, so callers and the writer share it without a lock.
        self._pending: deque[Op | _Marker] = deque()
        self._wake = threading.Event()
        # Writes are taken while open and not failed; `_closing` is set by close(), `_closed` after it.
        self._failed = self._closing = self._closed = False
        self._failure_lock = threading.Lock()
        self._close_lock = threading.Lock()
        self._commits = self._rows = self._largest = self._dropped = 0
        self._writer = threading.Thread(target=self._run, name=f"journal:{path.name}", daemon=True)
        self._writer.start()

    # ------------------------------------------------------------------ enqueue (any thread)

    def admitted(self, task_id: str, pool_id: str, record: bytes) -> None:
        """Record an admitted task; `record` is opaque bytes the caller decodes at recovery."""
        self._enqueue((ADMITTED, (task_id, pool_id, record)))

    def frame(self, task_id: str, index: int, event: str, plain: bytes, verbose: bytes | None) -> None:
        """Record one frame of a task's event log (`verbose` None when it equals `plain`)."""
        # The hot path (one call per token), so _enqueue's common case is inlined here.
        pending = self._pending
        if self._failed or self._closing or len(pending) >= self._max_pending:
            self._enqueue((FRAME, (task_id, index, event, plain, verbose)))
            return
        pending.append((FRAME, (task_id, index, event, plain, verbose)))
        if not self._wake.is_set():
            self._wake.set()

    def ended(self, task_id: str) -> None:
        """The task reached its terminal frame: its rows are deleted with this commit (CAT-1074)."""
        self._enqueue((DELETE, (task_id,)))

    def forget(self, task_id: str) -> None:
        """Delete the task's rows, whether or not it ended (CAT-1074)."""
        self._enqueue((DELETE, (task_id,)))

    def _enqueue(self, item: Op | _Marker) -> None:
        if self._failed or self._closing:
            self._refuse(item)
            return
        if len(self._pending) >= self._max_pending:
            self._refuse(item)
            self._fail(JournalOverflowError(self._max_pending))
            return
        self._pending.append(item)
        # is_set() is a plain read; set() takes a lock, so only pay for it when the writer sleeps.
        if not self._wake.is_set():
            self._wake.set()

    # ------------------------------------------------------------------ blocking calls

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until everything enqueued before this call is committed (CAT-1078).

        False when that did not happen within `timeout_s`, or the journal failed;
        True after `close`, which commits everything first.
        """
        if self._failed or self._closing:
            if self._closing:
                self._writer.join(timeout_s)
            return not self._failed and not self._writer.is_alive()
        marker = _Marker()
        self._enqueue(marker)
        return marker.wait(timeout_s) and not self._failed

    def when_committed(self, callback: Callable[[], None]) -> None:
        """Call `callback()` from the writer thread once everything enqueued so far is committed.

        Also called when that can no longer happen (the journal failed or closed), so a
        waiter never hangs; `stats.failed` tells which. Callers on an event loop hand the
        call back with `loop.call_soon_threadsafe` (OC-CTRL-2120).
        """
        if self._failed or self._closing:
            callback()
            return
        self._enqueue(_Marker(callback))

    def close(self) -> None:
        """Commit what is pending, stop the writer thread and close the database; idempotent (CAT-1077)."""
        with self._close_lock:
            if self._closed:
                return
            self._closing = True
            self._wake.set()
            self._writer.join()
            # Whatever raced past the _closing check after the writer's last drain.
            self._release_all()
            self._db.close()
            self._closed = True

    def recover(self) -> list[JournaledTask]:
        """Every task not ended, in admission order, with its committed frames by index (CAT-1073).

        Call it at start-up, before any write: it reads what is committed, which
        then is what the previous life of the process left.
        """
        with self._db.write() as conn:
            return unfinished(conn)

    @property
    def stats(self) -> JournalStats:
        return JournalStats(
            commits=self._commits,
            rows_written=self._rows,
            largest_batch=self._largest,
            pending=len(self._pending),
            dropped=self._dropped,
            failed=self._failed,
        )

    # ------------------------------------------------------------------ writer thread

    def _run(self) -> None:
        while True:
            self._wake.wait()
            # Clear before draining: an item appended after the drain finds the event clear and sets it.
            self._wake.clear()
            if self._failed:
                self._release_all()
                return
            self._write(self._drain())
            if self._closing and not self._pending:
                self._release_all()
                return

    def _drain(self) -> list[Op | _Marker]:
        pending = self._pending
        return [pending.popleft() for _ in range(len(pending))]

    def _write(self, batch: list[Op | _Marker]) -> None:
        ops = [item for item in batch if not isinstance(item, _Marker)]
        try:
            if ops:
                # One transaction for everything pending: the group commit (CAT-1072).
                with self._db.write() as conn:
                    apply(conn, ops)
                self._commits += 1
                self._rows += len(ops)
                self._largest = max(self._largest, len(ops))
        except Exception as exc:
            self._dropped += len(ops)
            self._fail(exc)
        finally:
            for item in batch:
                if isinstance(item, _Marker):
                    item.set()

    def _release_all(self) -> None:
        """Wake every flush still waiting; what they wait for will never be committed."""
        for item in self._drain():
            self._refuse(item)

    def _refuse(self, item: Op | _Marker) -> None:
        """A write that will never be committed is counted; a marker is set, so no waiter hangs."""
        if isinstance(item, _Marker):
            item.set()
        else:
            self._dropped += 1

    def _fail(self, exc: BaseException) -> None:
        with self._failure_lock:
            if self._failed:
                return
            self._failed = True
        # Loud on purpose: from here on nothing reaches the disk and a restart would lose tasks.
        log.critical(
            "admission journal %s stopped writing; unfinished tasks will not survive a restart",
            self._db.path,
            exc_info=exc,
        )
        self._wake.set()
        if self._on_failure is not None:
            try:
                self._on_failure(exc)
            except Exception:
                log.exception("the admission journal's on_failure callback raised")
