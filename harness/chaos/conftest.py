"""Fixtures of the chaos suite: a real stack per scenario, torn down with nothing left behind."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from harness.chaos._stack import ChaosStack, StackShape, chaos_stack
from llorch_provisioning import EngineInstall


@pytest.fixture
def start_stack(tmp_path: Path, llamacpp: EngineInstall) -> Iterator[Callable[[StackShape], ChaosStack]]:
    """Starts the stack a scenario asks for (the engine cache is built first by `llamacpp`)."""
    with ExitStack() as stacks:

        def start(shape: StackShape) -> ChaosStack:
            return stacks.enter_context(chaos_stack(shape, tmp_path))

        yield start
