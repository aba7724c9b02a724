"""The outbound policy hook: one decision, with an audit record, before every outbound connection.

``OutboundGate`` is the default hook (ORCH-3080, POL-1002): it allows a URL only when the
global switch is on, the URL is HTTPS (for downloads) and its host matches
``policy.outbound.allowed_hosts``. Loopback hosts are not outbound connections and are
always allowed (POL-1003). Anything else can stand in for it through ``OutboundHook``.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol

from llorch_contracts.config import PolicyConfig

from ._errors import OutboundDeniedError
from ._urls import is_loopback_host
from ._urls import redact_url as redact_url  # noqa: PLC0414 - explicit re-export for callers

_LOG = logging.getLogger("llorch.outbound")
_DEFAULT_PORTS = {"https": 443, "http": 80}


class OutboundPurpose(StrEnum):
    """Why a connection is made (POL-1001)."""

    MODEL_FETCH = "model_fetch"
    ENGINE_SOURCE = "engine_source"
    ENGINE_BINARY = "engine_binary"
    PACKAGE = "package"
    CONTAINER_IMAGE = "container_image"
    ENGINE_API = "engine_api"


@dataclass(frozen=True, kw_only=True)
class OutboundDecision:
    """One allow-or-deny decision, as written to the audit log (POL-1021).

    ``url`` has no credentials, query string or fragment: those may carry secrets
    (signed URLs, tokens), and the audit log is meant to be shared.
    """

    decision: Literal["allow", "deny"]
    host: str
    url: str
    purpose: str
    rule: str
    reason: str
    setting: str | None = None
    pool_id: str | None = None
    correlation_id: str | None = None

    def log_fields(self) -> dict[str, str | None]:
        """The audit record as one flat JSON-ready mapping."""
        return {
            "event": "outbound_policy",
            "decision": self.decision,
            "host": self.host,
            "url": self.url,
            "purpose": self.purpose,
            "pool_id": self.pool_id,
            "rule": self.rule,
            "reason": self.reason,
            "correlation_id": self.correlation_id,
        }


OutboundAudit = Callable[[OutboundDecision], None]


def log_outbound_decision(decision: OutboundDecision) -> None:
    """The default audit sink: one JSON line on the ``llorch.outbound`` logger."""
    _LOG.info("%s", json.dumps(decision.log_fields(), sort_keys=True))


class OutboundHook(Protocol):
    """What callers need from a policy hook, so the services can plug in another (POL-1001)."""

    def check(
        self,
        url: str,
        purpose: OutboundPurpose,
        *,
        pool_id: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        """Return when ``url`` may be connected to; raise ``OutboundDeniedError`` otherwise."""
        ...


def _host_matches(pattern: str, host: str, port: int | None) -> bool:
    """Match one ``allowed_hosts`` entry: ``*``, ``*.suffix``, ``host`` or ``host:port``."""
    pattern = pattern.lower().rstrip(".")
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        # A sub-domain pattern does not match the bare domain: "*.hf.co" is not "hf.co".
        return host.endswith(pattern[1:])
    name, sep, wanted_port = pattern.rpartition(":")
    if sep and wanted_port.isdigit() and ":" not in name:  # "::1" is an address, not host ":" port 1
        return host == name and port == int(wanted_port)
    return host == pattern.strip("[]")


@dataclass(frozen=True, kw_only=True)
class _Verdict:
    allowed: bool
    rule: str
    reason: str
    setting: str | None = None


class OutboundGate:
    """The default outbound policy hook, built from ``policy`` in the configuration.

    Every decision, allowed or denied, is passed to ``audit`` before ``check`` returns or
    raises, so the audit log shows what was attempted even when it was refused.
    """

    def __init__(
        self,
        *,
        allow: bool,
        allowed_hosts: Sequence[str],
        allow_binary_downloads: bool = False,
        allow_package_installs: bool = False,
        audit: OutboundAudit = log_outbound_decision,
    ) -> None:
        self._allow = allow
        self._allowed_hosts = tuple(allowed_hosts)
        self._allow_binary_downloads = allow_binary_downloads
        self._allow_package_installs = allow_package_installs
        self._audit = audit

    @classmethod
    def from_policy(
        cls, policy: PolicyConfig, *, audit: OutboundAudit = log_outbound_decision
    ) -> OutboundGate:
        """The gate the configuration's ``policy`` section describes."""
        return cls(
            allow=policy.outbound.allow,
            allowed_hosts=policy.outbound.allowed_hosts,
            allow_binary_downloads=policy.allow_binary_downloads,
            allow_package_installs=policy.allow_package_installs,
            audit=audit,
        )

    def _verdict(self, scheme: str, host: str, port: int | None, purpose: OutboundPurpose) -> _Verdict:
        if is_loopback_host(host):
            return _Verdict(allowed=True, rule="loopback", reason="loopback is not outbound (POL-1003)")
        if not self._allow:
            return _Verdict(
                allowed=False,
                rule="policy.outbound.allow",
                reason="outbound connections are switched off",
                setting=f"set policy.outbound.allow: true and list {host!r} in policy.outbound.allowed_hosts",
            )
        if purpose != OutboundPurpose.ENGINE_API and scheme != "https":
            return _Verdict(
                allowed=False,
                rule="https-only",
                reason=f"downloads must use https, not {scheme or 'no scheme'} (POL-1005)",
                setting="use an https:// URL",
            )
        extra = self._purpose_switch(purpose)
        if extra is not None:
            return extra
        for pattern in self._allowed_hosts:
            if _host_matches(pattern, host, port):
                return _Verdict(allowed=True, rule=f"allowed_hosts:{pattern}", reason="host is allowed")
        return _Verdict(
            allowed=False,
            rule="policy.outbound.allowed_hosts",
            reason=f"host {host!r} matches no entry of policy.outbound.allowed_hosts",
            setting=f"add {host!r} (or a '*.' pattern covering it) to policy.outbound.allowed_hosts",
        )

    def _purpose_switch(self, purpose: OutboundPurpose) -> _Verdict | None:
        """POL-1006: binary downloads and package installs need their own switch as well."""
        if purpose == OutboundPurpose.ENGINE_BINARY and not self._allow_binary_downloads:
            key = "policy.allow_binary_downloads"
        elif purpose == OutboundPurpose.PACKAGE and not self._allow_package_installs:
            key = "policy.allow_package_installs"
        else:
            return None
        return _Verdict(allowed=False, rule=key, reason=f"{key} is false", setting=f"set {key}: true")

    def decide(
        self,
        url: str,
        purpose: OutboundPurpose,
        *,
        pool_id: str | None = None,
        correlation_id: str | None = None,
    ) -> OutboundDecision:
        """Decide about ``url`` and audit the decision, without raising."""
        parts = urllib.parse.urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
        try:
            port = parts.port if parts.port is not None else _DEFAULT_PORTS.get(parts.scheme)
        except ValueError:
            port = None
        if host:
            verdict = self._verdict(parts.scheme, host, port, purpose)
        else:
            verdict = _Verdict(allowed=False, rule="url", reason="the URL has no host")
        decision = OutboundDecision(
            decision="allow" if verdict.allowed else "deny",
            host=host,
            url=redact_url(url),
            purpose=str(purpose),
            rule=verdict.rule,
            reason=verdict.reason,
            setting=verdict.setting,
            pool_id=pool_id,
            correlation_id=correlation_id,
        )
        self._audit(decision)
        return decision

    def check(
        self,
        url: str,
        purpose: OutboundPurpose,
        *,
        pool_id: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        """Return when ``url`` may be connected to; otherwise raise ``OutboundDeniedError`` (POL-1020)."""
        decision = self.decide(url, purpose, pool_id=pool_id, correlation_id=correlation_id)
        if decision.decision == "allow":
            return
        hint = f"; to allow it, {decision.setting}" if decision.setting else ""
        raise OutboundDeniedError(
            f"outbound {decision.purpose} connection to {decision.url} denied by {decision.rule}: "
            f"{decision.reason}{hint}",
            url=decision.url,
            purpose=decision.purpose,
            rule=decision.rule,
            setting=decision.setting,
        )
