"""Helpers shared by llama-orch's test suites."""

from ._engine import engine_install, tiny_model
from ._openapi import assert_conforms, contract
from ._server import free_port, serving
from ._sse import SseEvent, parse_sse

__all__ = [
    "SseEvent",
    "assert_conforms",
    "contract",
    "engine_install",
    "free_port",
    "parse_sse",
    "serving",
    "tiny_model",
]
