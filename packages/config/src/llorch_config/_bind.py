"""Bind policy (AUTH-1002): loopback may run without a token, anything else may not."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

MIN_TOKEN_CHARS = 16


def bind_host_port(bind: str) -> tuple[str, int]:
    """Split `host:port` / `[v6]:port` (already validated by the schema pattern)."""
    host, _, port = bind.rpartition(":")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and `localhost` are loopback; every other host is not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def auth_token(token_env: str, environ: Mapping[str, str]) -> str | None:
    """The bearer token from the environment variable the config names, or None when unset/empty."""
    return environ.get(token_env) or None


def bind_refusal(bind: str, token_env: str, environ: Mapping[str, str]) -> str | None:
    """Why a daemon must refuse to start on `bind`, or None when it may start."""
    host, _ = bind_host_port(bind)
    if is_loopback(host):
        return None
    token = auth_token(token_env, environ)
    if token is None:
        return (
            f"refusing to bind {bind} (not loopback) without a token: "
            f"set the environment variable {token_env} to a token of at least {MIN_TOKEN_CHARS} characters, "
            "or bind to 127.0.0.1"
        )
    if len(token) < MIN_TOKEN_CHARS:
        return (
            f"refusing to bind {bind}: the token in {token_env} is shorter than {MIN_TOKEN_CHARS} characters"
        )
    return None
