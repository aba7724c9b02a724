"""Canonical JSON and content ids (CAT-1040, CAT-1041).

Canonical form: object keys sorted by code point, no insignificant whitespace,
UTF-8 without escaping non-ASCII characters; NaN and infinities are refused.
"""

from __future__ import annotations

import hashlib
import json

from ._errors import InvalidArtifactError

DIGEST_PREFIX = "sha256:"


def canonical_json(document: object) -> bytes:
    """The canonical bytes of a JSON document; raises `InvalidArtifactError` for NaN or infinities."""
    try:
        text = json.dumps(
            document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except ValueError as exc:
        raise InvalidArtifactError(f"not storable as canonical JSON: {exc}") from exc
    return text.encode("utf-8")


def content_id(canonical: bytes) -> str:
    """Lowercase hex SHA-256 of canonical bytes: the artifact id."""
    return hashlib.sha256(canonical).hexdigest()


def digest_of(artifact_id: str) -> str:
    return DIGEST_PREFIX + artifact_id
