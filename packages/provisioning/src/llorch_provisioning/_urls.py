"""URL facts shared by model refs and the outbound policy: loopback hosts, redaction."""

from __future__ import annotations

import ipaddress
import urllib.parse


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (127.0.0.0/8, ::1)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def redact_url(url: str) -> str:
    """``scheme://host[:port]/path``: no user info, query string or fragment.

    Those parts may carry secrets (signed URLs, tokens), and redacted URLs are what goes
    into logs, error messages and records.
    """
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal needs its brackets back
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port is not None else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
