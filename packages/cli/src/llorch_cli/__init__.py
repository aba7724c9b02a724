"""The `llorch` command line: run the stack and talk to it."""

from ._up import run_up

__all__ = ["run_up"]
