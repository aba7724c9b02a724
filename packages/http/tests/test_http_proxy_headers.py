"""Proxy headers are trusted only from the configured proxy (AUTH-1107..1109)."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from litestar import Request, get

from llorch_contracts.api import ErrorKind
from llorch_http import ApiError, AuthPolicy, FatalExit, create_service_app, identity_of, serve
from llorch_testkit import free_port

TOKEN = "s3cret-token-0123456789"
PROXY_HEADERS = [
    {"x-real-ip": "203.0.113.7"},
    {"x-forwarded-for": "203.0.113.7"},
    {"forwarded": "for=203.0.113.7"},
]


def _kind(policy: AuthPolicy, headers: dict[str, str], peer: str) -> ErrorKind | str:
    try:
        return policy.identity_for("GET", "/v2/pools", headers, peer)
    except ApiError as error:
        return error.kind


@pytest.mark.req("AUTH-1107", "AUTH-1004")
@pytest.mark.parametrize("headers", PROXY_HEADERS)
def test_a_loopback_request_with_any_proxy_header_is_not_local(headers: dict[str, str]) -> None:
    policy = AuthPolicy(token=TOKEN, optional=True)
    assert _kind(policy, {}, "127.0.0.1") == "localhost"
    assert _kind(policy, headers, "127.0.0.1") == ErrorKind.MISSING_TOKEN


@pytest.mark.req("AUTH-1109", "AUTH-1006")
@pytest.mark.parametrize("headers", PROXY_HEADERS)
def test_proxy_headers_grant_nothing_unless_the_peer_is_the_trusted_proxy(headers: dict[str, str]) -> None:
    trusted = AuthPolicy(token=TOKEN, trust_proxy=True)
    assert _kind(trusted, headers, "127.0.0.1") == "proxy"
    # The same headers from a LAN peer, or from loopback without trust_proxy_auth, open nothing.
    assert _kind(trusted, headers, "192.168.1.9") == ErrorKind.MISSING_TOKEN
    for policy in (AuthPolicy(token=TOKEN), AuthPolicy(token=TOKEN, optional=True)):
        assert _kind(policy, headers, "127.0.0.1") == ErrorKind.MISSING_TOKEN
    # Forged loopback addresses in the headers do not make a remote peer local either.
    forged = {"x-forwarded-for": "127.0.0.1", "x-real-ip": "127.0.0.1"}
    both = AuthPolicy(token=TOKEN, optional=True, trust_proxy=True)
    assert _kind(both, forged, "10.0.0.5") == ErrorKind.MISSING_TOKEN


@get("/whoami", sync_to_thread=False)
def whoami(request: Request[Any, Any, Any]) -> dict[str, str]:
    client = request.client.host if request.client else ""
    return {"identity": identity_of(request), "peer": client}


@pytest.mark.req("AUTH-1108")
def test_the_server_never_rewrites_the_peer_from_proxy_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    """uvicorn would take X-Forwarded-For as the client for peers in FORWARDED_ALLOW_IPS ('*' here)."""
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    app = create_service_app([whoami], auth=AuthPolicy(token=TOKEN, trust_proxy=True))
    fatal = FatalExit()
    app.state["fatal"] = fatal
    port = free_port()
    codes: list[int] = []
    bind = f"127.0.0.1:{port}"
    server = threading.Thread(
        target=lambda: codes.append(serve(app, bind, auth=AuthPolicy(token=TOKEN), token_env="T"))
    )
    server.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            answer = _first_answer(client, {"x-forwarded-for": "203.0.113.7"})
        # With the rewrite the guard would see 203.0.113.7, a remote peer, and answer 401.
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"identity": "proxy", "peer": "127.0.0.1"}
    finally:
        assert fatal.stop is not None
        fatal.stop()
        server.join(timeout=30)
    assert codes == [0]


def _first_answer(client: httpx.Client, headers: dict[str, str]) -> httpx.Response:
    """The answer once the server listens (connection refusals before that are not answers)."""
    for _ in range(600):
        try:
            return client.get("/whoami", headers=headers)
        except httpx.ConnectError:
            threading.Event().wait(0.05)
    raise AssertionError("the server did not start listening within 30 s")
