"""Keep orchestratord's durable state out of the user's home during tests.

`create_app` opens the catalog and artifact stores at the configured roots
(`~/.local/share/llama-orch/...`) unless a test passes `state_dir`; pointing
HOME at a temporary directory keeps the tests that do not from writing there.
Tests on the real engine keep HOME: its build cache is found through it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

_REAL_ENGINE_FIXTURES = {"llamacpp", "tiny_model_path"}


@pytest.fixture(autouse=True)
def _isolated_home(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if _REAL_ENGINE_FIXTURES.isdisjoint(request.fixturenames):
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
