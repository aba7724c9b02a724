"""The nesting bound of request bodies against a reference depth (OC-CTRL-2178)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llorch_http import MAX_JSON_DEPTH, nests_deeper_than

# Strings full of brackets, quotes and backslashes: the scan must skip them whole.
_TEXT = st.text(alphabet='[]{}"\\ab,:', max_size=8)
_JSON = st.recursive(
    st.none() | st.integers() | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=40,
)


def depth(value: Any) -> int:
    """Levels of arrays and objects, the outermost counting as 1 (as the contract counts)."""
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


def wrapped(value: Any, levels: int) -> Any:
    for index in range(levels):
        value = [value] if index % 2 else {"k": value}
    return value


@pytest.mark.req("OC-CTRL-2178")
@given(_JSON, st.integers(min_value=0, max_value=70), st.integers(min_value=0, max_value=8))
def test_matches_the_reference_depth(value: Any, extra: int, limit: int) -> None:
    document = wrapped(value, extra)
    body = json.dumps(document).encode()
    assert nests_deeper_than(body, limit) == (depth(document) > limit)
    assert nests_deeper_than(body, MAX_JSON_DEPTH) == (depth(document) > MAX_JSON_DEPTH)


@pytest.mark.req("OC-CTRL-2178")
@pytest.mark.parametrize(
    ("body", "deep"),
    [
        (b"[" * 100_000, True),  # unclosed: the decoder would recurse on these too
        (b"]" * 100_000, False),  # malformed but flat: left to the decoder's error
        (b'"' + b"[" * 100_000 + b'"', False),
        (b'["\\"' + b"[" * 100 + b'"]', False),  # an escaped quote does not end the string
    ],
)
def test_malformed_bodies(body: bytes, deep: bool) -> None:
    assert nests_deeper_than(body, MAX_JSON_DEPTH) is deep
