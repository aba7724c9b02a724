"""Sessions over HTTP with the mock engine: creation, turns, limits, budgets, TTL, delete, warmth."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from llorch_adapters import MockAdapter, MockScript, mock_tokens
from llorch_config import parse_config
from llorch_testkit import assert_conforms, parse_sse, serving
from orchestratord import create_app

SERVICE = "orchestratord"
MOCK_POOL = "pools:\n  - id: m\n    engine: {kind: mock}\n    model: {ref: mock-model}\n"
PROMPT = "hello there"


@contextmanager
def orchestratord(extra: str = "", pool: str = MOCK_POOL, delay_s: float = 0.002) -> Iterator[httpx.Client]:
    adapter = MockAdapter(MockScript(token_delay_s=delay_s))
    app = create_app(parse_config(pool + extra), adapters={"mock": adapter})
    with serving(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def post(client: httpx.Client, session_id: str | None = "s1", **body: object) -> httpx.Response:
    payload: dict[str, object] = {"model_ref": "mock-model", "prompt": PROMPT, "max_tokens": 8}
    if session_id is not None:
        payload["session_id"] = session_id
    payload.update(body)
    return client.post("/v2/tasks", json=payload)


def submit(client: httpx.Client, session_id: str | None = "s1", **body: object) -> str:
    response = post(client, session_id, **body)
    assert response.status_code == 202, response.text
    return str(response.json()["task_id"])


def events(client: httpx.Client, task_id: str) -> list[tuple[str, dict[str, object]]]:
    """The task's whole stream (returns once it ended)."""
    text = client.get(f"/v2/tasks/{task_id}/events").text
    return [(e.event, json.loads(e.data)) for e in parse_sse(text)]


def dispatch_metrics(transcript: list[tuple[str, dict[str, object]]]) -> dict[str, object]:
    return next(data for name, data in transcript if name == "metrics" and "replica_id" in data)


def session(client: httpx.Client, session_id: str = "s1") -> dict[str, object]:
    response = client.get(f"/v2/sessions/{session_id}")
    assert response.status_code == 200, response.text
    assert_conforms(SERVICE, response)
    return dict(response.json())


def wait_tokens(client: httpx.Client, task_id: str, at_least: int) -> None:
    deadline = time.monotonic() + 10
    while client.get(f"/v2/tasks/{task_id}").json()["tokens_out"] < at_least:
        assert time.monotonic() < deadline
        time.sleep(0.005)


@pytest.mark.req("OC-CTRL-2136", "OC-CORE-1140")
def test_reading_an_unknown_session_is_a_404_and_creates_nothing() -> None:
    with orchestratord() as client:
        for _ in range(2):
            response = client.get("/v2/sessions/s1")
            assert response.status_code == 404
            assert_conforms(SERVICE, response)
            assert response.json()["code"] == "NOT_FOUND"
        bad = client.get("/v2/sessions/-bad!")
        assert bad.status_code == 400
        assert_conforms(SERVICE, bad)
        assert bad.json()["code"] == "INVALID_PARAMS"
        events(client, submit(client))
        assert session(client)["turns"] == 1


@pytest.mark.req("OC-CTRL-2138", "OC-CORE-1142")
def test_each_admitted_task_is_one_turn_and_unconfigured_budgets_are_null() -> None:
    with orchestratord() as client:
        for _ in range(3):
            events(client, submit(client))
        events(client, submit(client, session_id=None))
        info = session(client)
    assert info["session_id"] == "s1"
    assert info["turns"] == 3
    assert 0 < int(str(info["ttl_ms_remaining"])) <= 600_000
    assert info["kv_bytes"] == 0
    assert info["tokens_budget_remaining"] is None
    assert info["time_budget_remaining_ms"] is None
    assert info["cost_budget_remaining"] is None


@pytest.mark.req("OC-CORE-1142")
def test_the_turn_past_max_turns_is_refused_with_invalid_params() -> None:
    with orchestratord("sessions: {max_turns: 2}\n") as client:
        for _ in range(2):
            submit(client)
        refused = post(client)
        assert refused.status_code == 400
        assert_conforms(SERVICE, refused)
        assert refused.json()["code"] == "INVALID_PARAMS"
        assert "max_turns" in refused.json()["message"]
        assert session(client)["turns"] == 2
        submit(client, session_id="s2")  # other sessions are unaffected


