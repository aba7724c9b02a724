"""The artifact store over HTTP: create, get, list with filters, and its refusals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llorch_adapters import MockAdapter
from llorch_config import parse_config
from llorch_testkit import assert_conforms, serving
from orchestratord import create_app

SERVICE = "orchestratord"
CONFIG = (
    "pools:\n  - id: m\n    engine: {kind: mock}\n    model: {ref: mock-model}\n"
    "artifacts: {max_artifact_bytes: 4096}\n"
)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[httpx.Client]:
    app = create_app(parse_config(CONFIG), adapters={"mock": MockAdapter()}, state_dir=tmp_path)
    with serving(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        yield http


def store(client: httpx.Client, **body: object) -> httpx.Response:
    response = client.post("/v2/artifacts", json=body)
    assert_conforms(SERVICE, response)
    return response


@pytest.mark.req("OC-CTRL-2065", "OC-CTRL-2066", "CAT-1041", "CAT-1042")
def test_an_artifact_is_stored_once_and_read_back_with_its_metadata(client: httpx.Client) -> None:
    body = {
        "kind": "plan",
        "content": {"goal": "résumé", "steps": [1, 2]},
        "tags": ["sse"],
        "metadata": {"a": "b"},
    }
    first = store(client, **body)
    assert first.status_code == 201
    ref = first.json()
    assert ref["digest"] == f"sha256:{ref['id']}"
    again = store(client, **body)
    assert (again.status_code, again.json()) == (201, ref)
    got = client.get(f"/v2/artifacts/{ref['id']}")
    assert_conforms(SERVICE, got)
    artifact = got.json()
    assert artifact["content"] == body["content"]
    assert (artifact["kind"], artifact["tags"], artifact["metadata"], artifact["parent"]) == (
        "plan",
        ["sse"],
        {"a": "b"},
        None,
    )
    assert artifact["created_ms"] == ref["created_ms"]
    missing = client.get("/v2/artifacts/" + "0" * 64)
    assert_conforms(SERVICE, missing)
    assert (missing.status_code, missing.json()["code"]) == (404, "NOT_FOUND")


def test_listing_is_newest_first_filtered_by_kind_and_tag_and_bounded(client: httpx.Client) -> None:
    ids = [
        store(client, kind=kind, content={"n": n}, tags=tags).json()["id"]
        for n, (kind, tags) in enumerate([("plan", ["a"]), ("trace", ["a", "b"]), ("plan", [])])
    ]

    def listed(**params: str | int) -> list[str]:
        response = client.get("/v2/artifacts", params=params)
        assert_conforms(SERVICE, response)
        return [r["id"] for r in response.json()]

    assert listed() == ids[::-1]
    assert listed(kind="plan") == [ids[2], ids[0]]
    assert listed(tag="a") == [ids[1], ids[0]]
    assert listed(limit=1) == [ids[2]]
    bad_params: list[dict[str, str | int]] = [{"kind": "poem"}, {"limit": 0}, {"limit": 501}, {"tag": "-bad"}]
    for bad in bad_params:
        response = client.get("/v2/artifacts", params=bad)
        assert_conforms(SERVICE, response)
        assert (response.status_code, response.json()["code"]) == (400, "INVALID_PARAMS")


@pytest.mark.req("CAT-1046", "CAT-1047")
def test_bad_kind_unknown_parent_and_oversize_artifacts_are_invalid_params(client: httpx.Client) -> None:
    parent = store(client, kind="plan", content={"root": True}).json()["id"]
    assert store(client, kind="diff", content={"x": 1}, parent=parent).status_code == 201
    refusals = [
        store(client, kind="poem", content={}),
        store(client, kind="diff", content={}, parent="f" * 64),
        store(client, kind="logs", content={"text": "x" * 5000}),
    ]
    for response in refusals:
        assert (response.status_code, response.json()["code"]) == (400, "INVALID_PARAMS")


@pytest.mark.req("CAT-1045")
def test_a_corrupted_artifact_file_is_a_500_internal(client: httpx.Client, tmp_path: Path) -> None:
    artifact_id = store(client, kind="plan", content={"v": 1}).json()["id"]
    (tmp_path / "artifacts" / artifact_id[:2] / f"{artifact_id}.json").write_text('{"content":{}}')
    response = client.get(f"/v2/artifacts/{artifact_id}")
    assert_conforms(SERVICE, response)
    assert (response.status_code, response.json()["code"]) == (500, "INTERNAL")


def test_artifacts_survive_a_restart(tmp_path: Path) -> None:
    config = parse_config(CONFIG)
    with serving(create_app(config, state_dir=tmp_path)) as url, httpx.Client(base_url=url) as http:
        artifact_id = http.post("/v2/artifacts", json={"kind": "other", "content": {}}).json()["id"]
    with serving(create_app(config, state_dir=tmp_path)) as url, httpx.Client(base_url=url) as http:
        assert http.get(f"/v2/artifacts/{artifact_id}").status_code == 200
