"""One engine process: started in its own process group, logged to a file, stopped for sure.

Own process group: stopping the group also stops anything the engine spawned,
and a Ctrl-C aimed at pool-managerd's terminal does not hit the engine before
pool-managerd has decided to stop it (OC-POOL-3107: no orphan engines).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import re
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ._errors import EngineExitedError

STOP_GRACE_S = 10.0  # OC-POOL-3192
LOG_TAIL_BYTES = 4096  # read, then filtered to error lines (OC-POOL-3183)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL if pool-managerd dies, even by SIGKILL (Linux only)."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass(frozen=True, kw_only=True)
class LaunchSpec:
    """Everything needed to start one engine process."""

    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path


# llama.cpp's log lines: "<elapsed> <level> <message>", level E for errors (OC-POOL-3183).
_LLAMA_LINE = re.compile(r"^\s*(?:\d+\.)+\d+ ([EWIDT]) (.*)$")
# gguf_init_from_reader quotes a bad file's first bytes ("invalid magic characters: 'root'").
_QUOTED_BYTES = re.compile(r"(invalid magic characters:) '[^']*'")


def engine_errors(text: str, limit: int = 8) -> list[str]:
    """llama.cpp's own error messages from a log excerpt, never raw file bytes (OC-POOL-3183).

    Only lines llama.cpp logged at error level are kept, without their timestamps, and the
    bytes the loader quotes from a file that is not GGUF are replaced by a placeholder.
    """
    errors: list[str] = []
    for line in text.splitlines():
        match = _LLAMA_LINE.match(line)
        if match is not None and match.group(1) == "E":
            message = _QUOTED_BYTES.sub(r"\1 <not shown>", match.group(2).strip())
            if message not in errors:
                errors.append(message)
    return errors[-limit:]


def log_tail(path: Path, limit: int = LOG_TAIL_BYTES, *, start: int = 0) -> str:
    """The engine's last error messages from its log after byte `start`, for `last_error` (OC-POOL-3183)."""
    try:
        with path.open("rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(start, log.tell() - limit))
            text = log.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(engine_errors(text))


class EngineProcess:
    """A running engine; `stop()` is idempotent and always leaves no process behind."""

    def __init__(self, spec: LaunchSpec, process: asyncio.subprocess.Process, log_start: int = 0) -> None:
        self.spec = spec
        self._process = process
        self._log_start = log_start  # this run's first byte in the (appended) log

    @classmethod
    async def start(cls, spec: LaunchSpec) -> EngineProcess:
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with spec.log_path.open("ab") as log:
            log_start = log.tell()
            try:
                process = await asyncio.create_subprocess_exec(
                    *spec.argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=asyncio.subprocess.STDOUT,
                    env=spec.env,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
            except OSError as exc:
                raise EngineExitedError(f"cannot start {spec.argv[0]}: {exc.strerror}") from exc
        return cls(spec, process, log_start)

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    async def wait(self) -> int:
        return await self._process.wait()

    def exited_error(self) -> EngineExitedError:
        """The typed error for this process having exited."""
        code = self._process.returncode
        return EngineExitedError(self.exit_reason(), signal=code is not None and code < 0)

    def exit_reason(self) -> str:
        """Operator-facing reason for an exit: the code (or signal) and the end of the log."""
        code = self._process.returncode
        how = (
            f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with status {code}"
        )
        tail = log_tail(self.spec.log_path, start=self._log_start)
        return f"engine {how}" + (f"; engine errors:\n{tail}" if tail else f"; see {self.spec.log_path}")

    async def stop(self) -> None:
        """SIGTERM the process group, SIGKILL it after the grace period; safe to call twice."""
        if self._process.returncode is None:
            self._signal_group(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(self._process.wait()), STOP_GRACE_S)
            except TimeoutError:
                self._signal_group(signal.SIGKILL)
                await self._process.wait()
        # Children the engine left in its group go too, even after the leader is gone.
        self._signal_group(signal.SIGKILL)

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signum)
