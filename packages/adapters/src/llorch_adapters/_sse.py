"""Incremental `data:` line reading from a byte stream, with a deadline per frame (OC-ADAPT-5102).

Frames are handed out as soon as their line is complete; nothing waits for the
rest of the body. Blank lines and `:` comments (llama-server's keep-alive
pings) are not frames, so they do not reset the idle deadline.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

_DATA = b"data:"


class DataLineReader:
    """Hands out the payload of each `data:` line of an SSE byte stream."""

    __slots__ = ("_chunks", "_lines", "_partial")

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._lines: deque[bytes] = deque()
        self._partial = b""

    async def next_data(self, deadline: float) -> bytes | None:
        """The next payload, or None at the end of the stream; `TimeoutError` past `deadline` (loop time)."""
        data = self._pop_data()
        if data is not None:
            return data
        async with asyncio.timeout_at(deadline):
            while True:
                chunk = await anext(self._chunks, None)
                if chunk is None:
                    # An unterminated last line still counts: the caller decides if it is whole.
                    tail, self._partial = self._partial, b""
                    return tail[len(_DATA) :] if tail.startswith(_DATA) else None
                self._feed(chunk)
                data = self._pop_data()
                if data is not None:
                    return data

    def _feed(self, chunk: bytes) -> None:
        *complete, self._partial = (self._partial + chunk).split(b"\n")
        self._lines.extend(complete)

    def _pop_data(self) -> bytes | None:
        lines = self._lines
        while lines:
            line = lines.popleft()
            if line.startswith(_DATA):
                return line[len(_DATA) :]
        return None
