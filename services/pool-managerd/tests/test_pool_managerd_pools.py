"""pool-managerd's pool API against a real llama-server replica, checked against the contract."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest

from llorch_config import parse_config
from llorch_contracts.api import ErrorEnvelope, ErrorKind, GpuInventory, PoolStatus, PoolWatchSnapshot
from llorch_pools.testing import StaticPreparer
from llorch_provisioning import EngineInstall
from llorch_testkit import assert_conforms, free_port, parse_sse, serving
from pool_managerd import create_app

SERVICE = "pool-managerd"


def app_config(port: int) -> str:
    return (
        "profile: dev\npools:\n  - id: tiny\n    allow_cpu_inference: true\n    ctx_max: 512\n"
        f"pool_managerd:\n  engine_ports: {{start: {port}, end: {port + 20}}}\n"
        "orchestratord:\n  sse: {keepalive_ms: 1000}\n"
    )


@pytest.fixture(scope="module")
def base_url(
    llamacpp: EngineInstall, tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    config = parse_config(app_config(free_port()))
    preparer = StaticPreparer(binary=llamacpp.binary_path, model=tiny_model_path)
    environ = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path_factory.mktemp("home"))}
    app = create_app(config, preparer=preparer, environ=environ)
    with serving(app) as url:
        yield url


def wait_ready(client: httpx.Client, timeout_s: float = 30) -> PoolStatus:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pool = msgspec.json.decode(client.get("/v2/pools/tiny").content, type=PoolStatus)
        if pool.ready:
            return pool
        time.sleep(0.05)
    raise AssertionError("pool never became ready")


@pytest.mark.req("OC-POOL-3001")
def test_pool_becomes_ready_with_the_engines_real_version(base_url: str) -> None:
    with httpx.Client(base_url=base_url) as client:
        pool = wait_ready(client)
        listed = client.get("/v2/pools")
    assert_conforms(SERVICE, listed)
    pools = msgspec.json.decode(listed.content, type=list[PoolStatus])
    assert [p.pool_id for p in pools] == ["tiny"]
    replica = pool.replicas[0]
    assert replica.engine_version
    assert replica.engine_version.startswith("llamacpp:b")
    assert pool.model_digest
    assert replica.model_digest == pool.model_digest


def test_get_pool_conforms_and_unknown_pool_is_404(base_url: str) -> None:
    with httpx.Client(base_url=base_url) as client:
        wait_ready(client)
        found = client.get("/v2/pools/tiny")
        missing = client.get("/v2/pools/nope")
        malformed = client.get("/v2/pools/bad%20id")
    assert_conforms(SERVICE, found)
    assert missing.status_code == 404
    assert_conforms(SERVICE, missing)
    assert msgspec.json.decode(missing.content, type=ErrorEnvelope).code == ErrorKind.NOT_FOUND
    assert malformed.status_code == 400
    assert_conforms(SERVICE, malformed)


@pytest.mark.req("OC-POOL-3162")
def test_watch_starts_with_a_snapshot_and_keeps_alive(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        wait_ready(client)
        received = ""
        with client.stream("GET", "/v2/watch/pools") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["x-correlation-id"]
            for chunk in response.iter_text():
                received += chunk
                if ": keepalive" in received:
                    break
    events = parse_sse(received)
    assert events[0].event == "snapshot"
    snapshot = msgspec.json.decode(events[0].data, type=PoolWatchSnapshot)
    assert snapshot.pools[0].ready


def test_health_counts_ready_pools(base_url: str) -> None:
    with httpx.Client(base_url=base_url) as client:
        wait_ready(client)
        response = client.get("/v2/health")
    assert_conforms(SERVICE, response)
    assert response.json()["pools_ready"] == 1
    assert response.json()["status"] == "ok"


def test_gpus_report_nvml_absence_clearly(base_url: str) -> None:
    with httpx.Client(base_url=base_url) as client:
        response = client.get("/v2/gpus")
    assert_conforms(SERVICE, response)
    inventory = msgspec.json.decode(response.content, type=GpuInventory)
    assert inventory.nvml_available is False
    assert inventory.reason
