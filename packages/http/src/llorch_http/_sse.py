"""Server-Sent Events framing (OC-CTRL-2100): `id:`, `event:`, one `data:` line, blank line.

Payloads are compact JSON, which never contains a raw newline, so one `data:`
line always suffices.
"""

from __future__ import annotations

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
KEEPALIVE = b": keepalive\n\n"


def sse_event(event: str, data: bytes, event_id: int | None = None) -> bytes:
    """One SSE frame; `data` is a single line (compact JSON)."""
    head = b"" if event_id is None else b"id: %d\n" % event_id
    return head + b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"
