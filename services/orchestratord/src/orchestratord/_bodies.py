"""Request bodies decoded straight into contract Structs, with INVALID_PARAMS naming the bad field."""

from __future__ import annotations

import re
from typing import TypeVar

import msgspec

from llorch_contracts.api import ErrorKind
from llorch_http import ApiError

T = TypeVar("T")
_FIELD_AT = re.compile(r"^(?P<detail>.*?) - at `\$\.?(?P<path>[^`]*)`$")


def decode_body(body: bytes, decoder: msgspec.json.Decoder[T]) -> T:
    """Decode `body`, or raise 400 INVALID_PARAMS saying which field is wrong (never a framework body)."""
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        match = _FIELD_AT.match(str(exc))
        message = f"{match.group('path')}: {match.group('detail')}" if match else str(exc)
        raise ApiError(ErrorKind.INVALID_PARAMS, message) from exc
    except UnicodeDecodeError as exc:
        # msgspec raises this, not DecodeError, for invalid UTF-8 in a string (OC-CTRL-2177); the app's
        # before_request check refuses such bodies first, this covers bodies decoded any other way.
        raise ApiError(ErrorKind.INVALID_PARAMS, f"request body is not valid UTF-8: {exc.reason}") from None
    except msgspec.DecodeError as exc:
        raise ApiError(ErrorKind.INVALID_PARAMS, f"request body is not valid JSON: {exc}") from exc
