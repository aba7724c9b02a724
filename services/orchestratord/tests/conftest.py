"""Keep orchestratord's durable state out of the user's home during tests.

`create_app` opens the catalog, artifact stores and task journal at the
configured roots (`~/.local/...`) unless a test passes `state_dir`; pointing
HOME at a temporary directory keeps every test from writing there, and from
recovering another run's journal (or that of a stack `xtask up` runs beside
the tests). The real engine's build cache stays found through XDG_CACHE_HOME.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    monkeypatch.setenv("XDG_CACHE_HOME", cache)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
