"""What the data plane journals, and how it rebuilds tasks from it after a restart (OC-CTRL-2172..2175).

The journal here is an in-memory recorder of the `JournalSink` calls; the SQLite
journal itself is tested in packages/store and end to end in orchestratord's tests.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec
import pytest

from llorch_adapters import MockAdapter, MockScript
from llorch_config import parse_config
from llorch_contracts.api import TaskRequest
from llorch_dataplane import Orchestrator, PoolView, Task
from llorch_testkit import pool_status, replica_status

YAML = (
    "orchestratord:\n  sse: {max_events_per_task: 100}\n"
    "pools:\n  - id: p\n    engine: {kind: mock}\n    model: {ref: m}\n"
)


@dataclass(frozen=True)
class Frame:
    index: int
    event: str
    plain: bytes
    verbose: bytes | None


@dataclass
class Entry:
    task_id: str
    pool_id: str
    record: bytes
    frames: list[Frame] = field(default_factory=list)


class RecordingJournal:
    """Keeps what a journal would hold: unfinished tasks with their frames, in admission order."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self.frames_written = 0

    def admitted(self, task_id: str, pool_id: str, record: bytes) -> None:
        self.entries[task_id] = Entry(task_id, pool_id, record)

    def frame(self, task_id: str, index: int, event: str, plain: bytes, verbose: bytes | None) -> None:
        self.frames_written += 1
        self.entries[task_id].frames.append(Frame(index, event, plain, verbose))

    def ended(self, task_id: str) -> None:
        self.entries.pop(task_id, None)

    def forget(self, task_id: str) -> None:
        self.entries.pop(task_id, None)

    def when_committed(self, callback: Callable[[], None]) -> None:
        callback()


def orchestrator(journal: RecordingJournal, script: MockScript) -> Orchestrator:
    view = PoolView()
    config = parse_config(YAML)
    view.put_local(pool_status("p", replica_status("p")))
    return Orchestrator(config, view, {"mock": MockAdapter(script)}, journal=journal)


def request(max_tokens: int) -> TaskRequest:
    return msgspec.convert({"model_ref": "m", "prompt": "hi", "max_tokens": max_tokens}, TaskRequest)


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(5000):
        if condition():
            return
        await asyncio.sleep(0.002)
    raise AssertionError("timed out")


def wire(task: Task) -> list[tuple[int, str, dict[str, object]]]:
    out = []
    for frame_id, frame in task.log.numbered():
        out.append((frame_id, frame.event, json.loads(frame.plain.decode().split("data: ", 1)[1])))
    return out


@pytest.mark.req("OC-CTRL-2175", "OC-CTRL-2172", "OC-CTRL-2173")
async def test_a_streaming_task_journals_one_token_and_ends_worker_reset_after_a_restart() -> None:
    journal = RecordingJournal()
    first = orchestrator(journal, MockScript(token_delay_s=0.01))
    runner = asyncio.create_task(first.run())
    task = first.admit(request(max_tokens=50), "c")
    await until(lambda: task.events.tokens >= 10)
    crashed = copy.deepcopy(journal.entries)  # what the file holds if the process is killed now
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    journal.entries = crashed
    kept = journal.entries[task.task_id]
    assert [f.event for f in kept.frames].count("token") == 1, "only the first token is journaled"

    second = orchestrator(journal, MockScript())  # the same journal file, a new life
    second.restore(list(journal.entries.values()))  # type: ignore[arg-type]
    restored = second.get(task.task_id)
    events = wire(restored)
    frame_id, name, data = events[-1]
    assert (name, data["code"], data["retriable"]) == ("error", "WORKER_RESET", True)
    assert frame_id >= 100, "a new life never reuses an id a client may have seen"
    assert restored.state.value == "failed"


@pytest.mark.req("OC-CTRL-2172")
async def test_queued_tasks_are_restored_in_admission_order_and_run() -> None:
    journal = RecordingJournal()
    first = orchestrator(journal, MockScript())
    ids = [first.admit(request(max_tokens=3), "c").task_id for _ in range(3)]  # never dispatched
    second = orchestrator(journal, MockScript())
    second.restore(list(journal.entries.values()))  # type: ignore[arg-type]
    assert [second.status(i).queue_position for i in ids] == [0, 1, 2]
    runner = asyncio.create_task(second.run())
    try:
        await until(lambda: all(second.get(i).terminal for i in ids))
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    started = [second.get(i).started_ms for i in ids]
    assert started == sorted(started)
    assert [wire(second.get(i))[-1][1] for i in ids] == ["end"] * 3
