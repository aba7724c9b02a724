"""Run a service app under uvicorn on its configured bind, refusing unsafe binds (AUTH-1002, AUTH-1101)."""

from __future__ import annotations

import logging
import sys

import uvicorn
from litestar import Litestar

from llorch_config import bind_host_port, bind_refusal

from ._auth import AuthPolicy
from ._background import FatalExit

MIN_TOKEN_CHARS = 16
# uvicorn otherwise waits for every open response on shutdown, and an SSE stream can stay open forever.
GRACEFUL_SHUTDOWN_S = 5
log = logging.getLogger("llorch.serve")


def serve(app: Litestar, bind: str, *, auth: AuthPolicy, token_env: str) -> int:
    """Serve until interrupted; returns a process exit code (2 when the bind or token is refused).

    When a background loop died, the app's `state.fatal` (a `FatalExit`) holds the non-zero code.
    """
    environ = {token_env: auth.token} if auth.token else {}
    refusal = bind_refusal(bind, token_env, environ)
    if refusal is None and auth.token is not None and len(auth.token) < MIN_TOKEN_CHARS:
        refusal = f"the token in {token_env} is shorter than {MIN_TOKEN_CHARS} characters"
    if refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    log.info("listening on %s; auth: %s", bind, auth.mode())
    host, port = bind_host_port(bind)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            # The auth guard judges the TCP peer; uvicorn would otherwise rewrite it from
            # X-Forwarded-For for peers in FORWARDED_ALLOW_IPS, read from the environment (AUTH-1108).
            proxy_headers=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
    )
    fatal = app.state.get("fatal")
    if isinstance(fatal, FatalExit):
        fatal.stop = lambda: setattr(server, "should_exit", True)
    server.run()
    if isinstance(fatal, FatalExit) and fatal.code:
        print(f"error: {fatal.reason}; exiting with status {fatal.code}", file=sys.stderr)
        return fatal.code
    return 0
