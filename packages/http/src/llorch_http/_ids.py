"""Path identifiers checked against their contract types, so each pattern lives in the contract only."""

from __future__ import annotations

from typing import Any

import msgspec

from llorch_contracts.api import ErrorKind

from ._errors import ApiError


def checked_id(value: str, contract_type: Any, name: str) -> str:
    """`value` if it is a valid `contract_type` (e.g. `api.PoolId`), else the 400 INVALID_PARAMS envelope."""
    try:
        msgspec.convert(value, contract_type)
    except msgspec.ValidationError:
        raise ApiError(ErrorKind.INVALID_PARAMS, f"{name} {value!r} is not a valid {name}") from None
    return value
