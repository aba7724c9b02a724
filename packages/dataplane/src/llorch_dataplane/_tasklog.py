"""A task's stream is an append-only log of SSE frames (design: "streams are logs").

Frames are encoded once, when appended, and every subscriber copies the same
bytes: the hot path does no per-subscriber work. Each event's id is its index
in the log, so `Last-Event-ID: n` resumes at n + 1 with nothing lost or
repeated (OC-CTRL-2100). After the terminal event (`end` or `error`) nothing
is appended, and once a cancel is acknowledged no `token` is (ORCH-3026).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

TERMINAL = frozenset({"end", "error"})


@dataclass(frozen=True, slots=True)
class Frame:
    """One event as it goes on the wire; `verbose` is the `?verbose=true` variant when it differs."""

    event: str
    plain: bytes
    verbose: bytes


class TaskLog:
    """Append-only frames with wake-ups for readers; single event loop, no locks needed."""

    def __init__(self) -> None:
        self._frames: list[Frame] = []
        self._changed = asyncio.Event()
        self._terminal: str | None = None
        self._tokens_closed = False

    def __len__(self) -> int:
        return len(self._frames)

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

    def append(self, frame: Frame) -> bool:
        """Append unless the log has ended (or it is a token after `close_tokens`); True when appended."""
        if self._terminal is not None or (frame.event == "token" and self._tokens_closed):
            return False
        self._frames.append(frame)
        if frame.event in TERMINAL:
            self._terminal = frame.event
        # Wake every waiting reader, then give the next appends a fresh event to set.
        self._changed.set()
        self._changed = asyncio.Event()
        return True

    def frames(self, start: int) -> list[Frame]:
        return self._frames[start:]

    async def follow(self, start: int, keepalive_s: float) -> AsyncIterator[list[Frame] | None]:
        """Yield batches of frames from index `start` as they arrive; None when idle for `keepalive_s`.

        Ends after the terminal frame has been yielded.
        """
        position = start
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
