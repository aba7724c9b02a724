"""orchestratord: admission, queue, dispatch and SSE streams for llama-orch (HTTP: /v2/...)."""

from ._app import create_app

__all__ = ["create_app"]
