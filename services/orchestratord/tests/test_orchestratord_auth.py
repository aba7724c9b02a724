"""Auth over HTTP: envelopes with correlation ids, exempt metrics, the token forwarded to pool-managerd."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

from llorch_config import parse_config
from llorch_http import AuthPolicy
from llorch_testkit import assert_conforms
from orchestratord import create_app
from orchestratord._app import EXEMPT

TOKEN = "a-long-enough-token-0123"
CONFIG = parse_config("pools:\n  - id: m\n    engine: {kind: mock}\n    model: {ref: mock-model}\n")


@pytest.fixture
def client() -> TestClient:  # type: ignore[type-arg]
    auth = AuthPolicy.from_config(CONFIG.auth, TOKEN, exempt=EXEMPT)
    return TestClient(create_app(CONFIG, auth=auth))


@pytest.mark.req("AUTH-1100", "OC-CTRL-2030")
def test_a_missing_token_is_a_401_envelope_with_a_correlation_id(client: TestClient) -> None:  # type: ignore[type-arg]
    with client:
        response = client.get("/v2/pools", headers={"X-Correlation-Id": "auth-1"})
    assert response.status_code == 401
    assert_conforms("orchestratord", response)
    assert response.json()["code"] == "MISSING_TOKEN"
    assert response.json()["correlation_id"] == "auth-1" == response.headers["x-correlation-id"]
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_the_right_token_is_served_and_metrics_need_none(client: TestClient) -> None:  # type: ignore[type-arg]
    with client:
        assert client.get("/v2/pools", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert client.get("/metrics").status_code == 200
        wrong = client.get("/v2/pools", headers={"Authorization": "Bearer not-the-token-at-all"})
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "BAD_TOKEN"
