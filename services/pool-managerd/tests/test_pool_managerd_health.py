"""pool-managerd's health endpoint, through HTTP and checked against the contract."""

from __future__ import annotations

import msgspec
from litestar.testing import TestClient

from llorch_config import load_config
from llorch_contracts.api import ManagerHealth, ManagerHealthState
from llorch_testkit import assert_conforms
from pool_managerd import create_app


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_health_reports_uptime_and_pool_counts() -> None:
    clock = FakeClock()
    with TestClient(create_app(load_config(), clock=clock)) as client:
        clock.now += 2.5
        response = client.get("/v2/health")
    assert response.status_code == 200
    assert_conforms("pool-managerd", response)
    health = msgspec.json.decode(response.content, type=ManagerHealth)
    assert health.uptime_ms == 2500
    assert health.pools_total == 1
    assert health.pools_ready == 0
    assert health.status == ManagerHealthState.degraded
    assert response.headers["x-correlation-id"]
