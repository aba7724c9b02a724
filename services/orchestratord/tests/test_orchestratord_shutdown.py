"""orchestratord stops promptly on SIGTERM even while SSE subscribers wait on a task that never starts."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from llorch_contracts.api import EngineKind
from llorch_testkit import FakePoolManager, free_port, pool_status, serving


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
    server = subprocess.Popen(
        [sys.executable, "-m", "orchestratord", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/metrics", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "orchestratord did not start"
                time.sleep(0.1)
        # The pool's pool-managerd never answers, so this task stays queued and its stream stays open.
        task_id = httpx.post(
            f"{base}/v2/tasks", json={"model_ref": "m", "prompt": "x", "max_tokens": 4}
        ).json()["task_id"]
        with httpx.stream("GET", f"{base}/v2/tasks/{task_id}/events", timeout=30) as stream:
            next(stream.iter_lines())
            time.sleep(1.0)  # the stream is now idle between keepalives, as a waiting client's is
            server.send_signal(signal.SIGTERM)
            started = time.monotonic()
            assert server.wait(timeout=15) is not None
        assert time.monotonic() - started < 12
    finally:
        server.kill()
        server.wait()
