"""The catalog over HTTP: create, list, get, verify, state, delete, and its check at admission."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llorch_adapters import MockAdapter
from llorch_config import parse_config
from llorch_provisioning import download_path
from llorch_store import CATALOG_FILE, CatalogStore
from llorch_testkit import assert_conforms, serving
from orchestratord import create_app

SERVICE = "orchestratord"
MOCK_POOL = "pools:\n  - id: m\n    engine: {kind: mock}\n    model: {ref: mock-model}\n"


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def client(state_dir: Path, tmp_path: Path) -> Iterator[httpx.Client]:
    # tmp_path is a model directory (CAT-1080), so model_file()'s files may be catalogued.
    config = parse_config(
        MOCK_POOL
        + f"pool_managerd: {{cache_dir: {tmp_path / 'cache'}}}\ncatalog: {{model_dirs: ['{tmp_path}']}}\n"
    )
    app = create_app(config, adapters={"mock": MockAdapter()}, state_dir=state_dir)
    with serving(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        yield http


def model_file(tmp_path: Path, data: bytes = b"GGUF fake weights") -> tuple[Path, str]:
    path = tmp_path / "weights.gguf"
    path.write_bytes(data)
    return path, "sha256:" + hashlib.sha256(data).hexdigest()


def create(client: httpx.Client, **body: object) -> httpx.Response:
    response = client.post("/v2/catalog/models", json=body)
    assert_conforms(SERVICE, response)
    return response


@pytest.mark.req("OC-CTRL-2152", "CAT-1003", "CAT-1005")
def test_create_is_201_then_409_and_committed_before_the_answer(
    client: httpx.Client, state_dir: Path, tmp_path: Path
) -> None:
    path, digest = model_file(tmp_path)
    first = create(client, id="tiny", ref=f"file:{path}", digest=digest, tags=["test"])
    assert first.status_code == 201
    body = first.json()
    assert (body["lifecycle"], body["local_path"], body["size_bytes"]) == (
        "Active",
        str(path),
        path.stat().st_size,
    )
    # Another opener of the same database sees the entry as soon as the 201 arrived.
    assert CatalogStore(state_dir / "catalog" / CATALOG_FILE).get("tiny").digest == digest
    again = create(client, id="tiny", ref="hf:org/repo/other.gguf")
    assert again.status_code == 409
    assert again.json()["code"] == "CONFLICT"
    assert client.get("/v2/catalog/models/tiny").json()["ref"] == f"file:{path}"


@pytest.mark.req("CAT-1006")
def test_list_is_sorted_by_id_and_get_of_an_unknown_id_is_404(client: httpx.Client) -> None:
    for model_id in ["zeta", "alpha"]:
        create(client, id=model_id, ref=f"hf:org/repo/{model_id}.gguf")
    listed = client.get("/v2/catalog/models")
    assert_conforms(SERVICE, listed)
    assert [e["id"] for e in listed.json()] == ["alpha", "zeta"]
    one = client.get("/v2/catalog/models/alpha")
    assert_conforms(SERVICE, one)
    assert one.json()["ref"] == "hf:org/repo/alpha.gguf"
    missing = client.get("/v2/catalog/models/nope")
    assert_conforms(SERVICE, missing)
    assert (missing.status_code, missing.json()["code"]) == (404, "NOT_FOUND")


def test_an_unsupported_ref_scheme_is_invalid_params(client: httpx.Client) -> None:
    response = create(client, id="bad", ref="s3://bucket/model.gguf")
    assert (response.status_code, response.json()["code"]) == (400, "INVALID_PARAMS")


@pytest.mark.req("CAT-1021", "CAT-1023")
def test_verify_rehashes_the_file_and_reports_pass_fail_or_warn(client: httpx.Client, tmp_path: Path) -> None:
    path, digest = model_file(tmp_path)
    create(client, id="checked", ref=f"file:{path}", digest=digest)
    create(client, id="unchecked", ref=f"file:{path}")

    def verify(model_id: str) -> dict[str, object]:
        response = client.post(f"/v2/catalog/models/{model_id}/verify")
        assert_conforms(SERVICE, response)
        assert response.status_code == 202
        body: dict[str, object] = response.json()
        return body

    assert verify("checked")["outcome"] == "pass"
    warned = verify("unchecked")
    assert (warned["outcome"], warned["expected_digest"], warned["actual_digest"]) == ("warn", None, digest)
    path.write_bytes(b"tampered")
    failed = verify("checked")
    assert failed["outcome"] == "fail"
    assert failed["actual_digest"] == "sha256:" + hashlib.sha256(b"tampered").hexdigest()
    entry = client.get("/v2/catalog/models/checked").json()
    assert (entry["last_verification"], entry["last_verified_ms"]) == ("fail", failed["verified_ms"])
    metrics = client.get("/metrics").text
    assert 'catalog_verifications_total{engine="unknown",reason="match",result="pass"} 1.0' in metrics
    assert 'catalog_verifications_total{engine="unknown",reason="mismatch",result="fail"} 1.0' in metrics


@pytest.mark.req("CAT-1032")
def test_state_change_with_an_unknown_state_is_400_and_for_an_unknown_id_404(client: httpx.Client) -> None:
    create(client, id="m1", ref="hf:org/repo/m1.gguf")
    bad = client.post("/v2/catalog/models/m1/state", json={"state": "Sleeping"})
    assert_conforms(SERVICE, bad)
    assert (bad.status_code, bad.json()["code"]) == (400, "INVALID_PARAMS")
    unknown = client.post("/v2/catalog/models/nope/state", json={"state": "Retired"})
    assert_conforms(SERVICE, unknown)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "NOT_FOUND")


def test_a_retired_model_is_refused_at_admission_and_admitted_again_once_active(client: httpx.Client) -> None:
    create(client, id="mock-model", ref="gen:tiny-llama")
    retired = client.post(
        "/v2/catalog/models/mock-model/state", json={"state": "Retired", "deadline_ms": 1000}
    )
    assert_conforms(SERVICE, retired)
    assert (retired.status_code, retired.json()["lifecycle"]) == (202, "Retired")
    task = {"model_ref": "mock-model", "prompt": "hello", "max_tokens": 2}
    refused = client.post("/v2/tasks", json=task)
    assert_conforms(SERVICE, refused)
    assert (refused.status_code, refused.json()["code"]) == (400, "MODEL_DEPRECATED")
    assert 'model_state{model_id="mock-model",state="Retired"} 1.0' in client.get("/metrics").text
    client.post("/v2/catalog/models/mock-model/state", json={"state": "Active"})
    assert client.post("/v2/tasks", json=task).status_code == 202


def test_a_model_whose_verification_failed_is_refused_as_untrusted(
    client: httpx.Client, tmp_path: Path
) -> None:
    path, _ = model_file(tmp_path)
    create(client, id="mock-model", ref=f"file:{path}", digest="sha256:" + "0" * 64)
    assert client.post("/v2/catalog/models/mock-model/verify").json()["outcome"] == "fail"
    refused = client.post("/v2/tasks", json={"model_ref": "mock-model", "prompt": "hi", "max_tokens": 2})
    assert_conforms(SERVICE, refused)
    assert (refused.status_code, refused.json()["code"]) == (400, "UNTRUSTED_ARTIFACT")


@pytest.mark.req("CAT-1034", "CAT-1012", "CAT-1083", "OC-CTRL-2152")
def test_delete_is_409_while_a_pool_serves_the_model_else_204_and_only_catalog_files_go(
    client: httpx.Client, tmp_path: Path
) -> None:
    served = create(client, id="mock-model", ref="gen:tiny-llama")
    assert served.status_code == 201
    busy = client.delete("/v2/catalog/models/mock-model")
    assert_conforms(SERVICE, busy)
    assert (busy.status_code, busy.json()["code"]) == (409, "CONFLICT")

    outside, _ = model_file(tmp_path)
    create(client, id="in-place", ref=f"file:{outside}")
    # A file in the cache named by path is used in place, never deleted (CAT-1083); the file
    # the cache fetched for an https: entry is.
    by_path = tmp_path / "cache" / "models" / "fetched" / "fetched.gguf"
    by_path.parent.mkdir(parents=True)
    by_path.write_bytes(b"weights")
    create(client, id="by-path", ref=f"file:{by_path}")
    url = "https://models.example/fetched.gguf"
    downloaded = download_path(tmp_path / "cache", url)
    downloaded.parent.mkdir(parents=True)
    downloaded.write_bytes(b"weights")
    create(client, id="fetched", ref=url)
    for model_id in ["in-place", "by-path", "fetched"]:
        gone = client.delete(f"/v2/catalog/models/{model_id}")
        assert_conforms(SERVICE, gone)
        assert gone.status_code == 204
    assert outside.exists()
    assert by_path.exists()
    assert not downloaded.exists()
    again = client.delete("/v2/catalog/models/fetched")
    assert_conforms(SERVICE, again)
    assert again.status_code == 404


def test_the_catalog_survives_a_restart(state_dir: Path) -> None:
    config = parse_config(MOCK_POOL)
    with serving(create_app(config, state_dir=state_dir)) as url, httpx.Client(base_url=url) as http:
        assert (
            http.post("/v2/catalog/models", json={"id": "kept", "ref": "gen:tiny-llama"}).status_code == 201
        )
    with serving(create_app(config, state_dir=state_dir)) as url, httpx.Client(base_url=url) as http:
        assert [e["id"] for e in http.get("/v2/catalog/models").json()] == ["kept"]
