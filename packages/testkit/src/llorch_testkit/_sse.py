"""Parse Server-Sent Events wire text into events, as a client would."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One dispatched event; `id` is None when the event carried no `id:` line."""

    event: str
    data: str
    id: str | None


def parse_sse(text: str) -> list[SseEvent]:
    """Events in order; comment lines (keepalives) are skipped, multi-line data is joined with newlines."""
    events: list[SseEvent] = []
    name, data, event_id = "message", list[str](), None
    for line in text.replace("\r\n", "\n").split("\n"):
        if line == "":
            if data:
                events.append(SseEvent(name, "\n".join(data), event_id))
            name, data, event_id = "message", [], None
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            event_id = value
    if data:
        events.append(SseEvent(name, "\n".join(data), event_id))
    return events
