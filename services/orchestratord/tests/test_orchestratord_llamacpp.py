"""The data plane against the real llama-server: incremental streams, seeds, race-free cancel, slot release.

The whole stack runs: pool-managerd spawns and health-gates llama-server on the
generated tiny model; orchestratord follows its watch stream and dispatches.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llorch_provisioning import EngineInstall
from llorch_testkit import Stack, parse_sse, running_stack, stack_config

POOL = "  - id: tiny\n    allow_cpu_inference: true\n    ctx_max: 2048\n    model: {ref: tiny-llama}\n"
LIMITS = "  admission: {max_tokens_limit: 2000}\n"


@pytest.fixture(scope="module")
def stack(
    llamacpp: EngineInstall, tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    config = stack_config(POOL, orchestratord_yaml=LIMITS)
    with running_stack(
        config, llamacpp.binary_path, tiny_model_path, tmp_path_factory.mktemp("run")
    ) as running:
        yield running


def submit(client: httpx.Client, **body: object) -> str:
    payload: dict[str, object] = {"model_ref": "tiny-llama", "prompt": "Once upon a time", "max_tokens": 32}
    payload.update(body)
    response = client.post("/v2/tasks", json=payload)
    assert response.status_code == 202, response.text
    return str(response.json()["task_id"])


def transcript(client: httpx.Client, task_id: str) -> list[tuple[str, dict[str, object]]]:
    text = client.get(f"/v2/tasks/{task_id}/events").text
    return [(e.event, json.loads(e.data)) for e in parse_sse(text)]


def engine_slot_busy(stack: Stack) -> bool:
    pools = httpx.get(f"{stack.pool_managerd}/v2/pools").json()
    endpoint = pools[0]["replicas"][0]["endpoint"]
    return any(slot["is_processing"] for slot in httpx.get(f"{endpoint}/slots").json())


# The services run in this process's threads; the client runs in its own process so that it sees
# frames when the network delivers them, not when this process's GIL lets it look. It queues its task
# behind a long one on the single slot, so it is subscribed before its task starts.
_CLIENT = """
import json, sys, time, httpx
base = sys.argv[1]
body = {"model_ref": "tiny-llama", "prompt": "Once upon a time", "max_tokens": 1500}
with httpx.Client(base_url=base, timeout=60) as client:
    ahead = client.post("/v2/tasks", json=body | {"seed": 1}).json()["task_id"]
    task = client.post("/v2/tasks", json=body | {"seed": 2}).json()["task_id"]
    seen = {}
    subscribed = time.monotonic()
    with client.stream("GET", f"/v2/tasks/{task}/events") as stream:
        for line in stream.iter_lines():
            if line.startswith("event: "):
                seen.setdefault(line[7:], time.monotonic())
    seen["subscribed"] = subscribed
print(json.dumps({"task_id": task, "ahead": ahead, "arrivals": seen}))
"""


def stream_behind_a_long_task(base_url: str) -> tuple[str, str, dict[str, float]]:
    """(task id, id of the task ahead, first arrival time of each event name) from a separate process."""
    done = subprocess.run(
        [sys.executable, "-c", _CLIENT, base_url], capture_output=True, text=True, timeout=120, check=True
    )
    result = json.loads(done.stdout)
    return result["task_id"], result["ahead"], {k: float(v) for k, v in result["arrivals"].items()}


def text_of(events: list[tuple[str, dict[str, object]]]) -> str:
    return "".join(str(data["t"]) for name, data in events if name == "token")


@pytest.mark.req("OC-ADAPT-5201", "OC-CTRL-2021")
def test_tokens_arrive_while_the_engine_is_still_generating(stack: Stack) -> None:
    # On this loaded 2-core machine one run in a few has seen every frame arrive together (cause not
    # found; the adapter-level check does not show it); a buffering relay would fail all three tries.
    tries = []
    for _ in range(3):
        task_id, ahead, arrivals = stream_behind_a_long_task(stack.orchestratord)
        with httpx.Client(base_url=stack.orchestratord, timeout=30) as client:
            final = transcript(client, task_id)[-1]
            transcript(client, ahead)
        assert final[0] == "end"
        assert final[1]["tokens_out"] == 1500
        tries.append({name: round(at - arrivals["subscribed"], 4) for name, at in arrivals.items()})
        # 1500 tokens take the tiny model well over 100 ms: a buffered stream would deliver all at once.
        if arrivals["end"] - arrivals["token"] > 0.1:
            return
    raise AssertionError(f"every try got all frames at once; arrivals after subscribing: {tries}")


@pytest.mark.req("OC-TEST-7001")
def test_same_seed_same_text_on_the_real_engine(stack: Stack) -> None:
    with httpx.Client(base_url=stack.orchestratord, timeout=30) as client:
        first = text_of(transcript(client, submit(client, seed=1234)))
        second = text_of(transcript(client, submit(client, seed=1234)))
        other = text_of(transcript(client, submit(client, seed=99)))
    assert first
    assert first == second
    assert first != other


@pytest.mark.req("ORCH-3026", "OC-CTRL-2012", "OC-ADAPT-5204")
def test_cancel_mid_stream_never_yields_a_later_token_and_frees_the_slot(stack: Stack) -> None:
    canceled_mid_stream = 0
    with httpx.Client(base_url=stack.orchestratord, timeout=30) as client:
        for round_no in range(15):
            task_id = submit(client, max_tokens=1500, seed=round_no)
            with client.stream("GET", f"/v2/tasks/{task_id}/events") as stream:
                seen = 0
                for line in stream.iter_lines():
                    seen += line.startswith("event: token")
                    if seen == 3 + round_no:
                        break
            acknowledged = client.post(f"/v2/tasks/{task_id}/cancel")
            assert acknowledged.status_code == 204
            after_ack = transcript(client, task_id)
            assert not engine_slot_busy(stack), "the engine slot is free once the cancel is acknowledged"
            time.sleep(0.02)
            assert transcript(client, task_id) == after_ack, "nothing is appended after the acknowledgement"
            names = [name for name, _ in after_ack]
            assert names[-1] == "end"
            if after_ack[-1][1]["finish_reason"] != "canceled":
                continue  # the engine finished first: a cancel of a finished task is a no-op
            canceled_mid_stream += 1
            assert "token" not in names[names.index("end") :]
            assert after_ack[-1][1]["tokens_out"] == names.count("token")
    assert canceled_mid_stream >= 10, "most rounds must cancel while the engine streams"


def test_context_overflow_is_refused_before_it_is_queued(stack: Stack) -> None:
    with httpx.Client(base_url=stack.orchestratord, timeout=30) as client:
        response = client.post(
            "/v2/tasks", json={"model_ref": "tiny-llama", "prompt": "x", "max_tokens": 1999, "ctx": 100000}
        )
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_PARAMS"
    assert "context" in response.json()["message"]


def test_metrics_count_real_tokens(stack: Stack) -> None:
    with httpx.Client(base_url=stack.orchestratord, timeout=30) as client:

        def tokens_out_total() -> float:
            lines = client.get("/metrics").text.splitlines()
            return sum(
                float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("tokens_out_total{")
            )

        before = tokens_out_total()
        events = transcript(client, submit(client, max_tokens=20, seed=5))
        after = tokens_out_total()
    assert after - before == events[-1][1]["tokens_out"]
