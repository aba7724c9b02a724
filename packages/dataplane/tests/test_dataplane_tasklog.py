"""The event log behind every SSE stream: ids, terminal events, cancel, resume, incremental delivery."""

from __future__ import annotations

import asyncio
import json

import pytest

from llorch_contracts.api import ErrorKind, FinishReason
from llorch_dataplane import TaskEvents, TaskLog
from llorch_testkit import parse_sse


def wire(log: TaskLog, start: int = 0) -> str:
    return b"".join(f.plain for f in log.frames(start)).decode()


@pytest.mark.req("OC-CTRL-2100")
def test_every_event_has_the_next_id_from_zero() -> None:
    events = TaskEvents(TaskLog())
    events.started(2, 150)
    events.token("Hel")
    events.token("lo")
    events.end(2, 10, FinishReason.stop)
    parsed = parse_sse(wire(events.log))
    assert [e.id for e in parsed] == ["0", "1", "2", "3"]
    assert [e.event for e in parsed] == ["started", "token", "token", "end"]
    assert json.loads(parsed[2].data) == {"t": "lo", "i": 1}


@pytest.mark.req("OC-CTRL-2029")
def test_nothing_follows_the_terminal_event() -> None:
    events = TaskEvents(TaskLog())
    events.started(0, 0)
    assert events.error(ErrorKind.WORKER_RESET, "engine went away", retriable=True, retry_after_ms=1000)
    assert not events.token("late")
    assert not events.end(0, 0, FinishReason.stop)
    assert events.log.terminal == "error"
    assert len(events.log) == 2


@pytest.mark.req("ORCH-3026")
def test_no_token_after_tokens_are_closed_but_the_end_still_lands() -> None:
    events = TaskEvents(TaskLog())
    events.started(0, 0)
    events.token("a")
    events.log.close_tokens()
    assert not events.token("b")
    assert events.end(1, 5, FinishReason.canceled)
    assert [e.event for e in parse_sse(wire(events.log))] == ["started", "token", "end"]


def test_verbose_fields_reach_only_verbose_readers() -> None:
    from llorch_contracts.api import SseMetrics

    events = TaskEvents(TaskLog())
    events.metrics(SseMetrics(queue_depth=1, on_time_probability=1.0, kv_warmth=False), human="Waiting.")
    frame = events.log.frames(0)[0]
    assert b"human" not in frame.plain
    assert b'"human":"Waiting."' in frame.verbose


async def test_follow_delivers_incrementally_and_ends_after_terminal() -> None:
    events = TaskEvents(TaskLog())
    events.started(0, 0)
    received: list[str] = []

    async def reader() -> None:
        async for batch in events.log.follow(0, keepalive_s=5):
            assert batch is not None
            received.extend(f.event for f in batch)

    task = asyncio.create_task(reader())
    await asyncio.sleep(0.01)
    assert received == ["started"], "the first frame arrives before the stream ends"
    events.token("x")
    await asyncio.sleep(0.01)
    assert received == ["started", "token"]
    events.end(1, 1, FinishReason.stop)
    await asyncio.wait_for(task, 1)
    assert received == ["started", "token", "end"]


async def test_follow_sends_keepalives_while_idle_and_resumes_from_an_index() -> None:
    events = TaskEvents(TaskLog())
    events.started(0, 0)
    events.token("a")
    batches = []
    follower = events.log.follow(1, keepalive_s=0.02)
    batches.append(await anext(follower))
    batches.append(await anext(follower))
    await follower.aclose()
    assert batches[0] is not None
    assert [f.event for f in batches[0]] == ["token"], "resume starts after the given index"
    assert batches[1] is None, "an idle stream yields a keepalive marker"
