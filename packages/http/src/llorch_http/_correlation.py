"""X-Correlation-Id on every response, errors, 204s and SSE streams included (OC-CTRL-2052).

A Litestar `before_send` hook rather than a middleware: hooks wrap the app's
`send` itself, so they also see the 404 and 405 responses the router produces
before any middleware runs.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from litestar.types import Message, Scope

HEADER = "x-correlation-id"
_HEADER_BYTES = HEADER.encode()
_STATE_KEY = "llorch_correlation_id"
# Echo only what is safe to put back in a header and in logs (the contract's CorrelationId pattern).
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def correlation_id_of(scope: Scope) -> str:
    """The request's correlation id: the client's when acceptable, else a new UUIDv4; stable per request."""
    state: dict[str, Any] = scope.setdefault("state", {})
    found = state.get(_STATE_KEY)
    if isinstance(found, str):
        return found
    chosen = None
    for name, value in scope.get("headers", []):
        if name == _HEADER_BYTES:
            text = value.decode("latin-1")
            chosen = text if _ACCEPTABLE.match(text) else None
            break
    state[_STATE_KEY] = chosen or str(uuid.uuid4())
    return str(state[_STATE_KEY])


async def add_correlation_header(message: Message, scope: Scope) -> None:
    """before_send hook: stamp the correlation id on the response start."""
    if message["type"] != "http.response.start":
        return
    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != _HEADER_BYTES]
    headers.append((_HEADER_BYTES, correlation_id_of(scope).encode("latin-1")))
    message["headers"] = headers
