"""orchestratord's meta endpoints and the error plumbing every endpoint shares, through HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import msgspec
import pytest
from litestar.testing import TestClient

from llorch_config import load_config, parse_config
from llorch_contracts.api import Capabilities, ErrorEnvelope, ErrorKind, VersionInfo
from llorch_http import BuildInfo, contract_document
from llorch_testkit import assert_conforms
from orchestratord import create_app

SERVICE = "orchestratord"


@pytest.fixture
def client() -> Iterator[TestClient]:  # type: ignore[type-arg]
    # No pool view: the embedded default names the default pool-managerd port, which a stack started
    # with `xtask up` may be serving beside the tests.
    app = create_app(
        load_config(),
        BuildInfo("0123456789abcdef0123456789abcdef01234567", "2026-11-21T23:00:00Z"),
        follow_pool_managerd=False,
    )
    with TestClient(app) as test_client:
        yield test_client


@pytest.mark.req("OC-CTRL-2150")
def test_version_reports_the_contract_version(client: TestClient) -> None:  # type: ignore[type-arg]
    response = client.get("/v2/meta/version")
    assert response.status_code == 200
    assert_conforms(SERVICE, response)
    version = msgspec.json.decode(response.content, type=VersionInfo)
    info = contract_document(SERVICE)["info"]
    assert isinstance(info, dict)
    assert version.api_version == info["version"]
    assert version.build_commit == "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.req("OC-CTRL-2060")
def test_capabilities_describe_the_configured_engines(client: TestClient) -> None:  # type: ignore[type-arg]
    response = client.get("/v2/meta/capabilities")
    assert response.status_code == 200
    assert_conforms(SERVICE, response)
    capabilities = msgspec.json.decode(response.content, type=Capabilities)
    assert [e.engine for e in capabilities.engines] == ["llamacpp"]
    assert capabilities.engines[0].pools == ["default"]
    assert capabilities.engines[0].features["cpu"] is True, "the embedded default runs on CPU"
    assert capabilities.engines[0].engine_version is None, "no replica is Ready in this test"


def test_capabilities_sum_pools_of_one_engine() -> None:
    config = parse_config(
        "pools:\n"
        "  - {id: a, devices: [0], ctx_max: 2048}\n"
        "  - {id: b, devices: [1], ctx_max: 8192, replicas: 2}\n"
    )
    with TestClient(create_app(config)) as client:
        engine = msgspec.json.decode(client.get("/v2/meta/capabilities").content, type=Capabilities).engines[
            0
        ]
    assert engine.pools == ["a", "b"]
    assert engine.ctx_max == 8192
    assert engine.slots_total == 3


@pytest.mark.req("OC-CTRL-2052")
def test_correlation_id_is_echoed(client: TestClient) -> None:  # type: ignore[type-arg]
    response = client.get("/v2/meta/version", headers={"X-Correlation-Id": "trace-42"})
    assert response.headers["x-correlation-id"] == "trace-42"


@pytest.mark.req("OC-CTRL-2052")
def test_correlation_id_is_generated_when_absent_or_unsafe(client: TestClient) -> None:  # type: ignore[type-arg]
    for headers in ({}, {"X-Correlation-Id": "bad value with spaces"}):
        generated = client.get("/v2/meta/version", headers=headers).headers["x-correlation-id"]
        assert uuid.UUID(generated).version == 4


@pytest.mark.req("OC-CTRL-2052", "OC-CTRL-2030")
def test_unknown_route_is_a_404_envelope_with_correlation_id(client: TestClient) -> None:  # type: ignore[type-arg]
    response = client.get("/v2/nowhere", headers={"X-Correlation-Id": "c-1"})
    assert response.status_code == 404
    envelope = msgspec.json.decode(response.content, type=ErrorEnvelope)
    assert envelope.code == ErrorKind.NOT_FOUND
    assert envelope.correlation_id == "c-1" == response.headers["x-correlation-id"]


def test_wrong_method_is_a_405_envelope_keeping_allow(client: TestClient) -> None:  # type: ignore[type-arg]
    response = client.post("/v2/meta/version")
    assert response.status_code == 405
    assert "GET" in response.headers["allow"]
    envelope = msgspec.json.decode(response.content, type=ErrorEnvelope)
    assert envelope.code == ErrorKind.METHOD_NOT_ALLOWED
    assert envelope.retriable is False
