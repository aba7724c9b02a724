"""Drain and reload through orchestratord: forwarded to pool-managerd, or 503 when it cannot be reached."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from llorch_config import parse_config
from llorch_provisioning import EngineInstall
from llorch_testkit import assert_conforms, running_stack, serving, stack_config
from orchestratord import create_app

SERVICE = "orchestratord"
POOL = "  - id: tiny\n    allow_cpu_inference: true\n    ctx_max: 512\n    model: {ref: tiny-llama}\n"
MOCK = "  - id: m\n    engine: {kind: mock}\n    model: {ref: mock-model}\n"


def until(client: httpx.Client, path: str, check: Callable[[Any], bool], timeout_s: float = 30) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check(body := client.get(path).json()):
            return body
        time.sleep(0.05)
    raise AssertionError(f"{path} never got there: {body}")


@pytest.mark.req("OC-CTRL-2002", "OC-CTRL-2003")
def test_drain_and_reload_through_orchestratord_reach_pool_managerd(
    llamacpp: EngineInstall, tiny_model_path: Path, tmp_path: Path
) -> None:
    with (
        running_stack(stack_config(POOL), llamacpp.binary_path, tiny_model_path, tmp_path) as stack,
        httpx.Client(base_url=stack.orchestratord, timeout=10) as orch,
        httpx.Client(base_url=stack.pool_managerd, timeout=10) as pm,
    ):
        drain = orch.post("/v2/pools/tiny/drain", json={"deadline_ms": 5000})
        assert drain.status_code == 202, drain.text
        assert_conforms(SERVICE, drain)
        assert drain.json() == {"pool_id": "tiny", "action": "drain", "status_url": "/v2/pools/tiny/health"}
        health = orch.get("/v2/pools/tiny/health")
        assert_conforms(SERVICE, health)
        # Dispatch stops before the 202; an idle pool may even be stopped already.
        assert health.json()["ready"] is False
        assert health.json()["draining"] or not health.json()["live"]
        until(pm, "/v2/pools/tiny", lambda p: p["state"] == "stopped")
        until(orch, "/v2/pools/tiny/health", lambda h: not h["live"] and not h["draining"])

        reload = orch.post("/v2/pools/tiny/reload", json={"new_model_ref": "tiny-llama"})
        assert reload.status_code == 202, reload.text
        assert_conforms(SERVICE, reload)
        busy = orch.post("/v2/pools/tiny/reload", json={"new_model_ref": "tiny-llama"})
        assert busy.status_code == 409, busy.text
        assert_conforms(SERVICE, busy)
        assert busy.json()["code"] == "CONFLICT"
        until(orch, "/v2/pools/tiny/health", lambda h: h["ready"])


def test_pool_endpoints_answer_503_when_pool_managerd_is_unreachable(tmp_path: Path) -> None:
    """The first half of OC-CTRL-2144 (the admission half is the data plane's)."""
    config = parse_config(stack_config(POOL + MOCK))  # nothing listens on its pool-managerd port
    app = create_app(config, state_dir=tmp_path)
    with serving(app) as url, httpx.Client(base_url=url, timeout=30) as orch:
        responses = [
            orch.post("/v2/pools/tiny/drain", json={"deadline_ms": 1000}),
            orch.post("/v2/pools/tiny/reload", json={"new_model_ref": "tiny-llama"}),
        ]
        for response in responses:
            assert response.status_code == 503, response.text
            assert_conforms(SERVICE, response)
            assert response.json()["code"] == "POOL_UNAVAILABLE"
            assert response.json()["retriable"] is True
            assert int(response.headers["retry-after"]) >= 1
        unknown = orch.post("/v2/pools/nope/drain", json={"deadline_ms": 1000})
        mock = orch.post("/v2/pools/m/drain", json={"deadline_ms": 1000})
        bad = orch.post("/v2/pools/tiny/drain", json={"deadline_ms": 0})
    assert unknown.status_code == 404
    assert mock.status_code == 400
    assert "mock engine" in mock.json()["message"]
    assert bad.status_code == 400
    for response in (unknown, mock, bad):
        assert_conforms(SERVICE, response)
