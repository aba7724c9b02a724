"""``external`` mode: an engine server someone else runs; we only check and keep its URL."""

from __future__ import annotations

import urllib.parse

from msgspec import UNSET

from llorch_contracts.config import EngineKind, ExternalProvisioning

from ._errors import EngineUrlError
from ._provisioned import ProvisionedEngine
from ._urls import redact_url


def provision_external(kind: EngineKind, spec: ExternalProvisioning) -> ProvisionedEngine:
    """Validate ``external.url`` and return it as ``base_url`` (OC-POOL-3110: nothing to start)."""
    parts = urllib.parse.urlsplit(spec.url)
    problem = None
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        problem = "the port is not a number from 0 to 65535"
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        problem = "it must be http:// or https:// with a host"
    elif parts.username is not None or parts.password is not None:
        problem = "credentials in the URL end up in logs; use external.api_key_env"
    elif parts.query or parts.fragment:
        problem = "a base URL has no query string or fragment"
    if problem is not None:
        raise EngineUrlError(redact_url(spec.url), problem)
    base_url = spec.url.rstrip("/")
    return ProvisionedEngine(
        mode="external",
        kind=kind,
        base_url=base_url,
        api_key_env=spec.api_key_env if spec.api_key_env is not UNSET else None,
        detail=f"external {kind!s} server at {base_url}",
    )
