"""The Litestar settings both services share."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from litestar import Litestar
from litestar.di import Provide
from litestar.types import ControllerRouterHandler

from ._auth import AuthPolicy
from ._bodies import MAX_BODY_BYTES, check_json_body
from ._correlation import add_correlation_header
from ._errors import exception_handlers


def create_service_app(
    route_handlers: Sequence[ControllerRouterHandler],
    *,
    provides: Mapping[str, object] | None = None,
    auth: AuthPolicy | None = None,
    lifespan: Sequence[Callable[[Litestar], AbstractAsyncContextManager[Any]]] = (),
    debug: bool = False,
) -> Litestar:
    """A Litestar app with our error envelope and correlation ids.

    `provides` maps dependency names to ready-made objects (config, clock, ...)
    that handlers receive by parameter name; `auth` guards every route. Litestar's generated OpenAPI is
    disabled: the hand-written contract in contracts/openapi/ is the only API
    description we publish.
    """
    dependencies = {
        name: Provide(_constant(value), use_cache=True, sync_to_thread=False)
        for name, value in (provides or {}).items()
    }
    return Litestar(
        route_handlers=list(route_handlers),
        dependencies=dependencies,
        before_send=[add_correlation_header],
        # OC-CTRL-2176..2179, OC-POOL-3198: bodies are bounded and checked before any decoder runs.
        before_request=check_json_body,
        request_max_body_size=MAX_BODY_BYTES,
        guards=[(auth or AuthPolicy(token=None)).guard],
        exception_handlers=exception_handlers(),
        lifespan=list(lifespan),
        openapi_config=None,
        # Our services configure logging once in main(); Litestar must not replace the root handlers.
        logging_config=None,
        debug=debug,
    )


def _constant(value: object) -> Callable[[], object]:
    def provide() -> object:
        return value

    return provide
