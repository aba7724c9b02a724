"""Helpers shared by llama-orch's test suites."""

from ._openapi import assert_conforms, contract
from ._sse import SseEvent, parse_sse

__all__ = ["SseEvent", "assert_conforms", "contract", "parse_sse"]
