"""What the data plane writes to the durable admission journal, and reads back after a restart.

The journal itself (SQLite, group commits in a writer thread) lives in
`llorch_store`; the data plane only needs the narrow protocol below, so it
never waits on the disk (OC-CTRL-2120, OC-CTRL-2172).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Protocol

import msgspec

from llorch_contracts.api import TaskRequest

from ._tasklog import AppendHook, Frame


class JournalSink(Protocol):
    """Enqueue-only writes: none of these may block the event loop."""

    def admitted(self, task_id: str, pool_id: str, record: bytes) -> None: ...

    def frame(self, task_id: str, index: int, event: str, plain: bytes, verbose: bytes | None) -> None: ...

    def ended(self, task_id: str) -> None: ...

    def forget(self, task_id: str) -> None: ...

    def when_committed(self, callback: Callable[[], None]) -> None:
        """Call `callback` (from any thread) once everything written so far is durable."""
        ...


class JournaledFrameLike(Protocol):
    @property
    def index(self) -> int: ...
    @property
    def event(self) -> str: ...
    @property
    def plain(self) -> bytes: ...
    @property
    def verbose(self) -> bytes | None: ...


class JournaledTaskLike(Protocol):
    @property
    def task_id(self) -> str: ...
    @property
    def pool_id(self) -> str: ...
    @property
    def record(self) -> bytes: ...
    @property
    def frames(self) -> Sequence[JournaledFrameLike]: ...


class AdmissionRecord(msgspec.Struct, frozen=True, kw_only=True):
    """Everything needed to rebuild an admitted task (its log comes from the journaled frames)."""

    request: TaskRequest
    correlation_id: str
    identity: str
    admitted_ms: int


encode_record = msgspec.json.Encoder().encode
decode_record = msgspec.json.Decoder(AdmissionRecord).decode


def journal_hook(journal: JournalSink, task_id: str) -> AppendHook:
    """The TaskLog append hook that journals a task's frames, all but its tokens after the first.

    The first token is enough to know, after a restart, that the task streamed and must
    end with WORKER_RESET rather than run again; journaling every token would put a row
    per token on the writer and its share of the interpreter on the relay (OC-CTRL-2175).
    """
    streamed = False

    def on_append(event_id: int, frame: Frame) -> None:
        nonlocal streamed
        if frame.event == "token":
            if streamed:
                return
            streamed = True
        verbose = None if frame.verbose is frame.plain else frame.verbose
        journal.frame(task_id, event_id, frame.event, frame.plain, verbose)

    return on_append


def restored_frames(entry: JournaledTaskLike) -> list[tuple[int, Frame]]:
    """The journaled frames as (id, Frame), ids ascending."""
    return [
        (f.index, Frame(f.event, f.plain, f.plain if f.verbose is None else f.verbose))
        for f in sorted(entry.frames, key=lambda f: f.index)
    ]


def next_epoch_id(frames: list[tuple[int, Frame]], max_events: int) -> int:
    """The first event id after a restart: past any id a client can have seen before it (OC-CTRL-2173).

    A log holds at most `max_events` frames and ids only jump at a restart, so the
    next multiple of `max_events` above the last journaled id is above every id
    that was ever sent, including the few the crash kept from the journal.
    """
    last = frames[-1][0] if frames else 0
    return (last // max_events + 1) * max_events


async def committed(journal: JournalSink, timeout_s: float) -> bool:
    """Wait until everything journaled so far is durable; False when that took over `timeout_s`."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def resolve() -> None:
        if not done.done():
            done.set_result(None)

    def from_writer() -> None:
        loop.call_soon_threadsafe(resolve)

    journal.when_committed(from_writer)
    try:
        async with asyncio.timeout(timeout_s):
            await done
    except TimeoutError:
        return False
    return True
