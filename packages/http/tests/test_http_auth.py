"""The auth decision (AUTH-1001..1008, AUTH-1100..1106) as a pure function of request facts."""

from __future__ import annotations

import hashlib

import pytest

from llorch_contracts.api import ErrorKind
from llorch_http import ApiError, AuthPolicy, fingerprint

TOKEN = "s3cret-token-0123456789"
FP6 = hashlib.sha256(TOKEN.encode()).hexdigest()[:6]
BEARER = {"authorization": f"Bearer {TOKEN}"}


def refused(policy: AuthPolicy, headers: dict[str, str], peer: str | None = "10.0.0.5") -> ErrorKind:
    with pytest.raises(ApiError) as caught:
        policy.identity_for("GET", "/v2/tasks/x", headers, peer)
    assert caught.value.status_code == 401
    assert caught.value.headers["WWW-Authenticate"].startswith("Bearer")
    assert caught.value.retriable is False
    return caught.value.kind


@pytest.mark.req("AUTH-1102")
def test_without_a_token_everyone_is_localhost() -> None:
    assert AuthPolicy(token=None).identity_for("POST", "/v2/tasks", {}, "127.0.0.1") == "localhost"


@pytest.mark.req("AUTH-1001", "AUTH-1008")
def test_the_right_token_is_identified_by_its_fingerprint_only() -> None:
    identity = AuthPolicy(token=TOKEN).identity_for("GET", "/v2/pools", BEARER, "10.0.0.5")
    assert identity == f"token:{FP6}" == f"token:{fingerprint(TOKEN)}"
    assert TOKEN not in identity


@pytest.mark.req("AUTH-1100")
@pytest.mark.parametrize(
    ("headers", "kind"),
    [
        ({}, ErrorKind.MISSING_TOKEN),
        ({"authorization": ""}, ErrorKind.MISSING_TOKEN),
        ({"authorization": "Basic abc"}, ErrorKind.MISSING_TOKEN),
        ({"authorization": "Bearer "}, ErrorKind.MISSING_TOKEN),
        ({"authorization": "Bearer wrong-token-0123456789"}, ErrorKind.BAD_TOKEN),
    ],
)
def test_missing_and_wrong_tokens_are_typed_401s(headers: dict[str, str], kind: ErrorKind) -> None:
    assert refused(AuthPolicy(token=TOKEN), headers) == kind


@pytest.mark.req("AUTH-1105")
def test_oversized_or_control_character_headers_are_bad_tokens() -> None:
    policy = AuthPolicy(token=TOKEN)
    assert refused(policy, {"authorization": "Bearer " + "x" * 9000}) == ErrorKind.BAD_TOKEN
    assert refused(policy, {"authorization": f"Bearer {TOKEN}\x00"}) == ErrorKind.BAD_TOKEN


@pytest.mark.req("AUTH-1103")
def test_only_the_exempt_paths_skip_the_token() -> None:
    policy = AuthPolicy(token=TOKEN, exempt=frozenset({("GET", "/metrics")}))
    assert policy.identity_for("GET", "/metrics", {}, "10.0.0.5") == "anonymous"
    assert refused(policy, {}) == ErrorKind.MISSING_TOKEN


@pytest.mark.req("AUTH-1004")
def test_optional_exempts_loopback_callers_but_not_forwarded_or_remote_ones() -> None:
    policy = AuthPolicy(token=TOKEN, optional=True)
    assert policy.identity_for("GET", "/v2/pools", {}, "127.0.0.1") == "localhost"
    assert refused(policy, {}, peer="192.168.1.9") == ErrorKind.MISSING_TOKEN
    assert refused(policy, {"x-forwarded-for": "203.0.113.7"}, peer="127.0.0.1") == ErrorKind.MISSING_TOKEN


@pytest.mark.req("AUTH-1006")
def test_a_trusted_local_proxy_is_admitted_as_proxy() -> None:
    policy = AuthPolicy(token=TOKEN, trust_proxy=True)
    assert policy.identity_for("GET", "/v2/pools", {"forwarded": "for=203.0.113.7"}, "127.0.0.1") == "proxy"
    assert refused(policy, {"forwarded": "for=203.0.113.7"}, peer="10.0.0.5") == ErrorKind.MISSING_TOKEN


@pytest.mark.req("AUTH-1104")
def test_a_presented_token_is_checked_even_where_none_is_needed() -> None:
    policy = AuthPolicy(token=TOKEN, optional=True)
    bad = {"authorization": "Bearer wrong-token-0123456789"}
    assert refused(policy, bad, peer="127.0.0.1") == ErrorKind.BAD_TOKEN


@pytest.mark.req("AUTH-1106")
def test_the_mode_names_the_fingerprint_never_the_token() -> None:
    mode = AuthPolicy(token=TOKEN, optional=True).mode()
    assert FP6 in mode
    assert TOKEN not in mode
    assert "open" in AuthPolicy(token=None).mode()


@pytest.mark.req("AUTH-1101", "AUTH-1002")
def test_serve_refuses_a_short_token_and_an_open_lan_bind(capsys: pytest.CaptureFixture[str]) -> None:
    from litestar import Litestar

    from llorch_http import serve

    app = Litestar(route_handlers=[], logging_config=None)
    assert serve(app, "127.0.0.1:1", auth=AuthPolicy(token="short"), token_env="T") == 2
    assert "shorter than 16" in capsys.readouterr().err
    assert serve(app, "0.0.0.0:1", auth=AuthPolicy(token=None), token_env="LLORCH_API_TOKEN") == 2
    assert "LLORCH_API_TOKEN" in capsys.readouterr().err
