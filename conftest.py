"""Fixtures every suite may use: the real llama-server and the generated tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest

from llorch_provisioning import EngineInstall
from llorch_testkit import engine_install, tiny_model


@pytest.fixture(scope="session")
def llamacpp() -> EngineInstall:
    """The real llama-server, built from the pinned sdist or reused from the cache."""
    return engine_install()


@pytest.fixture(scope="session")
def tiny_model_path(llamacpp: EngineInstall, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The deterministic tiny llama GGUF (seed 0)."""
    return tiny_model(llamacpp, tmp_path_factory.mktemp("models"))
