"""A lean HTTP/1.1 client on asyncio streams: keep-alive, chunked bodies, SSE frames counted by event name.

httpx spends tens of microseconds per received chunk; this one does two
stream reads per chunk and one `bytes.count` per batch of frames, so the
client stays far below the rates it measures (its CPU time is reported too).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

READ_LIMIT_BYTES = 1 << 22
TOKEN = b"event: token\n"
TERMINALS = (b"event: end\n", b"event: error\n")


class ProtocolError(RuntimeError):
    """The server answered something this client does not understand."""


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str]
    reader: asyncio.StreamReader

    async def read(self) -> bytes:
        """The whole body (Content-Length or chunked)."""
        if self.headers.get("transfer-encoding") == "chunked":
            return b"".join([chunk async for chunk in self.chunks()])
        return await self.reader.readexactly(int(self.headers.get("content-length", "0")))

    async def chunks(self) -> AsyncIterator[bytes]:
        """De-chunked body pieces as they arrive; ends after the last chunk."""
        if self.headers.get("transfer-encoding") != "chunked":
            raise ProtocolError(f"expected a chunked body, got headers {self.headers}")
        readuntil, readexactly = self.reader.readuntil, self.reader.readexactly
        while True:
            size = int((await readuntil(b"\r\n")).split(b";", 1)[0], 16)
            if size == 0:
                await readuntil(b"\r\n")  # no trailers are ever sent
                return
            data = await readexactly(size + 2)
            yield data[:-2]


class Connection:
    """One keep-alive connection; requests run one after another."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self._reader = reader
        self._writer = writer
        self._host = host

    @classmethod
    async def open(cls, base_url: str) -> Connection:
        url = urlsplit(base_url)
        reader, writer = await asyncio.open_connection(url.hostname, url.port, limit=READ_LIMIT_BYTES)
        return cls(reader, writer, f"{url.hostname}:{url.port}")

    async def request(self, method: str, path: str, body: bytes | None = None) -> Response:
        """Send a request and read the status line and headers; the caller reads the body."""
        head = f"{method} {path} HTTP/1.1\r\nHost: {self._host}\r\nAccept: */*\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self._writer.write(head.encode() + b"\r\n" + (body or b""))
        raw = await self._reader.readuntil(b"\r\n\r\n")
        status_line, *lines = raw[:-4].decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise ProtocolError(f"bad status line {status_line!r}")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return Response(int(parts[1]), headers, self._reader)

    async def close(self) -> None:
        self._writer.close()
        await self._writer.wait_closed()


@dataclass(slots=True)
class SseTally:
    """Counts `token` frames in an SSE byte stream and keeps the terminal frame; frames may span pieces."""

    tokens: int = 0
    first_token_at: float | None = None
    terminal: bytes | None = None
    _carry: bytes = field(default=b"", repr=False)

    def feed(self, data: bytes) -> bool:
        """Account for `data`; True once the terminal frame (`end` or `error`) has been seen."""
        buffer = self._carry + data if self._carry else data
        cut = buffer.rfind(b"\n\n") + 2
        complete, self._carry = buffer[:cut], buffer[cut:]
        count = complete.count(TOKEN)
        if count and self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        self.tokens += count
        for marker in TERMINALS:
            at = complete.rfind(marker)
            if at >= 0:
                self.terminal = complete[at:].rstrip(b"\n")
                return True
        return False


async def tally_stream(response: Response) -> SseTally:
    """Read an SSE response to its end, counting frames."""
    if response.status != 200:
        raise ProtocolError(f"event stream answered {response.status}: {await response.read()!r}")
    tally = SseTally()
    async for chunk in response.chunks():
        tally.feed(chunk)
    if tally.terminal is None:
        raise ProtocolError("the event stream ended without an end or error event")
    return tally
