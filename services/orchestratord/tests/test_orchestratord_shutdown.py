"""orchestratord stops promptly on SIGTERM even while SSE subscribers wait on a task that never starts."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx

from llorch_contracts.api import EngineKind
from llorch_testkit import FakePoolManager, admit, free_port, orchestratord_process, pool_status, serving


def test_sigterm_with_open_streams_exits_within_the_grace_period(tmp_path: Path) -> None:
    # A pool-managerd whose only pool stays in preparation: tasks are admitted and never start.
    preparing = FakePoolManager(pool_status("p", engine=EngineKind.llamacpp))
    with serving(preparing.app()) as pool_managerd:
        _sigterm_while_a_client_waits(tmp_path, pool_managerd)


def _sigterm_while_a_client_waits(tmp_path: Path, pool_managerd: str) -> None:
    port = free_port()
    config = tmp_path / "llorch.yaml"
    config.write_text(
        "profile: dev\n"
        f"orchestratord:\n  bind: 127.0.0.1:{port}\n  pool_managerd_url: {pool_managerd}\n"
        f"  state_dir: {tmp_path / 'state'}\n"
        "catalog: {root: " + str(tmp_path / "catalog") + "}\n"
        "artifacts: {root: " + str(tmp_path / "artifacts") + "}\n"
        "pools:\n  - id: p\n    allow_cpu_inference: true\n    model: {ref: m}\n"
    )
    base = f"http://127.0.0.1:{port}"
    with orchestratord_process(config, base) as server, httpx.Client(base_url=base, timeout=10) as client:
        # The pool never becomes Ready, so this task stays queued and its stream stays open.
        task_id = admit(client, {"model_ref": "m", "prompt": "x", "max_tokens": 4})
        with httpx.stream("GET", f"{base}/v2/tasks/{task_id}/events", timeout=30) as stream:
            next(stream.iter_lines())
            time.sleep(1.0)  # the stream is now idle between keepalives, as a waiting client's is
            server.send_signal(signal.SIGTERM)
            started = time.monotonic()
            assert server.wait(timeout=15) is not None
    assert time.monotonic() - started < 12
