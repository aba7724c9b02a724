"""The data plane over HTTP with the in-process mock engine: admission, SSE, resume, cancel, backpressure."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from llorch_adapters import MockAdapter, MockScript
from llorch_config import parse_config
from llorch_testkit import assert_conforms, parse_sse, serving
from orchestratord import create_app

SERVICE = "orchestratord"
MOCK_POOL = "pools:\n  - id: m\n    engine: {kind: mock}\n    model: {ref: mock-model}\n"


def submit(client: httpx.Client, **body: object) -> httpx.Response:
    payload: dict[str, object] = {"model_ref": "mock-model", "prompt": "hello", "max_tokens": 8}
    payload.update(body)
    return client.post("/v2/tasks", json=payload)


def wait_state(client: httpx.Client, task_id: str, state: str, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while client.get(f"/v2/tasks/{task_id}").json()["state"] != state:
        assert time.monotonic() < deadline, f"task never reached {state}"
        time.sleep(0.01)


def events_of(client: httpx.Client, task_id: str, **headers: str) -> list[tuple[str, dict[str, object], str]]:
    text = client.get(f"/v2/tasks/{task_id}/events", headers=headers).text
    return [(e.event, json.loads(e.data), e.id or "") for e in parse_sse(text)]


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    adapter = MockAdapter(MockScript(token_delay_s=0.002))
    app = create_app(parse_config(MOCK_POOL), adapters={"mock": adapter})
    with serving(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        yield http


@pytest.mark.req("OC-CTRL-2010")
def test_admission_returns_202_with_position_prediction_and_links(client: httpx.Client) -> None:
    response = submit(client)
    assert response.status_code == 202
    assert_conforms(SERVICE, response)
    body = response.json()
    assert body["pool_id"] == "m"
    assert body["queue_position"] == 0
    assert body["streams"]["sse"] == f"/v2/tasks/{body['task_id']}/events"
    assert uuid.UUID(body["task_id"]).version == 4


@pytest.mark.req("OC-CTRL-2020", "OC-CTRL-2027")
def test_stream_is_started_then_tokens_then_exactly_one_end(client: httpx.Client) -> None:
    task_id = submit(client, max_tokens=6, seed=3).json()["task_id"]
    events = events_of(client, task_id)
    names = [name for name, _, _ in events]
    assert names[0] == "started"
    assert names[-1] == "end"
    assert names.count("end") + names.count("error") == 1
    tokens = [data for name, data, _ in events if name == "token"]
    assert [t["i"] for t in tokens] == list(range(6))
    assert events[-1][1]["tokens_out"] == 6
    assert events[-1][1]["finish_reason"] == "length"
    assert [int(event_id) for _, _, event_id in events] == list(range(len(events)))


def test_same_seed_same_text_on_the_mock(client: httpx.Client) -> None:
    def text(seed: int) -> str:
        task_id = submit(client, seed=seed).json()["task_id"]
        return "".join(str(d["t"]) for n, d, _ in events_of(client, task_id) if n == "token")

    assert text(7) == text(7)
    assert text(7) != text(8)


@pytest.mark.req("OC-CTRL-2101")
def test_last_event_id_resumes_with_nothing_lost_or_repeated(client: httpx.Client) -> None:
    task_id = submit(client, max_tokens=10).json()["task_id"]
    full = events_of(client, task_id)
    resumed = events_of(client, task_id, **{"Last-Event-ID": "4"})
    assert resumed == full[5:]
    bad = client.get(f"/v2/tasks/{task_id}/events", headers={"Last-Event-ID": "999"})
    assert bad.status_code == 400
    assert bad.json()["code"] == "INVALID_PARAMS"


def test_unknown_task_is_a_404_envelope_everywhere(client: httpx.Client) -> None:
    missing = str(uuid.uuid4())
    for response in (
        client.get(f"/v2/tasks/{missing}"),
        client.get(f"/v2/tasks/{missing}/events"),
        client.post(f"/v2/tasks/{missing}/cancel"),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "NOT_FOUND"
        assert response.headers["x-correlation-id"]


@pytest.mark.req("OC-CTRL-2110")
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"max_tokens": "8"}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"priority": "urgent"}, "priority"),
        ({"surprise": 1}, "surprise"),
        ({"model_ref": "other-model"}, "other-model"),
        ({"seed": 4294967295}, "seed"),
    ],
)
def test_bad_input_is_a_400_that_names_the_field(
    client: httpx.Client, body: dict[str, object], field: str
) -> None:
    response = submit(client, **body)
    assert response.status_code == 400
    assert_conforms(SERVICE, response)
    assert response.json()["code"] == "INVALID_PARAMS"
    assert field in response.json()["message"]


def test_malformed_json_is_an_envelope_not_a_framework_body(client: httpx.Client) -> None:
    response = client.post("/v2/tasks", content=b'{"prompt": ', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_PARAMS"
    assert "JSON" in response.json()["message"]


@pytest.mark.req("OC-CTRL-2012", "OC-CORE-1005")
def test_cancel_of_a_running_task_ends_it_and_nothing_follows(client: httpx.Client) -> None:
    task_id = submit(client, max_tokens=2000).json()["task_id"]
    with client.stream("GET", f"/v2/tasks/{task_id}/events") as stream:
        for line in stream.iter_lines():
            if line.startswith("event: token"):
                break
        assert client.post(f"/v2/tasks/{task_id}/cancel").status_code == 204
    after_ack = events_of(client, task_id)
    time.sleep(0.1)
    assert events_of(client, task_id) == after_ack, "nothing is appended after the acknowledgement"
    assert after_ack[-1][0] == "end"
    assert after_ack[-1][1]["finish_reason"] == "canceled"
    assert client.get(f"/v2/tasks/{task_id}").json()["state"] == "canceled"
    assert client.post(f"/v2/tasks/{task_id}/cancel").status_code == 204, "cancelling again is a no-op"


@pytest.mark.req("OC-CTRL-2011", "ORCH-2007")
def test_full_queue_answers_429_with_retry_headers_and_every_admitted_task_ends() -> None:
    config = parse_config(MOCK_POOL + "orchestratord:\n  queue: {capacity: 2, full_policy: reject}\n")
    adapter = MockAdapter(MockScript(token_delay_s=0.005))
    with serving(create_app(config, adapters={"mock": adapter})) as url, httpx.Client(base_url=url) as http:
        results: list[httpx.Response] = []
        lock = threading.Lock()

        def post() -> None:
            response = submit(http, max_tokens=20)
            with lock:
                results.append(response)

        threads = [threading.Thread(target=post) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        admitted = [r for r in results if r.status_code == 202]
        refused = [r for r in results if r.status_code == 429]
        assert len(admitted) + len(refused) == 12
        assert refused, "a 2-deep queue with one slot cannot take 12 tasks at once"
        for response in refused:
            assert_conforms(SERVICE, response)
            assert int(response.headers["retry-after"]) >= 1
            assert int(response.headers["x-backoff-ms"]) == response.json()["retry_after_ms"]
            assert response.json()["policy_label"] == "reject"
            assert response.json()["retriable"] is True
        for response in admitted:
            final = events_of(http, response.json()["task_id"])[-1]
            assert final[0] in ("end", "error")
        metrics = http.get("/metrics").text
    assert f'tasks_rejected_total{{engine="mock",reason="ADMISSION_REJECT"}} {len(refused)}.0' in metrics
    assert f'admission_backpressure_events_total{{engine="mock",policy="reject"}} {len(refused)}.0' in metrics
    enqueued = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("tasks_enqueued_total{")
    )
    assert enqueued == len(admitted)


@pytest.mark.req("OC-CORE-1103")
def test_drop_lru_evicts_the_oldest_batch_task_with_an_error_event() -> None:
    config = parse_config(MOCK_POOL + "orchestratord:\n  queue: {capacity: 1, full_policy: drop-lru}\n")
    adapter = MockAdapter(MockScript(token_delay_s=0.01))
    with serving(create_app(config, adapters={"mock": adapter})) as url, httpx.Client(base_url=url) as http:
        running = submit(http, max_tokens=200).json()["task_id"]
        wait_state(http, running, "running")
        victim = submit(http, priority="batch").json()["task_id"]
        newcomer = submit(http, priority="interactive")
        assert newcomer.status_code == 202
        final = events_of(http, victim)[-1]
        assert final[0] == "error"
        assert final[1]["code"] == "QUEUE_FULL_DROP_LRU"
        assert final[1]["retriable"] is True
        http.post(f"/v2/tasks/{running}/cancel")


def test_queued_task_sees_its_position_and_prediction_in_metrics_events() -> None:
    config = parse_config(MOCK_POOL + "orchestratord:\n  sse: {metrics_interval_ms: 100}\n")
    adapter = MockAdapter(MockScript(token_delay_s=0.01))
    with serving(create_app(config, adapters={"mock": adapter})) as url, httpx.Client(base_url=url) as http:
        first = submit(http, max_tokens=60).json()["task_id"]
        wait_state(http, first, "running")
        second = submit(http, max_tokens=5).json()
        assert second["queue_position"] == 0
        assert second["predicted_start_ms"] > 0, "the prediction accounts for the running task"
        events = events_of(http, second["task_id"])
        http.post(f"/v2/tasks/{first}/cancel")
    started = events[0][1]
    assert started["queue_position"] == 0
    assert [n for n, _, _ in events][-1] == "end"


@pytest.mark.req("OC-CTRL-2060")
def test_capabilities_come_from_the_live_pool_view(client: httpx.Client) -> None:
    response = client.get("/v2/meta/capabilities")
    assert_conforms(SERVICE, response)
    [engine] = response.json()["engines"]
    assert engine["engine"] == "mock"
    assert engine["engine_version"] == "mock:1", "the version the Ready replica reports"
    assert engine["pools"] == ["m"]
    assert engine["slots_total"] == 1
