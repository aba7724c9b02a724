"""The real stack as separate OS processes, for fault injection (ORCH-3440).

pool-managerd and orchestratord run as `python -m ...` in their own process groups, on free
ports, with every state directory in a temp dir; engines are the cached llama-server on the
generated tiny model. Each daemon can be killed and started again on the same config, so a
scenario can SIGKILL orchestratord or restart pool-managerd. Teardown kills every process group
this module started and any llama-server on the stack's engine ports, then checks none is left.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

READY_TIMEOUT_S = 120.0
STOP_GRACE_S = 10.0
ENGINE_PORTS = 40
MODEL_REF = "gen:tiny-llama"


@dataclass(frozen=True)
class StackShape:
    """What a scenario needs: replicas, slots per replica, queue capacity and timeouts."""

    replicas: int = 1
    slots_per_replica: int = 2
    queue_capacity: int = 8
    pool_id: str = "chaos"
    # OC-CORE-1164: how long queued tasks wait for a pool that cannot run them; None keeps the default.
    pool_unavailable_ms: int | None = None


def _config_text(shape: StackShape, root: Path, ports: dict[str, int]) -> str:
    engine_port = ports["engine"]
    grace = shape.pool_unavailable_ms
    timeouts = "" if grace is None else f"  timeouts: {{pool_unavailable_ms: {grace}}}\n"
    return f"""\
profile: dev
orchestratord:
  bind: 127.0.0.1:{ports["orchestratord"]}
  pool_managerd_url: http://127.0.0.1:{ports["pool_managerd"]}
  state_dir: {root / "orchestratord"}
  queue: {{capacity: {shape.queue_capacity}, full_policy: reject}}
  sse: {{keepalive_ms: 1000}}
{timeouts}pool_managerd:
  bind: 127.0.0.1:{ports["pool_managerd"]}
  engine_ports: {{start: {engine_port}, end: {engine_port + ENGINE_PORTS - 1}}}
  cache_dir: {Path.home() / ".cache" / "llama-orch"}
  runtime_dir: {root / "pool-managerd"}
catalog: {{root: {root / "catalog"}}}
artifacts: {{root: {root / "artifacts"}}}
policy:
  outbound: {{allow: false}}
logging: {{format: json, level: info}}
pools:
  - id: {shape.pool_id}
    replicas: {shape.replicas}
    slots_per_replica: {shape.slots_per_replica}
    allow_cpu_inference: true
    ctx_max: 4096
    model: {{ref: "{MODEL_REF}"}}
"""


@dataclass
class Daemon:
    """One service process, started in its own process group with its output in a log file."""

    module: str
    config: Path
    log: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module, "--config", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.module} was never started"
        return self.process.pid

    def signal(self, signum: int) -> None:
        """Send `signum` to the daemon's whole process group and reap it if it was a kill."""
        assert self.process is not None
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)
        if signum == signal.SIGKILL:
            self.process.wait()

    def stop(self) -> None:
        """SIGTERM the group, SIGKILL what is left after the grace period; idempotent."""
        if self.process is None or self.process.poll() is not None:
            return
        self.signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)


