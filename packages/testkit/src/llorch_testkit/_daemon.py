"""orchestratord as a real process (`python -m orchestratord`), for tests that signal or restart it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

START_TIMEOUT_S = 30.0


@contextmanager
def orchestratord_process(config: Path, base_url: str) -> Iterator[subprocess.Popen[bytes]]:
    """Run orchestratord on `config` until the block ends (then SIGKILL); yields once it answers.

    `base_url` is where `config` binds it. The block may signal the process itself.
    """
    server = subprocess.Popen(
        [sys.executable, "-m", "orchestratord", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                httpx.get(f"{base_url}/metrics", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None, f"orchestratord exited with {server.returncode}"
                assert time.monotonic() < deadline, "orchestratord did not start"
                time.sleep(0.05)
        yield server
    finally:
        server.kill()
        server.wait()


def admit(client: httpx.Client, body: dict[str, Any], timeout_s: float = 20.0) -> str:
    """POST /v2/tasks until admitted; a 503 (no pool view yet, OC-CTRL-2170) is retried. Returns the id."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = client.post("/v2/tasks", json=body)
        if answer.status_code == 202:
            return str(answer.json()["task_id"])
        assert answer.status_code == 503, answer.text
        assert time.monotonic() < deadline, f"never admitted: {answer.text}"
        time.sleep(0.05)
