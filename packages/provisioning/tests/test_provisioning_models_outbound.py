"""The outbound policy gate: allow and deny decisions, host patterns, and their audit records."""

from __future__ import annotations

import json
import logging

import msgspec
import pytest

from llorch_contracts.config import PolicyConfig
from llorch_provisioning import (
    OutboundDecision,
    OutboundDeniedError,
    OutboundGate,
    OutboundPurpose,
)

MODEL = OutboundPurpose.MODEL_FETCH


class Audit:
    """Collects every decision the gate reports."""

    def __init__(self) -> None:
        self.records: list[OutboundDecision] = []

    def __call__(self, decision: OutboundDecision) -> None:
        self.records.append(decision)


def _gate(hosts: list[str], *, allow: bool = True) -> tuple[OutboundGate, Audit]:
    audit = Audit()
    return OutboundGate(allow=allow, allowed_hosts=hosts, audit=audit), audit


@pytest.mark.req("POL-1002")
@pytest.mark.parametrize(
    ("pattern", "url", "allowed"),
    [
        ("*", "https://anything.example/m.gguf", True),
        ("huggingface.co", "https://huggingface.co/org/repo/resolve/main/m.gguf", True),
        ("huggingface.co", "https://HuggingFace.co./x", True),
        ("huggingface.co", "https://cdn.huggingface.co/x", False),
        ("huggingface.co", "https://huggingface.co.evil.example/x", False),
        ("*.hf.co", "https://cas-bridge.xethub.hf.co/x", True),
        ("*.hf.co", "https://hf.co/x", False),
        ("*.hf.co", "https://evilhf.co/x", False),
        ("mirror.example:8443", "https://mirror.example:8443/x", True),
        ("mirror.example:8443", "https://mirror.example/x", False),
        ("mirror.example:443", "https://mirror.example/x", True),
        ("mirror.example", "https://mirror.example:8443/x", True),
        ("10.0.0.5", "https://10.0.0.5/x", True),
        ("2001:db8::5", "https://[2001:db8::5]/x", True),
        ("[2001:db8::5]", "https://[2001:db8::5]:8443/x", True),
    ],
)
def test_allowed_hosts_patterns(pattern: str, url: str, allowed: bool) -> None:
    gate, audit = _gate([pattern])
    decision = gate.decide(url, MODEL)
    assert (decision.decision == "allow") is allowed
    assert audit.records == [decision]
    if allowed:
        assert decision.rule == f"allowed_hosts:{pattern}"
    else:
        assert decision.rule == "policy.outbound.allowed_hosts"


@pytest.mark.req("POL-1020")
def test_denial_names_url_rule_and_setting_without_secrets() -> None:
    gate, audit = _gate(["huggingface.co"])
    with pytest.raises(OutboundDeniedError) as info:
        gate.check("https://user:pw@files.example/m.gguf?token=s3cr3t#frag", MODEL)
    message = str(info.value)
    assert "https://files.example/m.gguf" in message
    assert "policy.outbound.allowed_hosts" in message
    assert "add 'files.example'" in message
    for secret in ("user", "pw@", "s3cr3t", "frag"):
        assert secret not in message
    assert info.value.url == "https://files.example/m.gguf"
    assert info.value.rule == "policy.outbound.allowed_hosts"
    [record] = audit.records
    assert (record.decision, record.host, record.url) == (
        "deny",
        "files.example",
        "https://files.example/m.gguf",
    )


def test_switched_off_denies_everything_and_says_how_to_switch_on() -> None:
    gate, audit = _gate(["*"], allow=False)
    with pytest.raises(OutboundDeniedError, match=r"set policy\.outbound\.allow: true") as info:
        gate.check("https://huggingface.co/x", MODEL)
    assert info.value.rule == "policy.outbound.allow"
    assert [r.decision for r in audit.records] == ["deny"]


@pytest.mark.req("POL-1003")
@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9000/m.gguf", "http://127.8.9.10/m", "http://[::1]:80/m", "http://localhost/m"]
)
def test_loopback_is_not_subject_to_the_policy(url: str) -> None:
    gate, audit = _gate([], allow=False)
    gate.check(url, MODEL)
    [record] = audit.records
    assert (record.decision, record.rule) == ("allow", "loopback")