@dataclass
class ChaosStack:
    """A running pool-managerd + orchestratord pair and the handles a scenario needs to break it."""

    shape: StackShape
    root: Path
    orchestratord_url: str
    pool_managerd_url: str
    pool_managerd: Daemon
    orchestratord: Daemon

    def pool(self) -> dict[str, Any]:
        """pool-managerd's view of the scenario's pool (replica endpoints, pids, states)."""
        view: dict[str, Any] = httpx.get(
            f"{self.pool_managerd_url}/v2/pools/{self.shape.pool_id}", timeout=5
        ).json()
        return view

    def orchestratord_pool(self) -> dict[str, Any]:
        """orchestratord's summary of the pool (ready, slots_free, queue_depth)."""
        pools = httpx.get(f"{self.orchestratord_url}/v2/pools", timeout=5).json()
        return next(p for p in pools if p["pool_id"] == self.shape.pool_id)

    def engine_pid(self, replica_index: int = 0) -> int:
        """The pid of a Ready replica's llama-server."""
        replica = self.pool()["replicas"][replica_index]
        assert replica["state"] == "ready", f"replica not ready: {replica}"
        assert replica.get("pid"), f"replica without a pid: {replica}"
        return int(replica["pid"])

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> float:
        """Seconds until both daemons see every replica of the pool Ready."""
        started = time.monotonic()
        last: object = None
        while time.monotonic() - started < timeout_s:
            for daemon in (self.pool_managerd, self.orchestratord):
                code = daemon.process.poll() if daemon.process else None
                assert code is None, f"{daemon.module} exited with {code}; log: {daemon.log}"
            try:
                pm = self.pool()
                orch = self.orchestratord_pool()
                last = (pm["state"], [r["state"] for r in pm["replicas"]], orch)
                replicas_ready = all(r["state"] == "ready" for r in pm["replicas"])
                if (
                    pm["ready"]
                    and replicas_ready
                    and orch["ready"]
                    and len(pm["replicas"]) == self.shape.replicas
                ):
                    return time.monotonic() - started
            except (httpx.TransportError, StopIteration, KeyError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"pool {self.shape.pool_id} not Ready after {timeout_s:.0f}s: {last}")

    def wait_answering(self, daemon: Daemon, url: str, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Until `url` answers at all (after a restart)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert daemon.process is not None, f"{daemon.module} was never started"
            assert daemon.process.poll() is None, f"{daemon.module} died: {daemon.log}"
            with suppress(httpx.TransportError):
                httpx.get(url, timeout=2)
                return
            time.sleep(0.1)
        raise AssertionError(f"{daemon.module} did not answer {url} within {timeout_s:.0f}s")

    def restart_orchestratord(self, signum: int) -> None:
        """Stop orchestratord with `signum` and start it again on the same config and state_dir."""
        self.orchestratord.signal(signum)
        assert self.orchestratord.process is not None
        self.orchestratord.process.wait(timeout=STOP_GRACE_S)
        self.orchestratord.start()
        self.wait_answering(self.orchestratord, f"{self.orchestratord_url}/metrics")

    def restart_pool_managerd(self) -> None:
        """SIGTERM pool-managerd (it stops its replicas) and start it again."""
        self.pool_managerd.stop()
        self.pool_managerd.start()
        self.wait_answering(self.pool_managerd, f"{self.pool_managerd_url}/v2/health")

    def leftover_engines(self) -> list[int]:
        """Pids of this stack's llama-server processes still alive.

        An engine is this stack's when its output goes to a log in the stack's runtime dir:
        ports cannot tell, since another stack's engine range may overlap this one's, and a
        teardown that went by port once killed another test's engine.
        """
        runtime = str(self.root / "pool-managerd")
        return [pid for pid, argv in _processes() if "llama-server" in argv[0] and _logs_under(pid, runtime)]

    def teardown(self) -> None:
        self.orchestratord.stop()
        self.pool_managerd.stop()
        for pid in self.leftover_engines():
            with suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def free_port() -> int:
    """A port nothing listens on right now (testkit's twin; importing testkit loads the services)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _processes() -> Iterator[tuple[int, list[str]]]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError):
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                if argv and argv[0]:
                    yield int(entry.name), [a.decode(errors="replace") for a in argv if a]


def _logs_under(pid: int, directory: str) -> bool:
    """Whether the process writes its stdout to a file below `directory`."""
    with suppress(OSError):
        return os.readlink(f"/proc/{pid}/fd/1").startswith(directory + "/")
    return False


def rss_kb(pid: int) -> int:
    """VmRSS of a process, in kB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


@contextmanager
def chaos_stack(shape: StackShape, root: Path) -> Iterator[ChaosStack]:
    """Start the stack on free ports under `root`; yields once the pool is Ready; leaves nothing behind."""
    ports = {"orchestratord": free_port(), "pool_managerd": free_port(), "engine": free_port()}
    config = root / "llorch.yaml"
    config.write_text(_config_text(shape, root, ports))
    env = {k: v for k, v in os.environ.items() if k != "LLORCH_API_TOKEN"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    stack = ChaosStack(
        shape=shape,
        root=root,
        orchestratord_url=f"http://127.0.0.1:{ports['orchestratord']}",
        pool_managerd_url=f"http://127.0.0.1:{ports['pool_managerd']}",
        pool_managerd=Daemon("pool_managerd", config, root / "pool-managerd.log", env),
        orchestratord=Daemon("orchestratord", config, root / "orchestratord.log", env),
    )
    try:
        stack.pool_managerd.start()
        stack.orchestratord.start()
        stack.wait_ready()
        yield stack
    finally:
        stack.teardown()
        left = stack.leftover_engines()
        assert not left, f"llama-server processes left behind: {left}"
