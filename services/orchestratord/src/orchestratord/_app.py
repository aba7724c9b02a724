"""The orchestratord app factory: importing this module has no side effects."""

from __future__ import annotations

from litestar import Litestar

from llorch_contracts.config import LlorchConfig
from llorch_http import BuildInfo, create_service_app

from ._meta import MetaController


def create_app(config: LlorchConfig, build: BuildInfo | None = None) -> Litestar:
    """Wire orchestratord onto its config; `build` says which code is running (None: unknown)."""
    provides = {"config": config, "build": build or BuildInfo(None, None)}
    return create_service_app([MetaController], provides=provides)
