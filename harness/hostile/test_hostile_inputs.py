"""Every request of the hostile corpus gets a typed 4xx envelope with a correlation id (issue 8).

Both services run in-process (Litestar's TestClient, no sockets): orchestratord with one mock
pool and its state in a temporary directory, pool-managerd with a preparer that fails the
hardware check, so its pool exists (Unready) without an engine. Each case asserts: no 5xx, a
status the corpus documents for it, an `ErrorEnvelope` body, and `X-Correlation-Id` equal to the
envelope's `correlation_id`. The rules come from OC-CTRL-2176..2180 and OC-POOL-3198..3199.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient

import orchestratord
import pool_managerd
from harness.hostile._corpus import ACCEPTED, CORPUS, JSON, ORCH, Hostile
from llorch_adapters import MockAdapter, MockScript
from llorch_config import parse_config
from llorch_contracts.api import ErrorEnvelope, ErrorKind
from llorch_pools.testing import StaticPreparer

MOCK_POOL = "pools:\n  - id: default\n    engine: {kind: mock}\n    model: {ref: tinyllama-q4}\n"
MANAGED_POOL = "pools:\n  - id: default\n    model: {ref: tinyllama-q4}\n"


@pytest.fixture(scope="module")
def orchestratord_client(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TestClient[Litestar]]:
    state_dir = tmp_path_factory.mktemp("orchestratord-state")
    app = orchestratord.create_app(
        parse_config(MOCK_POOL), adapters={"mock": MockAdapter(MockScript())}, state_dir=state_dir
    )
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="module")
def pool_managerd_client() -> Iterator[TestClient[Litestar]]:
    preparer = StaticPreparer(binary=None, model=Path("/nonexistent"), fail_hardware="no GPU in this test")
    app = pool_managerd.create_app(parse_config(MANAGED_POOL), preparer=preparer, environ={})
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="module")
def task_id(orchestratord_client: TestClient[Litestar]) -> str:
    """A task that exists, so checks behind the task lookup (Last-Event-ID, cancel bodies) are reached."""
    body = b'{"model_ref":"tinyllama-q4","prompt":"hello","max_tokens":4}'
    response = orchestratord_client.post("/v2/tasks", content=body, headers=wire(JSON))
    assert response.status_code == 202, response.text
    return str(response.json()["task_id"])


def wire(headers: Mapping[str, str | bytes]) -> dict[bytes, bytes]:
    """Headers as bytes, so a value may hold bytes no str header could (non-ASCII digits)."""
    return {k.encode(): v if isinstance(v, bytes) else v.encode("latin-1") for k, v in headers.items()}


def assert_typed_4xx(response: httpx.Response, statuses: frozenset[int]) -> ErrorEnvelope:
    status, text = response.status_code, response.text[:300]
    assert status < 500, f"{status}: {text}"
    assert status in statuses, f"{status} not in {sorted(statuses)}: {text}"
    envelope = msgspec.json.decode(response.content, type=ErrorEnvelope)
    correlation_id = response.headers.get("x-correlation-id")
    assert correlation_id
    assert envelope.correlation_id == correlation_id
    return envelope


@pytest.mark.req(
    "OC-CTRL-2176",
    "OC-CTRL-2177",
    "OC-CTRL-2178",
    "OC-CTRL-2179",
    "OC-CTRL-2180",
    "OC-POOL-3198",
    "OC-POOL-3199",
)
@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_hostile_request_gets_a_typed_4xx(
    case: Hostile,
    orchestratord_client: TestClient[Litestar],
    pool_managerd_client: TestClient[Litestar],
    task_id: str,
) -> None:
    client = orchestratord_client if case.service == ORCH else pool_managerd_client
    response = client.request(
        case.method, case.path.replace("{task_id}", task_id), content=case.body, headers=wire(case.headers)
    )
    envelope = assert_typed_4xx(response, case.statuses)
    assert envelope.retriable is False


@pytest.mark.req("OC-CTRL-2176", "OC-POOL-3198")
@pytest.mark.parametrize(("service", "path", "body"), ACCEPTED, ids=[f"{s} {p}" for s, p, _ in ACCEPTED])
def test_only_the_label_decides(
    service: str,
    path: str,
    body: bytes,
    orchestratord_client: TestClient[Litestar],
    pool_managerd_client: TestClient[Litestar],
) -> None:
    """The corpus's content-type cases send bodies the operation accepts: the label alone is refused."""
    client = orchestratord_client if service == ORCH else pool_managerd_client
    refused = client.post(path, content=body, headers={"content-type": "text/plain"})
    assert refused.status_code == 400
    assert "Content-Type: application/json" in refused.json()["message"]
    accepted = client.post(path, content=body, headers=wire(JSON))
    assert 200 <= accepted.status_code < 300, accepted.text


