#!/usr/bin/env python3
"""llama-orch task runner: the one command surface, locally and in CI.

Stdlib only, so a fresh machine needs nothing but Python 3.11+ to start.
Every subcommand first bootstraps the uv workspace in `.venv` (installing uv
into `.bootstrap/` with pip when it is not on PATH), then runs inside it.

    python3 xtask.py up             run the stack on its embedded default config
    python3 xtask.py test           every gate, as CI runs it
    python3 xtask.py regen [--check]
    python3 xtask.py spec-extract [--check]
    python3 xtask.py dev-loop       regenerate, then every gate
    python3 xtask.py bench          benchmarks in harness/bench
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BOOTSTRAP = ROOT / ".bootstrap"
UV_VERSION = "0.13.8"


def _say(message: str) -> None:
    print(f"xtask: {message}", flush=True)


def _run(argv: list[str | Path], env: dict[str, str] | None = None) -> int:
    return subprocess.call([str(a) for a in argv], cwd=ROOT, env=env)


def _uv() -> Path:
    """Find uv, or install the pinned version into a private bootstrap venv."""
    found = shutil.which("uv")
    if found:
        return Path(found)
    uv = BOOTSTRAP / "bin" / "uv"
    if not uv.exists():
        _say(f"uv not found; installing uv=={UV_VERSION} into {BOOTSTRAP.name}/")
        subprocess.check_call([sys.executable, "-m", "venv", str(BOOTSTRAP)])
        subprocess.check_call([str(BOOTSTRAP / "bin" / "pip"), "install", "--quiet", f"uv=={UV_VERSION}"])
    return uv


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # Use this machine's interpreter; never let uv download one.
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env["UV_PROJECT_ENVIRONMENT"] = str(VENV)
    env["PACT_DO_NOT_TRACK"] = "true"
    env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.pop("VIRTUAL_ENV", None)
    return env


def bootstrap() -> None:
    """Create or update `.venv` from the committed `uv.lock` (idempotent, fast when current)."""
    argv: list[str | Path] = [_uv(), "sync", "--locked", "--all-packages", "--python", sys.executable]
    if not sys.stdout.isatty():
        argv.append("--quiet")
    if _run(argv, _env()) != 0:
        raise SystemExit("xtask: environment bootstrap failed (uv sync)")


def _py(*args: str | Path) -> int:
    return _run([VENV / "bin" / "python", *args], _env())


def _nox(*sessions: str) -> int:
    return _run([VENV / "bin" / "nox", "--noxfile", ROOT / "noxfile.py", "-s", *sessions], _env())


def cmd_regen(check: bool) -> int:
    return _py(ROOT / "codegen" / "regen.py", *(["--check"] if check else []))


def cmd_spec_extract(check: bool) -> int:
    return _py(ROOT / "codegen" / "spec_extract.py", *(["--check"] if check else []))


def cmd_up(extra: list[str]) -> int:
    # Replace this process, so Ctrl-C and SIGTERM reach the launcher directly.
    python = str(VENV / "bin" / "python")
    os.chdir(ROOT)
    os.execve(python, [python, "-m", "llorch_cli", "up", *extra], _env())


def cmd_bench(extra: list[str]) -> int:
    return _py(ROOT / "harness" / "bench" / "run.py", *extra)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="xtask.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("bootstrap", help="create or update .venv only")
    sub.add_parser("up", help="run the stack on its embedded default config")
    sub.add_parser("test", help="run every gate, as CI does")
    sub.add_parser("dev-loop", help="regenerate, then run every gate")
    sub.add_parser("bench", help="run the benchmarks in harness/bench")
    for name in ("regen", "spec-extract"):
        p = sub.add_parser(name)
        p.add_argument("--check", action="store_true", help="fail on drift instead of writing")
    args, extra = parser.parse_known_args(argv)

    bootstrap()
    commands = {
        "bootstrap": lambda: 0,
        "regen": lambda: cmd_regen(args.check),
        "spec-extract": lambda: cmd_spec_extract(args.check),
        "up": lambda: cmd_up(extra),
        "bench": lambda: cmd_bench(extra),
        "dev-loop": lambda: cmd_regen(False) or cmd_spec_extract(False) or _nox("dev_loop"),
        "test": lambda: _nox("dev_loop"),
    }
    return commands[args.command]()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
