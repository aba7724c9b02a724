"""Engine failures, retries, queued cancels and narrated logs, with the scriptable mock engine."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from llorch_adapters import MockAdapter, MockScript
from llorch_config import parse_config
from llorch_testkit import parse_sse, serving
from orchestratord import create_app

MOCK_POOL = "pools:\n  - id: m\n    engine: {kind: mock}\n    model: {ref: mock-model}\n"


@contextmanager
def orchestratord(script: MockScript, extra: str = "") -> Iterator[tuple[httpx.Client, MockAdapter]]:
    adapter = MockAdapter(script)
    app = create_app(parse_config(MOCK_POOL + extra), adapters={"mock": adapter})
    with serving(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client, adapter


def submit(client: httpx.Client, **body: object) -> str:
    payload: dict[str, object] = {"model_ref": "mock-model", "prompt": "hello", "max_tokens": 8}
    payload.update(body)
    response = client.post("/v2/tasks", json=payload)
    assert response.status_code == 202, response.text
    return str(response.json()["task_id"])


def events(client: httpx.Client, task_id: str) -> list[tuple[str, dict[str, object]]]:
    return [(e.event, json.loads(e.data)) for e in parse_sse(client.get(f"/v2/tasks/{task_id}/events").text)]


def warm(client: httpx.Client, adapter: MockAdapter, failing: MockScript) -> None:
    """Let the readiness probe and one task pass on a healthy script, then switch to the failing one."""
    events(client, submit(client))
    adapter.script = failing


@pytest.mark.req("OC-CORE-1119", "OC-CTRL-2028")
def test_engine_failure_after_the_first_token_ends_with_worker_reset() -> None:
    with orchestratord(MockScript()) as (client, adapter):
        warm(client, adapter, MockScript(error_at_token=3))
        transcript = events(client, submit(client))
    names = [name for name, _ in transcript]
    assert names.count("token") == 3
    assert names[-1] == "error"
    error = transcript[-1][1]
    assert error["code"] == "WORKER_RESET"
    assert error["retriable"] is True
    assert error["retry_after_ms"] >= 0


@pytest.mark.req("OC-CORE-1118")
def test_a_failure_before_the_first_token_is_retried_once_then_replica_exhausted() -> None:
    with orchestratord(MockScript()) as (client, adapter):
        warm(client, adapter, MockScript(drop_at_token=0))
        transcript = events(client, submit(client))
    assert [name for name, _ in transcript][-1] == "error"
    assert transcript[-1][1]["code"] == "REPLICA_EXHAUSTED"
    assert transcript[-1][1]["retriable"] is True
    assert "token" not in [name for name, _ in transcript]


def test_a_stalled_engine_hits_the_idle_watchdog() -> None:
    with orchestratord(MockScript(), "orchestratord:\n  timeouts: {idle_ms: 1000}\n") as (client, adapter):
        warm(client, adapter, MockScript(stall_after_token=2))
        started = time.monotonic()
        transcript = events(client, submit(client))
    assert time.monotonic() - started < 5
    assert transcript[-1][0] == "error"
    assert transcript[-1][1]["code"] == "DECODE_TIMEOUT"
    assert [name for name, _ in transcript].count("token") == 2


@pytest.mark.req("OC-CORE-1005")
def test_cancelling_a_queued_task_frees_its_place_at_once() -> None:
    config = "orchestratord:\n  queue: {capacity: 1, full_policy: reject}\n"
    with orchestratord(MockScript(token_delay_s=0.01), config) as (client, _):
        running = submit(client, max_tokens=300)
        deadline = time.monotonic() + 5
        while client.get(f"/v2/tasks/{running}").json()["state"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        queued = submit(client)
        refused = client.post("/v2/tasks", json={"model_ref": "mock-model", "prompt": "x", "max_tokens": 4})
        assert refused.status_code == 429
        assert client.post(f"/v2/tasks/{queued}/cancel").status_code == 204
        assert client.get(f"/v2/tasks/{queued}").json()["state"] == "canceled"
        admitted = client.post("/v2/tasks", json={"model_ref": "mock-model", "prompt": "x", "max_tokens": 4})
        assert admitted.status_code == 202, "the canceled task's place was free at once"
        final = events(client, queued)
        client.post(f"/v2/tasks/{running}/cancel")
    assert [name for name, _ in final] == ["started", "end"]
    assert final[-1][1]["finish_reason"] == "canceled"


@pytest.mark.req("ORCH-3027", "ORCH-3300", "AUTH-1008")
def test_every_emission_point_narrates_with_the_required_fields(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="llorch.narration")
    # A slow enough engine that the cancel below always lands while the task runs.
    with orchestratord(MockScript(token_delay_s=0.002)) as (client, _):
        task_id = submit(client, seed=4)
        events(client, task_id)
        cancel_me = submit(client, max_tokens=4000)
        client.post(f"/v2/tasks/{cancel_me}/cancel")
    records = [r for r in caplog.records if getattr(r, "fields", {}).get("task_id") == task_id]
    actions = [getattr(r, "action", None) for r in records]
    assert actions == ["admission", "placement", "stream_start", "stream_end"]
    end = records[-1]
    fields = getattr(end, "fields", {})
    assert fields["identity"] == "localhost", "AUTH-1008: callers without a token are localhost"
    required = ["task_id", "engine", "engine_version", "pool_id", "replica_id", "queue_position"]
    required += ["predicted_start_ms", "tokens_in", "tokens_out", "decode_time_ms", "first_token_ms"]
    assert [key for key in required if key not in fields] == []
    assert fields["tokens_out"] == 8
    assert all(r.getMessage() and not r.getMessage().startswith("{") for r in records), "a plain-words human"
    canceled = [r for r in caplog.records if getattr(r, "fields", {}).get("task_id") == cancel_me]
    assert "cancel" in [getattr(r, "action", None) for r in canceled]
