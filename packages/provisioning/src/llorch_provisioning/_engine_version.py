"""Asking a built ``llama-server`` who it is (``--version``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ._commands import RunCommand
from ._errors import BuildError
from ._progress import Phase

_TIMEOUT_S = 30.0


def read_engine_version(
    binary: Path, *, run: RunCommand = subprocess.run, timeout_s: float = _TIMEOUT_S
) -> str:
    """Run ``binary --version`` and return its trimmed output (llama.cpp prints to stderr).

    This doubles as a smoke test: a binary that cannot start here (wrong CPU features,
    missing shared library) fails now, at install time, not when a pool first spawns it.
    """
    try:
        proc = run(
            [str(binary), "--version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BuildError(Phase.INSTALL, -1, (f"{binary} --version: {exc}",)) from exc
    output = "\n".join(part.strip() for part in (proc.stdout, proc.stderr) if part.strip())
    if proc.returncode != 0:
        raise BuildError(Phase.INSTALL, proc.returncode, tuple(output.splitlines()[-20:]))
    return output


def version_line(output: str) -> str:
    """The ``version: ...`` line of ``--version`` output, or the first line if there is none."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("version:"):
            return line
    return lines[0] if lines else ""
