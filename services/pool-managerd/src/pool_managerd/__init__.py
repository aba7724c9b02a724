"""pool-managerd: provisions, preloads and supervises engine replicas for llama-orch (HTTP: /v2/...)."""

from ._app import create_app

__all__ = ["create_app"]
