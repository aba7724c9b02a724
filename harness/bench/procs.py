"""Start a benchmark server in its own process group on a free port; always stop it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

HERE = Path(__file__).resolve().parent
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class ServerProcess:
    pid: int
    base_url: str


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time the process has used so far (Linux /proc), None where unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def server_process(server: str, *extra: str) -> Iterator[ServerProcess]:
    """Run `launch.py server --port P extra...` until the block ends; SIGTERM, then SIGKILL, to its group."""
    port = free_port()
    argv = [sys.executable, str(HERE / "launch.py"), server, "--port", str(port), *extra]
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(argv, cwd=HERE, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
                                start_new_session=True)  # fmt: skip
        try:
            _wait_listening(proc, port, stderr)
            yield ServerProcess(proc.pid, f"http://127.0.0.1:{port}")
        finally:
            _stop(proc)


def _wait_listening(proc: subprocess.Popen[bytes], port: int, log: IO[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            output = log.read().decode(errors="replace")[-4000:]
            raise RuntimeError(f"{proc.args!r} did not start listening on {port}:\n{output}")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(STOP_TIMEOUT_S)
            break
        except subprocess.TimeoutExpired:
            continue
    proc.wait()
