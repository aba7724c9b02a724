"""Request bodies checked before any decoder sees them (OC-CTRL-2176..2179, OC-POOL-3198).

A body must be labelled `application/json`, be valid UTF-8, fit in `MAX_BODY_BYTES`
and nest at most `MAX_JSON_DEPTH` arrays and objects. The depth bound exists
because msgspec recurses per level without a limit of its own: about a thousand
levels raise RecursionError (a 500), and a few hundred decode into values that
fail later when stored or re-encoded.
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Request

from llorch_contracts.api import ErrorKind

from ._errors import ApiError

#: The largest request body either service reads (enforced by Litestar before reading it).
#: A 16 MiB artifact (CAT-1047's default limit) plus its envelope fits.
MAX_BODY_BYTES = 20 * 1024 * 1024
#: The deepest nesting of arrays and objects a body may have; the outermost value is level 1.
MAX_JSON_DEPTH = 64

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_TO_SQUARE = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def nests_deeper_than(body: bytes, limit: int) -> bool:
    """Whether `body` nests arrays/objects more than `limit` deep, brackets inside strings ignored.

    Cheap and C-speed: strings are cut out by one regex, everything but brackets is deleted,
    then each pass removes the innermost `[]` pairs; a document `limit` deep is empty after
    `limit` passes. Malformed bodies are left to the decoder, unless their unclosed brackets
    alone exceed the limit (the decoder would recurse on those too).
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    skeleton = _STRING.sub(b"", body).translate(_TO_SQUARE, _NOT_BRACKETS)
    for _ in range(limit):
        shorter = skeleton.replace(b"[]", b"")
        if shorter == skeleton:
            break
        skeleton = shorter
    return b"[]" in skeleton or skeleton.count(b"[") > limit


def _is_json(content_type: str | None) -> bool:
    media_type, *params = (content_type or "").split(";")
    if media_type.strip().lower() != "application/json":
        return False
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in {"utf-8", "utf8"}:
            return False
    return True


async def check_json_body(request: Request[Any, Any, Any]) -> None:
    """before_request hook: refuse a body that is not UTF-8 JSON of bounded depth, before decoding.

    Requests without a body pass; an operation that needs one refuses the empty body itself.
    """
    headers = request.headers
    if headers.get("content-length", "0") == "0" and "transfer-encoding" not in headers:
        return
    body = await request.body()  # Litestar caches it for the handler and refuses > MAX_BODY_BYTES
    if not body:
        return
    if not _is_json(headers.get("content-type")):
        raise ApiError(ErrorKind.INVALID_PARAMS, "a request body requires `Content-Type: application/json`")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        message = f"request body is not valid UTF-8 (byte {exc.start})"
        raise ApiError(ErrorKind.INVALID_PARAMS, message) from None
    if nests_deeper_than(body, MAX_JSON_DEPTH):
        message = f"request body nests arrays and objects deeper than {MAX_JSON_DEPTH} levels"
        raise ApiError(ErrorKind.INVALID_PARAMS, message)
