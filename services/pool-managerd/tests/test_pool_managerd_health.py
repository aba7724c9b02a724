"""pool-managerd's health endpoint, through HTTP and checked against the contract."""

from __future__ import annotations

from pathlib import Path

import msgspec
from litestar.testing import TestClient

from llorch_config import load_config
from llorch_contracts.api import ManagerHealth, ManagerHealthState
from llorch_pools.testing import StaticPreparer
from llorch_testkit import assert_conforms
from pool_managerd import create_app

NO_GPU = StaticPreparer(binary=None, model=Path("/nonexistent"), fail_hardware="no GPU here")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_health_is_degraded_while_a_pool_is_not_ready() -> None:
    clock = FakeClock()
    with TestClient(create_app(load_config(), preparer=NO_GPU, environ={}, clock=clock)) as client:
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
