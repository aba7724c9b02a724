"""A ``UrlOpener`` that puts every URL it opens, redirects included, to the outbound policy hook."""

from __future__ import annotations

import http.client
import urllib.request
from typing import IO, cast

from ._outbound import OutboundHook, OutboundPurpose
from ._pypi import UrlOpener

DEFAULT_TIMEOUT_S = 60.0


class GatedRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only after the hook allowed its target (POL-1004).

    GitHub release assets, package indexes and model hubs redirect to other hosts, so each
    target is decided again, for the same purpose (and pool) as the first URL.
    """

    def __init__(self, hook: OutboundHook, purpose: OutboundPurpose, pool_id: str | None = None) -> None:
        self._hook = hook
        self._purpose = purpose
        self._pool_id = pool_id

    def redirect_request(  # noqa: PLR0917 - urllib's signature
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        try:
            self._hook.check(newurl, self._purpose, pool_id=self._pool_id)
        except BaseException:
            fp.close()  # the redirect response is abandoned; do not leak its socket
            raise
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def gated_url_opener(
    hook: OutboundHook, purpose: OutboundPurpose, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> UrlOpener:
    """Open URLs for ``purpose`` only when ``hook`` allows them; urllib's errors pass through unchanged.

    Errors are left as urllib raises them because callers such as ``resolve_sdist`` act on
    ``HTTPError`` codes (a 404 there means "try the other endpoint").
    """
    # No ProxyHandler from the environment: the policy decides hosts, not $https_proxy.
    director = urllib.request.build_opener(urllib.request.ProxyHandler({}), GatedRedirects(hook, purpose))

    def open_url(url: str) -> IO[bytes]:
        hook.check(url, purpose)
        request = urllib.request.Request(url, headers={"User-Agent": "llama-orch"})
        return cast("IO[bytes]", director.open(request, timeout=timeout_s))

    return open_url
