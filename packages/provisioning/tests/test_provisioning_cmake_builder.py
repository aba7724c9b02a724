"""CMakeBuilder against a scripted stand-in for cmake: argv, progress, failures, interruption."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from llorch_provisioning import Accelerator, BuildError, CMakeBuilder, cmake_options

FAKE_CMAKE = """#!{python}
import json, os, pathlib, sys, time
args = sys.argv[1:]
build = pathlib.Path(args[1] if args[0] == "--build" else args[args.index("-B") + 1])
with (build / "calls.jsonl").open("a") as fh:
    fh.write(json.dumps(args) + "\\n")
(build / "pid").write_text(str(os.getpid()))
if args[0] != "--build":
    print("-- Configuring done", flush=True)
    sys.exit(0)
for i in (1, 2, 3):
    print(f"[{{i}}/3] Building CXX object x{{i}}.o", flush=True)
    if (build / "HANG").exists():
        time.sleep(60)
if (build / "FAIL").exists():
    print("error: boom", flush=True)
    sys.exit(2)
(build / "bin").mkdir(exist_ok=True)
(build / "bin" / "llama-server").write_text("binary")
"""


@pytest.fixture
def fake_cmake(tmp_path: Path) -> Path:
    script = tmp_path / "cmake"
    script.write_text(FAKE_CMAKE.format(python=sys.executable))
    script.chmod(0o755)
    return script


def _calls(build: Path) -> list[list[str]]:
    return [json.loads(line) for line in (build / "calls.jsonl").read_text().splitlines()]


def test_configures_then_builds_only_the_server_with_progress(fake_cmake: Path, tmp_path: Path) -> None:
    events: list[tuple[str, float, str]] = []
    builder = CMakeBuilder(jobs=2, generator="Ninja", cmake=str(fake_cmake))
    flags = cmake_options(Accelerator.CPU)
    binary = builder.build(tmp_path / "src", tmp_path / "build", flags, lambda *e: events.append(e))

    assert binary == tmp_path / "build" / "bin" / "llama-server"
    configure, build = _calls(tmp_path / "build")
    assert configure[:6] == ["-S", str(tmp_path / "src"), "-B", str(tmp_path / "build"), "-G", "Ninja"]
    assert tuple(configure[6:]) == flags
    assert build == ["--build", str(tmp_path / "build"), "--target", "llama-server", "-j", "2"]
    build_pcts = [round(pct, 1) for phase, pct, _ in events if phase == "build"]
    assert build_pcts == [33.3, 66.7, 100.0, 100.0]
    assert [phase for phase, _, _ in events][:2] == ["configure", "configure"]


def test_failed_build_raises_with_the_output_tail(fake_cmake: Path, tmp_path: Path) -> None:
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "FAIL").touch()
    builder = CMakeBuilder(generator="Ninja", cmake=str(fake_cmake))
    with pytest.raises(BuildError) as err:
        builder.build(tmp_path / "src", tmp_path / "build", (), lambda *_: None)
    assert err.value.phase == "build"
    assert err.value.returncode == 2
    assert err.value.output_tail[-1] == "error: boom"


def test_an_interrupted_caller_stops_the_build_process(fake_cmake: Path, tmp_path: Path) -> None:
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "HANG").touch()

    def cancel_on_first_step(phase: str, pct: float, line: str) -> None:
        if phase == "build" and pct > 0:
            raise KeyboardInterrupt

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        CMakeBuilder(generator="Ninja", cmake=str(fake_cmake)).build(
            tmp_path / "src", tmp_path / "build", (), cancel_on_first_step
        )
    assert time.monotonic() - started < 10
    pid = int((tmp_path / "build" / "pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
