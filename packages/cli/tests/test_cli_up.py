"""`llorch up` end to end: a real engine comes up, and Ctrl-C leaves no process behind (HME-062)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from llorch_provisioning import EngineInstall, default_cache_root
from llorch_testkit import free_port


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.req("HME-062")
def test_ctrl_c_stops_both_daemons_and_every_engine(llamacpp: EngineInstall, tmp_path: Path) -> None:
    orch, pm, engine = free_port(), free_port(), free_port()
    config = tmp_path / "llorch.yaml"
    config.write_text(
        "profile: dev\n"
        f"orchestratord: {{bind: '127.0.0.1:{orch}', pool_managerd_url: 'http://127.0.0.1:{pm}'}}\n"
        f"pool_managerd:\n  bind: '127.0.0.1:{pm}'\n  cache_dir: '{default_cache_root(os.environ)}'\n"
        f"  runtime_dir: '{tmp_path / 'run'}'\n  engine_ports: {{start: {engine}, end: {engine + 10}}}\n"
        f"catalog: {{root: '{tmp_path / 'catalog'}'}}\nartifacts: {{root: '{tmp_path / 'artifacts'}'}}\n"
        "policy: {outbound: {allow: true, allowed_hosts: [pypi.org, files.pythonhosted.org]}}\n"
        "pools:\n  - id: default\n    allow_cpu_inference: true\n    ctx_max: 512\n"
    )
    up = subprocess.Popen(
        [sys.executable, "-m", "llorch_cli", "up", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert up.stdout is not None
        deadline = time.monotonic() + 180
        for line in up.stdout:
            if "Ctrl-C stops everything" in line:
                break
            assert time.monotonic() < deadline, "llorch up never reported the stack running"
        pools = httpx.get(f"http://127.0.0.1:{pm}/v2/pools", timeout=10).json()
        engine_pid = pools[0]["replicas"][0]["pid"]
        assert pid_alive(engine_pid)
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=60) == 0
        deadline = time.monotonic() + 10
        while pid_alive(engine_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_alive(engine_pid), "no llama-server is left behind"
        for port in (orch, pm):
            with pytest.raises(httpx.TransportError):
                httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()
        if up.stdout is not None:
            up.stdout.close()