@pytest.mark.req("POL-1005")
def test_downloads_must_use_https_but_engine_api_traffic_need_not() -> None:
    gate, _ = _gate(["*"])
    with pytest.raises(OutboundDeniedError, match="must use https") as info:
        gate.check("http://mirror.example/m.gguf", MODEL)
    assert info.value.rule == "https-only"
    gate.check("http://engine.lan:8080/v1/completions", OutboundPurpose.ENGINE_API)


@pytest.mark.req("POL-1006")
def test_binary_downloads_and_package_installs_need_their_own_switch_off_by_default() -> None:
    outbound_on = msgspec.convert({"outbound": {"allow": True, "allowed_hosts": ["*"]}}, PolicyConfig)
    gate = OutboundGate.from_policy(outbound_on, audit=Audit())
    for purpose, key in [
        (OutboundPurpose.ENGINE_BINARY, "policy.allow_binary_downloads"),
        (OutboundPurpose.PACKAGE, "policy.allow_package_installs"),
    ]:
        with pytest.raises(OutboundDeniedError, match=rf"set {key}: true") as info:
            gate.check("https://github.com/ggml-org/llama.cpp/releases/x.zip", purpose)
        assert info.value.rule == key
    gate.check("https://github.com/ggml-org/llama.cpp/archive/x.tar.gz", OutboundPurpose.ENGINE_SOURCE)

    policy = msgspec.convert(
        {"allow_binary_downloads": True, "outbound": {"allow": True, "allowed_hosts": ["github.com"]}},
        PolicyConfig,
    )
    OutboundGate.from_policy(policy, audit=Audit()).check(
        "https://github.com/x.zip", OutboundPurpose.ENGINE_BINARY
    )


def test_gate_is_built_from_the_config_policy_section() -> None:
    audit = Audit()
    policy = msgspec.convert({"outbound": {"allow": True, "allowed_hosts": ["*.hf.co"]}}, PolicyConfig)
    gate = OutboundGate.from_policy(policy, audit=audit)
    gate.check("https://cdn.hf.co/x", MODEL)
    with pytest.raises(OutboundDeniedError):
        gate.check("https://pypi.org/simple", MODEL)
    assert [r.decision for r in audit.records] == ["allow", "deny"]


@pytest.mark.req("POL-1021")
def test_default_audit_writes_one_json_line_per_decision(caplog: pytest.LogCaptureFixture) -> None:
    gate = OutboundGate(allow=True, allowed_hosts=["huggingface.co"])
    with caplog.at_level(logging.INFO, logger="llorch.outbound"):
        gate.check(
            "https://huggingface.co/a/b/resolve/main/m.gguf?sig=zzz",
            MODEL,
            pool_id="p1",
            correlation_id="c-1",
        )
        with pytest.raises(OutboundDeniedError):
            gate.check("https://evil.example/m.gguf", MODEL, pool_id="p1", correlation_id="c-2")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "llorch.outbound"]
    assert lines == [
        {
            "event": "outbound_policy",
            "decision": "allow",
            "host": "huggingface.co",
            "url": "https://huggingface.co/a/b/resolve/main/m.gguf",
            "purpose": "model_fetch",
            "pool_id": "p1",
            "rule": "allowed_hosts:huggingface.co",
            "reason": "host is allowed",
            "correlation_id": "c-1",
        },
        {
            "event": "outbound_policy",
            "decision": "deny",
            "host": "evil.example",
            "url": "https://evil.example/m.gguf",
            "purpose": "model_fetch",
            "pool_id": "p1",
            "rule": "policy.outbound.allowed_hosts",
            "reason": "host 'evil.example' matches no entry of policy.outbound.allowed_hosts",
            "correlation_id": "c-2",
        },
    ]
    assert "zzz" not in caplog.text


def test_url_without_host_is_denied() -> None:
    gate, audit = _gate(["*"])
    with pytest.raises(OutboundDeniedError, match="no host"):
        gate.check("https:///m.gguf", MODEL)
    assert audit.records[0].rule == "url"


@pytest.mark.req("ORCH-3206")
def test_outbound_fetching_is_off_by_default() -> None:
    gate = OutboundGate.from_policy(PolicyConfig(), audit=Audit())
    with pytest.raises(OutboundDeniedError, match=r"policy\.outbound\.allow"):
        gate.check("https://huggingface.co/org/repo/resolve/main/m.gguf", MODEL)
