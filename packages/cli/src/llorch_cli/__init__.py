"""The `llorch` command line: run the stack and talk to it."""

from ._models import run_make_tiny
from ._up import run_up

__all__ = ["run_make_tiny", "run_up"]
