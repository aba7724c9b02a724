"""Admitted tasks survive a restart of orchestratord: the journal in state_dir brings them back.

pool-managerd is replaced by a tiny watch-stream server whose pool the test
sets, so tasks can be left queued (the pool still preparing) and then run
(the pool Ready, its replica served by the mock engine) in the next life.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from llorch_adapters import MockAdapter, MockScript
from llorch_config import parse_config
from llorch_contracts.api import EngineKind, PoolStatus
from llorch_testkit import (
    FakePoolManager,
    admit,
    free_port,
    orchestratord_process,
    parse_sse,
    pool_status,
    replica_status,
    serving,
)
from orchestratord import create_app

MAX_EVENTS = 1024
T = TypeVar("T")


def _pool(ready: bool) -> PoolStatus:
    """Pool `p` as pool-managerd reports it: preparing (tasks wait) or Ready on one mock-run replica."""
    replicas = [replica_status("p", engine=EngineKind.llamacpp)] if ready else []
    return pool_status("p", *replicas, engine=EngineKind.llamacpp)


def _config_yaml(pool_managerd: str, port: int | None = None, state_dir: Path | None = None) -> str:
    orchestratord = f"orchestratord:\n  pool_managerd_url: {pool_managerd}\n"
    orchestratord += f"  sse: {{max_events_per_task: {MAX_EVENTS}}}\n"
    if port is not None:
        orchestratord += f"  bind: 127.0.0.1:{port}\n  state_dir: {state_dir}\n"
    pools = "pools:\n  - id: p\n    allow_cpu_inference: true\n    model: {ref: m}\n"
    return "profile: dev\n" + orchestratord + pools


@contextmanager
def _orchestratord(pool_managerd: str, state_dir: Path) -> Iterator[httpx.Client]:
    app = create_app(
        parse_config(_config_yaml(pool_managerd)),
        adapters={"llamacpp": MockAdapter(MockScript(first_token_delay_s=0.01))},
        state_dir=state_dir,
    )
    with serving(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def _admit(client: httpx.Client) -> str:
    return admit(client, {"model_ref": "m", "prompt": "hello there", "max_tokens": 4})


@pytest.mark.req("OC-CTRL-2172", "OC-CTRL-2173", "OC-CTRL-2174")
def test_queued_tasks_come_back_after_a_restart_in_order_and_run(tmp_path: Path) -> None:
    fake = FakePoolManager(_pool(ready=False))
    with serving(fake.app()) as pool_managerd:
        with _orchestratord(pool_managerd, tmp_path) as client:
            ids = [_admit(client) for _ in range(3)]
            assert [client.get(f"/v2/tasks/{i}").json()["state"] for i in ids] == ["queued"] * 3
        fake.pools = [_pool(ready=True)]
        with _orchestratord(pool_managerd, tmp_path) as client:
            # A client that had read `started` (id 0) before the restart resumes after it.
            resumed = parse_sse(client.get(f"/v2/tasks/{ids[0]}/events", headers={"Last-Event-ID": "0"}).text)
            for task_id in ids[1:]:
                parse_sse(client.get(f"/v2/tasks/{task_id}/events").text)
            statuses = [client.get(f"/v2/tasks/{i}").json() for i in ids]
    assert [s["state"] for s in statuses] == ["completed"] * 3
    started = [s["timestamps"]["started_ms"] for s in statuses]
    assert started == sorted(started), "restored tasks run in their admission order"
    assert [e.event for e in resumed][-1] == "end"
    assert "started" not in [e.event for e in resumed], "nothing before Last-Event-ID is repeated"
    ids_after = [int(e.id) for e in resumed]
    assert ids_after == sorted(ids_after)
    assert min(ids_after) >= MAX_EVENTS, "events of the new life never reuse an id of the old one"
    assert sum(e.event == "token" for e in resumed) == 4


@pytest.mark.req("OC-CTRL-2120", "OC-CTRL-2172")
def test_an_acknowledged_admission_survives_sigkill(tmp_path: Path) -> None:
    fake = FakePoolManager(_pool(ready=False))
    with serving(fake.app()) as pool_managerd:
        port = free_port()
        config = tmp_path / "llorch.yaml"
        config.write_text(_config_yaml(pool_managerd, port, tmp_path / "state"))
        base = f"http://127.0.0.1:{port}"
        ids = _run_then(config, base, lambda client: [_admit(client) for _ in range(5)], signal.SIGKILL)
        states = _run_then(
            config, base, lambda client: [client.get(f"/v2/tasks/{i}").json() for i in ids], signal.SIGTERM
        )
    assert [s["task_id"] for s in states] == ids
    assert [s["state"] for s in states] == ["queued"] * 5
    assert [s["queue_position"] for s in states] == [0, 1, 2, 3, 4]


def _run_then(config: Path, base: str, work: Callable[[httpx.Client], T], stop: signal.Signals) -> T:
    """Start orchestratord, do `work` against it, then stop it with `stop`."""
    with orchestratord_process(config, base) as server, httpx.Client(base_url=base, timeout=10) as client:
        result = work(client)
        server.send_signal(stop)
        server.wait(timeout=20)
    return result
