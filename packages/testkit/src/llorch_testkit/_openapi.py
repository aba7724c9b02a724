"""Validate real httpx responses against our OpenAPI contracts with openapi-core.

openapi-core ships no httpx adapter; these two small classes are one. The
contract's server URL is templated (`http://{host}:{port}`), so requests are
presented as if sent to the default loopback host, whatever host the test
client used.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import httpx
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

CONTRACTS = Path(__file__).resolve().parents[4] / "contracts" / "openapi"
_HOST_URL = {"orchestratord": "http://127.0.0.1:8080", "pool-managerd": "http://127.0.0.1:9200"}


class _Request:
    def __init__(self, request: httpx.Request, host_url: str) -> None:
        self.host_url = host_url
        self.path = request.url.path
        self.method = request.method.lower()
        self.body: bytes | None = request.content or None
        self.content_type = request.headers.get("content-type", "")
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(request.url.params.multi_items()),
            header=Headers(dict(request.headers)),
            cookie=ImmutableMultiDict(),
        )


class _Response:
    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self.content_type = response.headers.get("content-type", "")
        self.headers = Headers(dict(response.headers))
        self.data = response.content


@cache
def contract(service: str) -> OpenAPI:
    """The service's OpenAPI document, loaded once (cross-file `$ref`s resolve from the file path)."""
    return OpenAPI.from_file_path(str(CONTRACTS / f"{service}.yaml"))


def assert_conforms(service: str, response: httpx.Response) -> None:
    """Raise if the response (status, headers, body) is not what the contract says for its request.

    SSE bodies are not validated here: openapi-core would read the whole body as
    one event. Check events with `parse_sse` and the `x-sse-events` schemas.
    """
    request = _Request(response.request, _HOST_URL[service])
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return
    contract(service).validate_response(request, _Response(response))
