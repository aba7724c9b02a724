"""The pool-managerd app factory: importing this module has no side effects."""

from __future__ import annotations

import time
from collections.abc import Callable

from litestar import Litestar

from llorch_contracts.config import LlorchConfig
from llorch_http import create_service_app

from ._health import health


def create_app(config: LlorchConfig, clock: Callable[[], float] = time.monotonic) -> Litestar:
    """Wire pool-managerd onto its config; `clock` is injectable for tests."""
    started = clock()

    def uptime_ms() -> int:
        return int((clock() - started) * 1000)

    return create_service_app([health], provides={"config": config, "uptime_ms": uptime_ms})