@pytest.mark.req("OC-CORE-1023", "OC-CORE-1146", "OC-CORE-1024")
def test_token_budget_reserves_charges_and_refuses_naming_the_budget() -> None:
    with orchestratord("sessions: {budgets: {tokens: 40}}\n") as client:
        transcript = events(client, submit(client, max_tokens=8))
        # The dispatch frame reports what remains with this task's max_tokens reserved.
        assert dispatch_metrics(transcript)["tokens_budget_remaining"] == 32
        assert "cost_budget_remaining" not in dispatch_metrics(transcript)
        info = session(client)
        remaining = 40 - (mock_tokens(PROMPT) + 8)
        assert info["tokens_budget_remaining"] == remaining
        assert info["time_budget_remaining_ms"] is None
        refused = post(client, max_tokens=remaining + 1)
        assert refused.status_code == 400
        assert_conforms(SERVICE, refused)
        assert refused.json()["code"] == "INVALID_PARAMS"
        assert "sessions.budgets.tokens" in refused.json()["message"]
        events(client, submit(client, max_tokens=remaining))
        assert session(client)["turns"] == 2


@pytest.mark.req("OC-CORE-1149")
def test_a_canceled_task_is_charged_only_for_what_streamed() -> None:
    with orchestratord("sessions: {budgets: {tokens: 1000}}\n", delay_s=0.01) as client:
        task_id = submit(client, max_tokens=500)
        wait_tokens(client, task_id, 3)
        assert client.post(f"/v2/tasks/{task_id}/cancel").status_code == 204
        streamed = client.get(f"/v2/tasks/{task_id}").json()["tokens_out"]
        assert session(client)["tokens_budget_remaining"] == 1000 - streamed


@pytest.mark.req("OC-CORE-1141")
def test_a_session_expires_ttl_after_its_last_activity_and_restarts_at_zero_turns() -> None:
    with orchestratord("sessions: {ttl_ms: 1000}\n") as client:
        events(client, submit(client))
        events(client, submit(client))
        assert session(client)["turns"] == 2
        time.sleep(1.05)
        assert client.get("/v2/sessions/s1").status_code == 404
        events(client, submit(client))
        assert session(client)["turns"] == 1


@pytest.mark.req("OC-CTRL-2137", "OC-CORE-1145")
def test_delete_forgets_the_session_but_its_running_task_finishes() -> None:
    with orchestratord(delay_s=0.01) as client:
        task_id = submit(client, max_tokens=30)
        wait_tokens(client, task_id, 1)
        deleted = client.delete("/v2/sessions/s1")
        assert deleted.status_code == 204
        assert_conforms(SERVICE, deleted)
        assert client.get("/v2/sessions/s1").status_code == 404
        name, end = events(client, task_id)[-1]
        assert (name, end["tokens_out"], end["finish_reason"]) == ("end", 30, "length")
        assert client.get("/v2/sessions/s1").status_code == 404  # its end recreated nothing
        again = client.delete("/v2/sessions/s1")
        assert again.status_code == 404
        assert_conforms(SERVICE, again)


TWO_REPLICAS = "pools:\n  - id: m\n    engine: {kind: mock}\n    model: {ref: mock-model}\n    replicas: 2\n"


@pytest.mark.req("OC-CORE-1126", "OC-CORE-1013")
def test_the_next_turn_runs_warm_on_the_replica_of_the_last_one() -> None:
    with orchestratord(pool=TWO_REPLICAS) as client:
        events(client, submit(client, session_id=None, max_tokens=2))  # past the readiness probe
        blocker = submit(client, session_id=None, max_tokens=400)  # takes m-r0, the first choice
        wait_tokens(client, blocker, 1)
        first = dispatch_metrics(events(client, submit(client)))
        assert (first["replica_id"], first["kv_warmth"]) == ("m-r1", False)
        client.post(f"/v2/tasks/{blocker}/cancel")
        # Both replicas are idle: without affinity the order would pick m-r0 (OC-CORE-1017).
        second = dispatch_metrics(events(client, submit(client)))
        assert (second["replica_id"], second["kv_warmth"]) == ("m-r1", True)
        assert session(client)["kv_warmth"] is True
        cold = dispatch_metrics(events(client, submit(client, kv_hint="cold")))
        assert cold["kv_warmth"] is False


@pytest.mark.req("OC-CORE-1147")
def test_the_time_budget_caps_a_running_task_and_is_charged_its_running_time() -> None:
    with orchestratord("sessions: {budgets: {time_ms: 300}}\n", delay_s=0.01) as client:
        started = time.monotonic()
        name, error = events(client, submit(client, max_tokens=500))[-1]
        assert time.monotonic() - started < 2  # 500 tokens would take 5 s
        assert (name, error["code"]) == ("error", "DECODE_TIMEOUT")
        assert int(str(session(client)["time_budget_remaining_ms"])) <= 1
