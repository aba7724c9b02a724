"""Run a service app under uvicorn on its configured bind, refusing unsafe binds (AUTH-1002)."""

from __future__ import annotations

import os
import sys

import uvicorn
from litestar import Litestar

from llorch_config import bind_host_port, bind_refusal


def serve(app: Litestar, bind: str, token_env: str) -> int:
    """Serve until interrupted; returns a process exit code."""
    refusal = bind_refusal(bind, token_env, os.environ)
    if refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    host, port = bind_host_port(bind)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, lifespan="on")
    return 0
