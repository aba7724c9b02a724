"""Helpers shared by llama-orch's test suites."""

from ._daemon import admit, orchestratord_process
from ._engine import engine_install, tiny_model
from ._openapi import assert_conforms, contract
from ._pool_view import FakePoolManager, pool_status, replica_status
from ._server import free_port, serving
from ._sse import SseEvent, parse_sse
from ._stack import Stack, running_stack, stack_config

__all__ = [
    "FakePoolManager",
    "SseEvent",
    "Stack",
    "admit",
    "assert_conforms",
    "contract",
    "engine_install",
    "free_port",
    "orchestratord_process",
    "parse_sse",
    "pool_status",
    "replica_status",
    "running_stack",
    "serving",
    "stack_config",
    "tiny_model",
]
