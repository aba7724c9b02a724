"""`llorch up`: run pool-managerd and orchestratord together until Ctrl-C.

Each daemon runs in its own process group, so stopping the group also stops
anything the daemon spawned (engine replicas): nothing is left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from llorch_config import load_config

READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 10.0


@dataclass
class Daemon:
    """One child daemon and the URL that says it is up."""

    name: str
    module: str
    health_url: str
    process: subprocess.Popen[bytes] | None = None

    def start(self, config_path: Path | None) -> None:
        argv = [sys.executable, "-m", self.module, *(["--config", str(config_path)] if config_path else [])]
        self.process = subprocess.Popen(argv, start_new_session=True)

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self) -> None:
        """SIGTERM the daemon's whole process group; SIGKILL what is left after the grace period."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass


def _wait_healthy(daemons: list[Daemon]) -> str | None:
    """None once every daemon answers its (unauthenticated) health URL, else why not."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    pending = list(daemons)
    with httpx.Client(timeout=2.0) as client:
        while pending and time.monotonic() < deadline:
            for daemon in list(pending):
                if (code := daemon.exited()) is not None:
                    return f"{daemon.name} exited with status {code}"
                try:
                    if client.get(daemon.health_url).status_code == 200:
                        pending.remove(daemon)
                except httpx.TransportError:
                    pass
            time.sleep(0.2)
    return (
        f"{', '.join(d.name for d in pending)} did not answer within {READY_TIMEOUT_S:.0f}s"
        if pending
        else None
    )


def _step_line(pool: dict[str, Any]) -> str:
    steps = [s for s in pool["preparation"]["steps"] if s["status"] in ("running", "failed")]
    if not steps:
        return f"{pool['pool_id']}: {pool['state']}"
    step = steps[-1]
    pct = f" {step['pct']:.0f}%" if "pct" in step else ""
    return f"{pool['pool_id']}: {step['description']} [{step.get('phase', step['status'])}{pct}]"


def _wait_pools_ready(pool_url: str, daemons: list[Daemon], headers: dict[str, str]) -> str | None:
    """Print preparation progress until every preloaded pool is Ready; None, or why not."""
    last = ""
    with httpx.Client(timeout=5.0, headers=headers) as client:
        while True:
            if gone := next((d for d in daemons if d.exited() is not None), None):
                return f"{gone.name} exited with status {gone.exited()}"
            pools = client.get(f"{pool_url}/v2/pools").json()
            line = "; ".join(_step_line(p) for p in pools)
            if line != last:
                print(f"llorch up: {line}", flush=True)
                last = line
            failed = [p for p in pools if p["state"] == "unready" and p["last_error"]]
            if failed:
                return "; ".join(f"pool {p['pool_id']} is unready: {p['last_error']}" for p in failed)
            if all(p["ready"] or p["state"] == "stopped" for p in pools):
                return None
            time.sleep(0.5)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_up(config_path: Path | None) -> int:
    """Start both daemons, report where they are, and stop them cleanly on Ctrl-C, SIGTERM or failure."""
    config = load_config(config_path)
    # Both, explicitly: a launcher started from a script may inherit an ignored SIGINT.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    orch = f"http://{config.orchestratord.bind}"
    pool = f"http://{config.pool_managerd.bind}"
    daemons = [
        Daemon("pool-managerd", "pool_managerd", f"{pool}/v2/health"),
        Daemon("orchestratord", "orchestratord", f"{orch}/metrics"),
    ]
    source = config_path or "the embedded default config (dev profile, CPU inference)"
    print(f"llorch up: using {source}", flush=True)
    try:
        for daemon in daemons:
            daemon.start(config_path)
        token = os.environ.get(config.auth.token_env)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if problem := _wait_healthy(daemons) or _wait_pools_ready(pool, daemons, headers):
            print(f"llorch up: {problem}", file=sys.stderr)
            return 1
        print(f"llorch up: orchestratord  {orch}   (try: curl -s {orch}/v2/pools)", flush=True)
        print(f"llorch up: pool-managerd  {pool}   (try: curl -s {pool}/v2/pools)", flush=True)
        model = config.pools[0].model.ref
        print("llorch up: stream real tokens with either of:", flush=True)
        print(f"  .venv/bin/llorch submit --url {orch} --model {model} 'Once upon a time'", flush=True)
        body = json.dumps({"model_ref": model, "prompt": "Once upon a time", "max_tokens": 64})
        print(
            f"  curl -sN {orch}/v2/tasks/$(curl -s {orch}/v2/tasks -H 'content-type: application/json' "
            f"-d '{body}' | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"task_id\"])')/events",
            flush=True,
        )
        print("llorch up: running; Ctrl-C stops everything", flush=True)
        while all(d.exited() is None for d in daemons):
            time.sleep(0.5)
        gone = next(d for d in daemons if d.exited() is not None)
        print(f"llorch up: {gone.name} exited with status {gone.exited()}; stopping", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nllorch up: stopping", flush=True)
        return 0
    finally:
        for daemon in reversed(daemons):
            daemon.stop()
