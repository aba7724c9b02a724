"""Minimal auth hooks (AUTH-1001..1008, AUTH-1100..1106): one static bearer token, no roles.

`AuthPolicy.identity_for` is a pure decision over the request's method, path,
headers and peer, so every rule is testable without a server; `guard` applies
it to every route of a service.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from llorch_config import is_loopback
from llorch_contracts.api import ErrorKind
from llorch_contracts.config import AuthConfig

from ._errors import ApiError

MAX_HEADER_BYTES = 8192
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="llama-orch"'}
# Any of these means the loopback peer relays someone else's request (AUTH-1107).
_FORWARDING = ("forwarded", "x-forwarded-for", "x-real-ip")


def fingerprint(token: str) -> str:
    """fp6: the first 6 hex characters of the token's SHA-256, the only form of it ever logged."""
    return hashlib.sha256(token.encode()).hexdigest()[:6]


def _refuse(kind: ErrorKind, message: str) -> ApiError:
    return ApiError(kind, message, headers=dict(_CHALLENGE))


@dataclass(frozen=True)
class AuthPolicy:
    """Who may call: everyone on loopback without a token, otherwise holders of the one token."""

    token: str | None
    optional: bool = False
    trust_proxy: bool = False
    exempt: frozenset[tuple[str, str]] = field(default_factory=frozenset)

    @classmethod
    def from_config(cls, auth: AuthConfig, token: str | None, *, exempt: set[tuple[str, str]]) -> AuthPolicy:
        """The policy of the config's `auth` section, with the token read from its environment variable."""
        return cls(
            token=token, optional=auth.optional, trust_proxy=auth.trust_proxy_auth, exempt=frozenset(exempt)
        )

    def mode(self) -> str:
        """The auth mode in force, for the start-up log (AUTH-1106)."""
        if self.token is None:
            return "open (loopback only, no token configured)"
        extras = [
            *(["loopback callers exempt"] if self.optional else []),
            *(["trusted local proxy"] if self.trust_proxy else []),
        ]
        suffix = f", {', '.join(extras)}" if extras else ""
        return f"token required (fp6 {fingerprint(self.token)}{suffix})"

    def identity_for(self, method: str, path: str, headers: Mapping[str, str], peer: str | None) -> str:
        """`localhost`, `proxy`, `anonymous` (exempt path) or `token:<fp6>`; else raises the 401 envelope."""
        presented = headers.get("authorization")
        if presented is not None:
            return self._check(presented)  # a presented token is always checked (AUTH-1104)
        if self.token is None:
            return "localhost"
        if (method, path) in self.exempt:
            return "anonymous"
        loopback = peer is not None and is_loopback(peer)
        forwarded = is_forwarded(headers)
        # `peer` is the TCP peer (uvicorn's proxy_headers is off, AUTH-1108): proxy headers only ever
        # grant access from the trusted proxy, a loopback peer under trust_proxy_auth (AUTH-1109).
        if self.trust_proxy and loopback and forwarded:
            return "proxy"
        if self.optional and loopback and not forwarded:
            return "localhost"
        raise _refuse(ErrorKind.MISSING_TOKEN, "this service requires `Authorization: Bearer <token>`")

    def _check(self, presented: str) -> str:
        if len(presented) > MAX_HEADER_BYTES or any(ord(c) < 32 or ord(c) == 127 for c in presented):
            raise _refuse(ErrorKind.BAD_TOKEN, "the Authorization header is malformed")
        scheme, _, credential = presented.partition(" ")
        credential = credential.strip()
        if scheme != "Bearer" or not credential:
            raise _refuse(ErrorKind.MISSING_TOKEN, "expected `Authorization: Bearer <token>`")
        if self.token is None:
            return "localhost"  # nothing to check against: the service runs open on loopback
        if not hmac.compare_digest(credential.encode(), self.token.encode()):  # timing-safe (AUTH-1007)
            raise _refuse(ErrorKind.BAD_TOKEN, "the bearer token does not match")
        return f"token:{fingerprint(self.token)}"

    def guard(self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        """Litestar guard: decide, and keep the caller's identity in the request state for logs."""
        peer = connection.client.host if connection.client else None
        method = str(connection.scope.get("method", "GET"))
        identity = self.identity_for(method, connection.url.path, connection.headers, peer)
        connection.scope.setdefault("state", {})["identity"] = identity


def is_forwarded(headers: Mapping[str, str]) -> bool:
    """Whether the request carries any proxy header (`Forwarded`, `X-Forwarded-For`, `X-Real-IP`)."""
    return any(name in headers for name in _FORWARDING)


def identity_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The identity the guard admitted this request as (AUTH-1008)."""
    state = connection.scope.get("state") or {}
    return str(state.get("identity", "localhost"))
