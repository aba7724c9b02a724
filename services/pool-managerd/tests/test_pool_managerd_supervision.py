"""Supervision as pool-managerd's HTTP API shows it: restarts, breaker state and the restart metric."""

from __future__ import annotations

import os
import re
import signal
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import msgspec
import pytest

from llorch_config import parse_config
from llorch_contracts.api import BreakerState, PoolStatus, ReplicaState
from llorch_pools.testing import StaticPreparer
from llorch_provisioning import EngineInstall
from llorch_testkit import assert_conforms, free_port, serving
from pool_managerd import create_app

SERVICE = "pool-managerd"


@contextmanager
def pool_managerd(preparer: StaticPreparer, tmp_path: Path, supervision: str) -> Iterator[httpx.Client]:
    port = free_port()
    config = parse_config(
        "profile: dev\npools:\n  - id: p\n    allow_cpu_inference: true\n    ctx_max: 512\n"
        f"pool_managerd:\n  engine_ports: {{start: {port}, end: {port + 20}}}\n"
        f"  runtime_dir: {tmp_path / 'runtime'}\n"
        "  health_timeout_ms: 30000\n  health_interval_ms: 100\n"
        f"  supervision: {supervision}\n"
    )
    environ = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    app = create_app(config, preparer=preparer, environ=environ)
    with serving(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def until(client: httpx.Client, check: Callable[[PoolStatus], bool], timeout_s: float = 60) -> PoolStatus:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pool = msgspec.json.decode(client.get("/v2/pools/p").content, type=PoolStatus)
        if check(pool):
            return pool
        time.sleep(0.05)
    raise AssertionError(f"pool never reached the expected state; last: {pool}")


def restarts_metric(client: httpx.Client, reason: str) -> float:
    text = client.get("/metrics").text
    pattern = rf'^\w*replica_restarts_total\{{[^}}]*reason="{reason}"[^}}]*\}} (\S+)$'
    values = [float(m.group(1)) for m in re.finditer(pattern, text, re.MULTILINE)]
    assert len(values) <= 1, values
    return values[0] if values else 0.0


@pytest.mark.req("OC-POOL-3145", "OC-POOL-3195", "OC-POOL-3196")
def test_an_open_breaker_is_in_the_pool_view_and_the_restart_metric(tmp_path: Path) -> None:
    crash = tmp_path / "crash"
    # llama.cpp's log format: only its error-level lines reach last_error (OC-POOL-3183).
    crash.write_text("#!/bin/sh\necho '0.00.000.100 E cannot load model' >&2\nexit 3\n")
    crash.chmod(crash.stat().st_mode | stat.S_IXUSR)
    preparer = StaticPreparer(binary=crash, model=crash)
    with pool_managerd(preparer, tmp_path, "{backoff_initial_ms: 20, backoff_max_ms: 50}") as client:
        until(client, lambda p: bool(p.replicas) and p.replicas[0].state == ReplicaState.failed)
        response = client.get("/v2/pools/p")
        assert_conforms(SERVICE, response)
        pool = msgspec.json.decode(response.content, type=PoolStatus)
        replica = pool.replicas[0]
        assert not pool.ready
        assert replica.breaker == BreakerState.open
        assert isinstance(replica.next_trial_ms, int)
        assert replica.next_trial_ms > time.time() * 1000
        assert "exited with status 3" in (replica.last_error or "")
        assert "cannot load model" in (pool.last_error or "")
        assert restarts_metric(client, "process_exit") == replica.restarts == 4


@pytest.mark.req("OC-POOL-3146", "OC-POOL-3196")
def test_a_killed_engine_restarts_and_the_restart_is_counted(
    llamacpp: EngineInstall, tiny_model_path: Path, tmp_path: Path
) -> None:
    preparer = StaticPreparer(binary=llamacpp.binary_path, model=tiny_model_path)
    with pool_managerd(preparer, tmp_path, "{backoff_initial_ms: 100}") as client:
        before = until(client, lambda p: p.ready).replicas[0]
        assert restarts_metric(client, "signal") == 0
        assert isinstance(before.pid, int)
        os.kill(before.pid, signal.SIGKILL)
        response = client.get("/v2/pools/p")
        pool = until(client, lambda p: p.ready and p.replicas[0].restarts == 1)
        after = pool.replicas[0]
        assert_conforms(SERVICE, response)
        assert (after.replica_id, after.device_mask) == (before.replica_id, before.device_mask)
        assert after.pid != before.pid
        assert after.breaker == BreakerState.closed
        assert httpx.get(f"{after.endpoint}/health").status_code == 200
        assert restarts_metric(client, "signal") == 1
