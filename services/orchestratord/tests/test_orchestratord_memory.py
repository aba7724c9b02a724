"""Memory stays bounded while tasks with 1 MiB prompts come and go (OC-CTRL-2187, OC-CTRL-2186).

A soak bounded in time: a real `python -m orchestratord` on the mock engine takes
hundreds of tasks whose prompts are 1 MiB each; a finished task keeps no prompt,
so its resident memory must stay where it was after warming up. Without that,
every finished task would hold its megabyte for `retain_ms` (300 MiB here).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from llorch_testkit import free_port, orchestratord_process

TASKS = 300
WARMUP = 40
PROMPT = "x" * (1024 * 1024)  # 1 MiB, one mock token
GROWTH_BOUND_KB = 48 * 1024


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _run_tasks(client: httpx.Client, count: int) -> None:
    for n in range(count):
        body = {"model_ref": "m", "prompt": PROMPT, "max_tokens": 4, "seed": n}
        answer = client.post("/v2/tasks", json=body)
        assert answer.status_code == 202, answer.text
        events = client.get(f"/v2/tasks/{answer.json()['task_id']}/events").text
        assert "event: end" in events


@pytest.mark.req("OC-CTRL-2187", "OC-CTRL-2186")
def test_rss_stays_flat_while_tasks_with_megabyte_prompts_come_and_go(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "llorch.yaml"
    config.write_text(
        f"orchestratord:\n  bind: 127.0.0.1:{port}\n  state_dir: {tmp_path / 'state'}\n"
        "catalog: {root: " + str(tmp_path / "catalog") + "}\n"
        "artifacts: {root: " + str(tmp_path / "artifacts") + "}\n"
        "pools:\n  - id: p\n    engine: {kind: mock}\n    model: {ref: m}\n"
    )
    base = f"http://127.0.0.1:{port}"
    with orchestratord_process(config, base) as server, httpx.Client(base_url=base, timeout=30) as client:
        _run_tasks(client, WARMUP)
        before = _rss_kb(server.pid)
        _run_tasks(client, TASKS)
        after = _rss_kb(server.pid)
    assert after - before < GROWTH_BOUND_KB, f"RSS grew by {(after - before) // 1024} MiB over {TASKS} tasks"
