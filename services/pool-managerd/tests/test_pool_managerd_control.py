"""Drain and reload over pool-managerd's HTTP API, with a real llama-server replica, against the contract."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import msgspec
import pytest

from llorch_config import parse_config
from llorch_contracts.api import ErrorEnvelope, ErrorKind, PoolActionAccepted, PoolState, PoolStatus
from llorch_pools.testing import StaticPreparer
from llorch_provisioning import EngineInstall, sha256_file
from llorch_testkit import assert_conforms, free_port, serving, tiny_model
from pool_managerd import create_app

SERVICE = "pool-managerd"


def app_config(port: int, model_dirs: list[Path]) -> str:
    return (
        "profile: dev\npools:\n  - id: tiny\n    allow_cpu_inference: true\n    ctx_max: 512\n"
        f"pool_managerd:\n  engine_ports: {{start: {port}, end: {port + 20}}}\n"
        "  health_interval_ms: 100\n"
        f"catalog: {{model_dirs: {[str(d) for d in model_dirs]}}}\n"
    )


@pytest.fixture
def client(
    llamacpp: EngineInstall, tiny_model_path: Path, second_model: Path, tmp_path: Path
) -> Iterator[httpx.Client]:
    """A fresh pool-managerd per test: drains and reloads change its pool for good.

    `tmp_path/models` and the second model's directory are the model directories (OC-POOL-3180).
    """
    (tmp_path / "models").mkdir()
    config = parse_config(app_config(free_port(), [tmp_path / "models", second_model.parent]))
    preparer = StaticPreparer(binary=llamacpp.binary_path, model=tiny_model_path)
    environ = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    app = create_app(config, preparer=preparer, environ=environ)
    with serving(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        until(http, lambda p: p.ready)
        yield http


@pytest.fixture(scope="module")
def second_model(llamacpp: EngineInstall, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model(llamacpp, tmp_path_factory.mktemp("second"), seed=1)


def pool(client: httpx.Client) -> PoolStatus:
    return msgspec.json.decode(client.get("/v2/pools/tiny").content, type=PoolStatus)


def until(client: httpx.Client, check: Callable[[PoolStatus], bool], timeout_s: float = 30) -> PoolStatus:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check(current := pool(client)):
            return current
        time.sleep(0.05)
    raise AssertionError(f"pool never got there: {current}")


def error_code(response: httpx.Response) -> ErrorKind:
    return msgspec.json.decode(response.content, type=ErrorEnvelope).code


@pytest.mark.req("OC-POOL-3152")
def test_drain_answers_202_after_publishing_draining_and_ends_stopped(client: httpx.Client) -> None:
    response = client.post("/v2/pools/tiny/drain", json={"deadline_ms": 5000})
    assert response.status_code == 202
    assert_conforms(SERVICE, response)
    accepted = msgspec.json.decode(response.content, type=PoolActionAccepted)
    assert (accepted.pool_id, accepted.action, accepted.status_url) == ("tiny", "drain", "/v2/pools/tiny")
    right_after = client.get(accepted.status_url)
    assert_conforms(SERVICE, right_after)
    assert right_after.json()["draining"] or right_after.json()["state"] == "stopped"
    stopped = until(client, lambda p: p.state == PoolState.stopped)
    assert (stopped.live, stopped.ready, stopped.draining, stopped.replicas) == (False, False, False, [])
    assert client.post("/v2/pools/tiny/drain", json={"deadline_ms": 5000}).status_code == 202


@pytest.mark.req("OC-POOL-3150", "OC-POOL-3151")
def test_reload_switches_the_model_and_a_second_action_meanwhile_is_409(
    client: httpx.Client, second_model: Path
) -> None:
    new_digest = f"sha256:{sha256_file(second_model)}"
    body = {"new_model_ref": f"file:{second_model}", "sha256": new_digest}
    response = client.post("/v2/pools/tiny/reload", json=body)
    assert response.status_code == 202
    assert_conforms(SERVICE, response)
    again = client.post("/v2/pools/tiny/reload", json=body)
    assert again.status_code == 409
    assert_conforms(SERVICE, again)
    assert error_code(again) == ErrorKind.CONFLICT
    drain = client.post("/v2/pools/tiny/drain", json={"deadline_ms": 5000})
    # The contract lists no 409 for drain yet, so this one is not checked for conformance.
    assert drain.status_code == 409
    assert error_code(drain) == ErrorKind.CONFLICT
    reloaded = until(client, lambda p: p.ready and p.model_digest == new_digest)
    assert reloaded.model_ref == f"file:{second_model}"
    assert reloaded.last_error is None


@pytest.mark.req("OC-POOL-3150")
def test_failed_reload_keeps_serving_and_says_why(client: httpx.Client, tmp_path: Path) -> None:
    before = pool(client)
    absent = f"file:{tmp_path}/models/absent.gguf"
    response = client.post("/v2/pools/tiny/reload", json={"new_model_ref": absent})
    assert response.status_code == 202
    after = until(client, lambda p: p.last_error is not None)
    assert after.ready
    assert (after.model_ref, after.model_digest) == (before.model_ref, before.model_digest)
    assert "absent.gguf" in (after.last_error or "")


@pytest.mark.req("OC-POOL-3151")
def test_unknown_pool_is_404_and_bad_bodies_are_400(client: httpx.Client) -> None:
    responses = {
        "drain_unknown": client.post("/v2/pools/nope/drain", json={"deadline_ms": 1000}),
        "reload_unknown": client.post("/v2/pools/nope/reload", json={"new_model_ref": "tiny-llama"}),
        "zero_deadline": client.post("/v2/pools/tiny/drain", json={"deadline_ms": 0}),
        "no_ref": client.post("/v2/pools/tiny/reload", json={}),
        "bad_digest": client.post("/v2/pools/tiny/reload", json={"new_model_ref": "x", "sha256": "abc"}),
    }
    for name, response in responses.items():
        assert_conforms(SERVICE, response)
        expected = 404 if name.endswith("unknown") else 400
        assert response.status_code == expected, (name, response.text)
    assert error_code(responses["drain_unknown"]) == ErrorKind.NOT_FOUND
    assert pool(client).ready, "refused actions change nothing"


@pytest.mark.req("OC-POOL-3180")
def test_a_reload_outside_the_model_directories_is_400_alike_and_nothing_is_attempted(
    client: httpx.Client, tmp_path: Path
) -> None:
    before = pool(client)
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.gguf"
    secret.write_bytes(b"root:x:0:0:SECRET")
    link = tmp_path / "models" / "link.gguf"
    link.symlink_to(secret)  # inside a model directory, pointing outside
    refs = [
        "file:/etc/passwd",
        "../../etc/passwd",
        f"file:{secret}",
        f"file:{outside / 'absent.gguf'}",
        f"file:{link}",
        f"{tmp_path}/models/../outside/secret.gguf",
    ]
    messages = set()
    for ref in refs:
        response = client.post("/v2/pools/tiny/reload", json={"new_model_ref": ref})
        assert_conforms(SERVICE, response)
        assert response.status_code == 400, (ref, response.text)
        envelope = msgspec.json.decode(response.content, type=ErrorEnvelope)
        assert envelope.code == ErrorKind.INVALID_PARAMS
        messages.add(envelope.message.replace(repr(ref), "<ref>"))
    assert len(messages) == 1, messages
    assert "SECRET" not in messages.pop()
    after = pool(client)
    assert (after.ready, after.model_ref, after.last_error) == (True, before.model_ref, None)


@pytest.mark.req("OC-POOL-3183")
def test_last_error_keeps_llama_cpps_error_lines_and_never_the_files_bytes(
    client: httpx.Client, tmp_path: Path
) -> None:
    """The real llama-server fails on a file that is not GGUF and quotes its first bytes; we do not."""
    not_gguf = tmp_path / "models" / "not-a-model.gguf"
    not_gguf.write_bytes(b"LEAK:x:0:0:SECRET-LINE:/nonexistent:/bin/bash\n" * 4)
    response = client.post("/v2/pools/tiny/reload", json={"new_model_ref": f"file:{not_gguf}"})
    assert response.status_code == 202
    after = until(client, lambda p: p.last_error is not None and p.ready, timeout_s=60)
    error = after.last_error or ""
    assert "invalid magic characters: <not shown>" in error, error
    assert "failed to load model" in error
    for leak in ("LEAK", "SECRET", "/bin/bash"):
        assert leak not in error, error
