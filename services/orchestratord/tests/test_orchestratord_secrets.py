"""Secrets never leave (ORCH-3332): known secrets go in through every input, and no answer or log line
of either service gives one back; prompts are never logged (ORCH-3327).

Both services run in-process on the real llama-server (running_stack); every log record of the process
goes through the services' own JSON-lines formatter into a buffer that the test greps.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llorch_http import JsonLines
from llorch_provisioning import EngineInstall
from llorch_testkit import running_stack, stack_config

POOL = "  - id: tiny\n    allow_cpu_inference: true\n    ctx_max: 512\n    model: {ref: tiny-llama}\n"
SECRET = "Zq9SECRETvalue7x"
PROMPT = "Kx7 a prompt that must never reach a log line 3vQ"
SECRET_REFS = [
    f"https://user:{SECRET}@models.example/m.gguf",
    f"https://{SECRET}@models.example/m.gguf",
    f"https://models.example/m.gguf?X-Amz-Signature={SECRET}&X-Amz-Credential={SECRET}",
    f"hf:org/repo/m.gguf?access_token={SECRET}",
    f"https://models.example/m.gguf?sig={SECRET}&token={SECRET}",
]


@pytest.fixture
def service_log() -> Iterator[io.StringIO]:
    """Every log line of both services, formatted as in production, at debug level."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonLines("test"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _everything_said(client: httpx.Client, paths: list[str]) -> list[httpx.Response]:
    return [client.get(path) for path in paths]


@pytest.mark.req("ORCH-3332", "ORCH-3330", "ORCH-3327")
@pytest.mark.xfail(
    strict=True,
    reason="known leaks outside the http package (issue 8 outcome 5, open): the catalog stores and "
    "echoes a ref's signed query (X-Amz-Signature=...); pool-managerd puts a reload ref verbatim into "
    "model_ref, so /v2/pools shows it (the preparation step no longer does, fcc93e9)",
)
def test_no_secret_or_prompt_leaves_through_answers_or_logs(
    llamacpp: EngineInstall, tiny_model_path: Path, tmp_path: Path, service_log: io.StringIO
) -> None:
    answers: list[httpx.Response] = []
    secret_headers = {
        "authorization": f"Bearer {SECRET}",
        "x-correlation-id": f"token={SECRET}",
        "x-api-key": SECRET,
        "cookie": f"session={SECRET}",
    }
    with (
        running_stack(stack_config(POOL), llamacpp.binary_path, tiny_model_path, tmp_path) as stack,
        httpx.Client(base_url=stack.orchestratord, timeout=30) as orch,
        httpx.Client(base_url=stack.pool_managerd, timeout=30) as pm,
    ):
        # A real task: its prompt runs on the engine and must show up in no log line.
        task = orch.post(
            "/v2/tasks",
            json={"model_ref": "tiny-llama", "prompt": PROMPT, "max_tokens": 4, "session_id": "s-secrets"},
        )
        assert task.status_code == 202, task.text
        answers.append(task)
        task_id = task.json()["task_id"]
        for ref in SECRET_REFS:
            answers += [
                orch.post("/v2/tasks", json={"model_ref": ref, "prompt": PROMPT, "max_tokens": 4}),
                orch.post("/v2/tasks", json={"model_ref": ref, "prompt": PROMPT, "session_id": ref}),
                orch.post("/v2/catalog/models", json={"id": "leak", "ref": ref}),
                orch.post("/v2/pools/tiny/reload", json={"new_model_ref": ref}),
                pm.post("/v2/pools/tiny/reload", json={"new_model_ref": ref}),
            ]
        answers += [
            orch.post(
                "/v2/tasks",
                json={"model_ref": "tiny-llama", "prompt": PROMPT, "max_tokens": 4},
                headers=secret_headers,
            ),
            orch.get("/v2/pools", headers=secret_headers),
            pm.get("/v2/pools", headers=secret_headers),
            orch.get(f"/v2/sessions/{SECRET}"),
            orch.get(f"/v2/tasks/{SECRET}?token={SECRET}"),
        ]
        # Wait for the real task to end, then read back everything either service says about it all.
        deadline = time.monotonic() + 60
        while orch.get(f"/v2/tasks/{task_id}").json().get("state") not in {"completed", "failed", "canceled"}:
            assert time.monotonic() < deadline, "the task did not end within 60 s"
            time.sleep(0.05)
        with orch.stream("GET", f"/v2/tasks/{task_id}/events") as events:
            stream = events.read()
        answers += _everything_said(
            orch,
            [f"/v2/tasks/{task_id}", "/v2/pools", "/v2/pools/tiny/health", "/v2/catalog/models", "/metrics"],
        )
        answers += _everything_said(pm, ["/v2/pools", "/v2/pools/tiny", "/metrics"])

    refused = [a for a in answers if a.status_code >= 400]
    assert refused, "the secret refs were expected to be refused"
    crashed = [(a.request.url, a.text) for a in answers if a.status_code >= 500]
    assert not crashed, crashed
    for answer in answers:
        said = answer.text + " ".join(f"{k}: {v}" for k, v in answer.headers.items())
        assert SECRET not in said, (answer.request.method, answer.request.url.path, said)
    assert SECRET not in stream.decode()
    log = service_log.getvalue()
    assert "admission" in log, "the capture saw no service log lines"
    assert SECRET not in log, [line for line in log.splitlines() if SECRET in line]
    assert PROMPT not in log, [line for line in log.splitlines() if PROMPT in line]
