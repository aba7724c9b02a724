"""What a service says about itself: its contract's api_version and its build (OC-CTRL-2060)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path

import llorch_contracts


@cache
def contract_document(service: str) -> dict[str, object]:
    """The bundled OpenAPI document a service implements (from the generated package)."""
    text = resources.files(llorch_contracts).joinpath("openapi", f"{service}.json").read_text("utf-8")
    loaded = json.loads(text)
    assert isinstance(loaded, dict)
    return loaded


def api_version(service: str) -> str:
    """`info.version` of the service's contract: the single source of `api_version`."""
    info = contract_document(service)["info"]
    assert isinstance(info, dict)
    return str(info["version"])


@dataclass(frozen=True, slots=True)
class BuildInfo:
    """Where the running code came from; fields are None when unknown."""

    commit: str | None
    time: str | None


def read_build_info(source_dir: Path) -> BuildInfo:
    """Ask git about the checkout the service runs from (called once at start-up, not per request)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(source_dir), "log", "-1", "--format=%H %ct"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return BuildInfo(None, None)
    parts = done.stdout.split()
    if done.returncode != 0 or len(parts) != 2:
        return BuildInfo(None, None)
    stamp = datetime.fromtimestamp(int(parts[1]), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return BuildInfo(parts[0], stamp)
