"""A client that submits tasks and records every event of every stream (ORCH-3441).

Each admitted task gets one reader that follows `GET /v2/tasks/{id}/events`; when the
connection drops or the server restarts, the reader reconnects with `Last-Event-ID` set to the
last id it saw, so the record is what a careful client would have. Nothing here judges: the
invariant checker does (harness/chaos/_invariants.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

TERMINAL = frozenset({"end", "error"})
RECONNECT_PAUSE_S = 0.1
# A stream left open would send keepalives for good; 10 s tells that from a loaded machine's stall.
AFTER_TERMINAL_S = 10.0


@dataclass(frozen=True)
class Event:
    """One SSE event as received; `id` is None when the frame had no `id:` line."""

    id: int | None
    name: str
    data: dict[str, Any]
    connection: int


@dataclass
class TaskRecord:
    """Everything one client saw of one admitted task."""

    task_id: str
    events: list[Event] = field(default_factory=list)
    connections: int = 0
    http_statuses: list[int] = field(default_factory=list)
    cancel_status: int | None = None
    closed_after_terminal: bool | None = None
    done: bool = False

    @property
    def terminal(self) -> Event | None:
        return next((e for e in self.events if e.name in TERMINAL), None)

    @property
    def tokens(self) -> int:
        return sum(1 for e in self.events if e.name == "token")

    @property
    def outcome(self) -> str:
        """`end:<finish_reason>`, `error:<code>`, or `none` while no terminal event was seen."""
        term = self.terminal
        if term is None:
            return "none"
        if term.name == "end":
            return f"end:{term.data.get('finish_reason')}"
        return f"error:{term.data.get('code')}"

    def summary(self) -> str:
        names = [f"{e.id}:{e.name}" for e in self.events]
        shown = names if len(names) <= 12 else [*names[:5], "...", *names[-5:]]
        return (
            f"task {self.task_id}: {self.outcome}, {self.tokens} token(s), {self.connections} connection(s), "
            f"statuses {self.http_statuses[-3:]}, events [{' '.join(shown)}]"
        )


@dataclass
class Submission:
    """The answer to one POST /v2/tasks: 202 with a record, or a refusal (status and error code)."""

    status: int
    record: TaskRecord | None
    error_code: str | None = None


class Recorder:
    """Submits tasks, follows their streams, cancels on request; use as an async context manager."""

    def __init__(self, base_url: str, model_ref: str) -> None:
        self.base_url = base_url
        self.model_ref = model_ref
        self.records: dict[str, TaskRecord] = {}
        self.submissions: list[Submission] = []
        self._client = httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(10.0, read=30.0))
        self._readers: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Recorder:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        await self._client.aclose()

    @property
    def admitted(self) -> list[TaskRecord]:
        return [s.record for s in self.submissions if s.record is not None]

    async def submit(self, max_tokens: int, seed: int = 1, prompt: str = "Once upon a time") -> Submission:
        """POST one task; on 202 start following its stream at once."""
        body = {"model_ref": self.model_ref, "prompt": prompt, "max_tokens": max_tokens, "seed": seed}
        try:
            response = await self._client.post("/v2/tasks", json=body)
        except httpx.TransportError:
            submission = Submission(status=0, record=None, error_code="unreachable")
        else:
            if response.status_code == 202:
                record = TaskRecord(task_id=response.json()["task_id"])
                self.records[record.task_id] = record
                self._readers.append(asyncio.create_task(self._follow(record)))
                submission = Submission(status=202, record=record)
            else:
                code = response.json().get("code") if response.content else None
                submission = Submission(status=response.status_code, record=None, error_code=code)
        self.submissions.append(submission)
        return submission

    async def cancel(self, record: TaskRecord) -> None:
        try:
            response = await self._client.post(f"/v2/tasks/{record.task_id}/cancel")
            record.cancel_status = response.status_code
        except httpx.TransportError:
            record.cancel_status = 0

    async def wait_all(self, bound_s: float) -> float:
        """Wait until every reader saw its task end, or `bound_s`; seconds it took."""
        started = time.monotonic()
        pending = [r for r in self._readers if not r.done()]
        if pending:
            await asyncio.wait(pending, timeout=bound_s)
        return time.monotonic() - started

    async def wait_for(self, predicate: Any, bound_s: float, why: Any = list) -> None:
        """Poll `predicate()` (on the records) until true or the bound passes; `why()` explains a miss."""
        deadline = time.monotonic() + bound_s
        while not predicate():
            assert time.monotonic() < deadline, f"scenario precondition not reached in {bound_s:g}s: {why()}"
            await asyncio.sleep(0.01)

    async def _follow(self, record: TaskRecord) -> None:
        while record.terminal is None:
            last_id = next((e.id for e in reversed(record.events) if e.id is not None), None)
            headers = {} if last_id is None else {"Last-Event-ID": str(last_id)}
            record.connections += 1
            with contextlib.suppress(httpx.TransportError, httpx.StreamError):
                await self._read_stream(record, headers)
            if record.terminal is None:
                await asyncio.sleep(RECONNECT_PAUSE_S)
        record.done = True

    async def _read_stream(self, record: TaskRecord, headers: dict[str, str]) -> None:
        url = f"/v2/tasks/{record.task_id}/events"
        async with self._client.stream("GET", url, headers=headers) as response:
            record.http_statuses.append(response.status_code)
            if response.status_code != 200:
                return
            lines = response.aiter_lines()
            frame: dict[str, str] = {}
            terminal_at: float | None = None
            while True:
                try:
                    timeout = None if terminal_at is None else AFTER_TERMINAL_S
                    line = await asyncio.wait_for(anext(lines), timeout)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    record.closed_after_terminal = False
                    return
                if line == "":
                    if "data" in frame:
                        event_id = int(frame["id"]) if "id" in frame else None
                        event = Event(
                            event_id,
                            frame.get("event", "message"),
                            json.loads(frame["data"]),
                            record.connections,
                        )
                        record.events.append(event)
                        if event.name in TERMINAL and terminal_at is None:
                            terminal_at = time.monotonic()
                    frame = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(":")
                    frame[name] = value.removeprefix(" ")
            if terminal_at is not None:
                record.closed_after_terminal = True
