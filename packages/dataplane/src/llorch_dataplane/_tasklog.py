"""A task's stream is an append-only log of SSE frames (design: "streams are logs").

Frames are encoded once, when appended, and every subscriber copies the same
bytes: the hot path does no per-subscriber work. Event ids are consecutive
within one life of orchestratord, so `Last-Event-ID: n` resumes after n with
nothing lost or repeated (OC-CTRL-2100); a log restored after a restart
continues at a higher id so no new event can reuse an id a client saw before
the crash (OC-CTRL-2173). After the terminal event (`end` or `error`) nothing
is appended, and once a cancel is acknowledged no `token` is (ORCH-3026).
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

TERMINAL = frozenset({"end", "error"})


@dataclass(frozen=True, slots=True)
class Frame:
    """One event as it goes on the wire; `verbose` is the `?verbose=true` variant when it differs."""

    event: str
    plain: bytes
    verbose: bytes


#: Called with (event id, frame) after each append: the durable journal's hook (OC-CTRL-2120).
AppendHook = Callable[[int, Frame], None]


class TaskLog:
    """Append-only frames with wake-ups for readers; single event loop, no locks needed."""

    def __init__(self, on_append: AppendHook | None = None) -> None:
        self._frames: list[Frame] = []
        self._ids: list[int] = []
        self._next_id = 0
        self._changed = asyncio.Event()
        self._terminal: str | None = None
        self._tokens_closed = False
        self._on_append = on_append

    def __len__(self) -> int:
        """How many frames the log holds (what `max_events_per_task` bounds)."""
        return len(self._frames)

    @property
    def next_id(self) -> int:
        """The id the next appended frame gets."""
        return self._next_id

    @property
    def terminal(self) -> str | None:
        """`end` or `error` once the stream has ended, else None."""
        return self._terminal

    @property
    def accepts_tokens(self) -> bool:
        return self._terminal is None and not self._tokens_closed

    def close_tokens(self) -> None:
        """From now on `token` frames are refused: called before a cancel is acknowledged."""
        self._tokens_closed = True

    def restore(self, frames: list[tuple[int, Frame]], next_id: int) -> None:
        """Put back journaled frames (ids ascending) and continue at `next_id`; the hook is not called."""
        for event_id, frame in frames:
            self._ids.append(event_id)
            self._frames.append(frame)
            if frame.event in TERMINAL:
                self._terminal = frame.event
        self._next_id = max(next_id, self._ids[-1] + 1 if self._ids else 0)

    def append(self, frame: Frame) -> bool:
        """Append unless the log has ended (or it is a token after `close_tokens`); True when appended."""
        if self._terminal is not None or (frame.event == "token" and self._tokens_closed):
            return False
        event_id = self._next_id
        self._next_id += 1
        self._ids.append(event_id)
        self._frames.append(frame)
        if frame.event in TERMINAL:
            self._terminal = frame.event
        if self._on_append is not None:
            self._on_append(event_id, frame)
        # Wake every waiting reader, then give the next appends a fresh event to set.
        self._changed.set()
        self._changed = asyncio.Event()
        return True

    def size_bytes(self) -> int:
        """Bytes the frames hold (a verbose variant counted only when it differs)."""
        return sum(len(f.plain) + (0 if f.verbose is f.plain else len(f.verbose)) for f in self._frames)

    def position(self, first_id: int) -> int:
        """Index in the log of the first frame whose id is at least `first_id`."""
        return bisect_left(self._ids, first_id)

    def frames(self, start_id: int = 0) -> list[Frame]:
        """Frames whose id is at least `start_id`."""
        return self._frames[self.position(start_id) :]

    def numbered(self) -> list[tuple[int, Frame]]:
        """Every frame with its id."""
        return list(zip(self._ids, self._frames, strict=True))

    async def follow(self, start_id: int, keepalive_s: float) -> AsyncIterator[list[Frame] | None]:
        """Yield batches of frames from id `start_id` as they arrive; None when idle for `keepalive_s`.

        Ends after the terminal frame has been yielded.
        """
        position = self.position(start_id)
        while True:
            batch = self._frames[position:]
            if batch:
                position += len(batch)
                yield batch
                continue
            if self._terminal is not None:
                return
            try:
                async with asyncio.timeout(keepalive_s):
                    await self._changed.wait()
            except TimeoutError:
                yield None
