"""Every task leaves a transcript artifact when it ends, whatever its outcome (OC-CTRL-2067, CAT-106x)."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from llorch_adapters import MockAdapter, MockScript
from llorch_config import parse_config
from llorch_testkit import assert_conforms, parse_sse, serving
from orchestratord import create_app

SERVICE = "orchestratord"
MOCK_POOL = "pools:\n  - id: m\n    engine: {kind: mock}\n    model: {ref: mock-model}\n"
PROMPT = "a secret prompt, never stored"


def running(tmp_path: Path, config_text: str = MOCK_POOL) -> Any:
    adapter = MockAdapter(MockScript(token_delay_s=0.002))
    return serving(create_app(parse_config(config_text), adapters={"mock": adapter}, state_dir=tmp_path))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[httpx.Client]:
    with running(tmp_path) as url, httpx.Client(base_url=url, timeout=10) as http:
        yield http


def submit(client: httpx.Client, **body: object) -> str:
    payload: dict[str, object] = {"model_ref": "mock-model", "prompt": PROMPT, "max_tokens": 4, "seed": 7}
    payload.update(body)
    response = client.post("/v2/tasks", json=payload)
    assert response.status_code == 202, response.text
    task_id: str = response.json()["task_id"]
    return task_id


def transcript_id(client: httpx.Client, task_id: str, timeout_s: float = 10) -> str:
    """Wait until the task's status names its transcript (written in a worker thread after the end)."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = client.get(f"/v2/tasks/{task_id}")
        artifact_id = status.json()["transcript_artifact_id"]
        if artifact_id is not None:
            assert_conforms(SERVICE, status)
            return str(artifact_id)
        assert time.monotonic() < deadline, "no transcript was written"
        time.sleep(0.01)


@pytest.mark.req("OC-CTRL-2067", "CAT-1060", "CAT-1061", "CAT-1062", "CAT-1063")
def test_a_completed_task_nobody_watched_has_a_full_transcript_without_its_prompt(
    client: httpx.Client,
) -> None:
    task_id = submit(client)
    response = client.get(f"/v2/artifacts/{transcript_id(client, task_id)}")
    assert_conforms(SERVICE, response)
    artifact = response.json()
    assert artifact["kind"] == "transcript"
    assert set(artifact["tags"]) == {f"task:{task_id}", "pool:m", "outcome:completed"}
    content = artifact["content"]
    for key in [
        "engine",
        "engine_version",
        "model_ref",
        "model_digest",
        "sampler_profile_version",
        "replica_id",
    ]:
        assert key in content
    assert (content["task_id"], content["pool_id"], content["engine"]) == (task_id, "m", "mock")
    assert (content["seed"], content["model_ref"], content["tokens_out"]) == (7, "mock-model", 4)
    assert content["parameters"]["max_tokens"] == 4
    assert content["timings"]["ended_ms"] >= content["timings"]["admitted_ms"]
    events = parse_sse(content["events_sse"])
    assert events == parse_sse(client.get(f"/v2/tasks/{task_id}/events").text), "the stream as sent"
    names = [e.event for e in events if e.event != "metrics"]
    assert names == ["started", "token", "token", "token", "token", "end"]
    assert [e.id for e in events] == [str(i) for i in range(len(events))]
    assert [json.loads(e.data)["i"] for e in events if e.event == "token"] == [0, 1, 2, 3]
    assert json.loads(events[-1].data)["finish_reason"] == "length"
    prompt = PROMPT.encode()
    assert (content["prompt_sha256"], content["prompt_bytes"]) == (
        hashlib.sha256(prompt).hexdigest(),
        len(prompt),
    )
    assert PROMPT not in response.text
    by_tag = client.get("/v2/artifacts", params={"kind": "transcript", "tag": f"task:{task_id}"}).json()
    assert [r["id"] for r in by_tag] == [artifact["id"]]


@pytest.mark.req("OC-CTRL-2067", "CAT-1060")
def test_a_canceled_task_in_a_session_has_a_transcript_too(client: httpx.Client) -> None:
    task_id = submit(client, max_tokens=500, session_id="sess-1")
    assert client.post(f"/v2/tasks/{task_id}/cancel").status_code == 204
    artifact = client.get(f"/v2/artifacts/{transcript_id(client, task_id)}").json()
    assert {"outcome:canceled", "session:sess-1"} <= set(artifact["tags"])
    assert json.loads(parse_sse(artifact["content"]["events_sse"])[-1].data)["finish_reason"] == "canceled"


@pytest.mark.req("CAT-1063")
def test_a_transcript_that_cannot_be_stored_is_logged_and_the_task_still_completes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tiny_limit = MOCK_POOL + "artifacts: {max_artifact_bytes: 16}\n"
    with (
        caplog.at_level(logging.ERROR, logger="llorch.transcripts"),
        running(tmp_path, tiny_limit) as url,
        httpx.Client(base_url=url, timeout=10) as http,
    ):
        task_id = submit(http)
        deadline = time.monotonic() + 10
        while not any(task_id in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, "the failed write was not logged"
            time.sleep(0.01)
        status = http.get(f"/v2/tasks/{task_id}").json()
    assert (status["state"], status["transcript_artifact_id"]) == ("completed", None)
