"""The metrics gate: each live service's exposition is exactly its part of contracts/metrics/.

Parses real `/metrics` scrapes with prometheus-client's own parser and compares
families, types, help texts, label names and buckets with the contract data.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

import orchestratord
import pool_managerd
from llorch_adapters import MockAdapter, MockScript
from llorch_config import parse_config
from llorch_pools.testing import StaticPreparer
from llorch_testkit import serving

CONTRACT = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "contracts/metrics/metrics.yaml").read_text()
)
MOCK_POOL = "pools:\n  - id: m\n    engine: {kind: mock}\n    model: {ref: mock-model}\n"


def declared(service: str) -> dict[str, dict[str, object]]:
    """Contract metrics of one service, by the family name prometheus-client reports (no `_total`)."""
    return {m["name"].removesuffix("_total"): m for m in CONTRACT["metrics"] if m["service"] == service}


def scrape(url: str) -> tuple[httpx.Response, dict[str, object]]:
    response = httpx.get(f"{url}/metrics", timeout=10)
    return response, {family.name: family for family in text_string_to_metric_families(response.text)}


@pytest.fixture(scope="module")
def orchestratord_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app = orchestratord.create_app(
        parse_config(MOCK_POOL),
        adapters={"mock": MockAdapter(MockScript())},
        state_dir=tmp_path_factory.mktemp("state"),
    )
    with serving(app) as url:
        yield url


@pytest.fixture(scope="module")
def pool_managerd_url() -> Iterator[str]:
    preparer = StaticPreparer(binary=None, model=Path("/nonexistent"), fail_hardware="no GPU in this test")
    app = pool_managerd.create_app(parse_config("pools:\n  - id: p\n"), preparer=preparer, environ={})
    with serving(app) as url:
        yield url


def check_exposition(url: str, service: str) -> dict[str, object]:
    response, families = scrape(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTRACT["exposition"]["content_type"]
    contract = declared(service)
    assert set(families) == set(contract), "no family missing, none undeclared"
    for name, family in families.items():
        spec = contract[name]
        assert family.type == spec["type"], name
        assert family.documentation == spec["help"], name
        for sample in family.samples:
            assert not sample.name.endswith("_created"), "no _created series"
            labels = set(sample.labels) - {"le"}
            assert labels == set(spec["labels"]), (name, sample.labels)
            if sample.name.endswith("_bucket") and sample.labels["le"] != "+Inf":
                assert float(sample.labels["le"]) in [float(b) for b in spec["buckets"]], name
    return families


def samples(families: dict[str, object], name: str) -> float:
    family = families.get(name)
    return sum(s.value for s in getattr(family, "samples", []) if s.name == f"{name}_total")


@pytest.mark.req("OC-METRICS-7101", "OC-METRICS-7120", "OC-METRICS-7128")
def test_orchestratord_exposition_is_exactly_its_contract(orchestratord_url: str) -> None:
    with httpx.Client(base_url=orchestratord_url, timeout=10) as client:
        for _ in range(3):
            task_id = client.post(
                "/v2/tasks", json={"model_ref": "mock-model", "prompt": "x", "max_tokens": 4}
            ).json()["task_id"]
            client.get(f"/v2/tasks/{task_id}/events")
    check_exposition(orchestratord_url, "orchestratord")


@pytest.mark.req("OC-METRICS-7122", "OC-METRICS-7123")
def test_counters_move_once_per_event_and_a_scrape_changes_nothing(orchestratord_url: str) -> None:
    before = check_exposition(orchestratord_url, "orchestratord")
    again = check_exposition(orchestratord_url, "orchestratord")
    assert samples(before, "tasks_enqueued") == samples(again, "tasks_enqueued"), "a scrape changes nothing"
    with httpx.Client(base_url=orchestratord_url, timeout=10) as client:
        for _ in range(5):
            body = {"model_ref": "mock-model", "prompt": "x", "max_tokens": 4}
            client.get(f"/v2/tasks/{client.post('/v2/tasks', json=body).json()['task_id']}/events")
    after = check_exposition(orchestratord_url, "orchestratord")
    assert samples(after, "tasks_enqueued") - samples(before, "tasks_enqueued") == 5
    assert samples(after, "tokens_out") - samples(before, "tokens_out") == 20


@pytest.mark.req("OC-METRICS-7101", "OC-METRICS-7120", "OC-METRICS-7128")
def test_pool_managerd_exposition_is_exactly_its_contract(pool_managerd_url: str) -> None:
    check_exposition(pool_managerd_url, "pool-managerd")