@pytest.mark.req("OC-CTRL-2178")
def test_brackets_inside_strings_do_not_count_as_nesting(
    orchestratord_client: TestClient[Litestar],
) -> None:
    prompt = "[{" * 5000
    body = msgspec.json.encode({"model_ref": "tinyllama-q4", "prompt": prompt, "max_tokens": 4})
    response = orchestratord_client.post("/v2/tasks", content=body, headers=wire(JSON))
    assert response.status_code == 202, response.text


@pytest.mark.req("OC-CTRL-2178")
@pytest.mark.parametrize(("depth", "status"), [(64, 201), (65, 400)])
def test_artifact_nesting_limit_is_64_levels(
    orchestratord_client: TestClient[Litestar], depth: int, status: int
) -> None:
    """The envelope is level 1, so its `content` may nest 63 levels; the stored artifact reads back."""
    content = b'{"a":' * (depth - 2) + b"1" + b"}" * (depth - 2)
    body = b'{"kind":"plan","content":{"a":' + content + b"}}"
    response = orchestratord_client.post("/v2/artifacts", content=body, headers=wire(JSON))
    assert response.status_code == status, response.text
    if status == 201:
        stored = orchestratord_client.get(f"/v2/artifacts/{response.json()['id']}")
        assert stored.status_code == 200, stored.text
    else:
        assert response.json()["code"] == ErrorKind.INVALID_PARAMS


@pytest.mark.req("OC-CTRL-2176")
@pytest.mark.parametrize("content_type", ["application/json", "Application/JSON; charset=UTF-8"])
def test_json_content_types_are_accepted(
    pool_managerd_client: TestClient[Litestar], content_type: str
) -> None:
    """The check refuses what is not JSON, not JSON spelled differently (the pool is Unready: 409 or 202)."""
    response = pool_managerd_client.post(
        "/v2/pools/default/drain", content=b'{"deadline_ms":1000}', headers={"content-type": content_type}
    )
    assert response.status_code in {202, 409}, response.text


@pytest.mark.req("OC-CTRL-2181")
def test_verify_of_an_unreadable_file_is_a_400(tmp_path: Path) -> None:
    """/proc/self/mem is a regular file whose first read fails with EIO: a model directory of
    `/proc/self` lets it into the catalog, so verify meets a real unreadable file."""
    config = MOCK_POOL + "catalog: {model_dirs: [/proc/self]}\n"
    app = orchestratord.create_app(
        parse_config(config), adapters={"mock": MockAdapter(MockScript())}, state_dir=tmp_path
    )
    digest = b"sha256:" + b"0" * 64
    with TestClient(app) as client:
        created = client.post(
            "/v2/catalog/models",
            content=b'{"id":"mem","ref":"file:/proc/self/mem","digest":"%s"}' % digest,
            headers=wire(JSON),
        )
        assert created.status_code == 201, created.text
        envelope = assert_typed_4xx(client.post("/v2/catalog/models/mem/verify"), frozenset({400}))
        assert envelope.code == ErrorKind.INVALID_PARAMS
        assert "Input/output" not in envelope.message
        assert client.get("/v2/catalog/models/mem").json()["last_verification"] is None
