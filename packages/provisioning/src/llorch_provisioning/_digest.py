"""Digest strings as the catalog writes them: ``sha256:<64 lowercase hex>`` (CAT-1020)."""

from __future__ import annotations

import re
from pathlib import Path

from ._errors import InvalidDigestError
from ._files import sha256_file

_PREFIX = "sha256:"
_HEX64 = re.compile(r"[0-9a-f]{64}")


def parse_digest(text: str) -> str:
    """Normalise an expected digest to ``sha256:<hex>``; bare hex and upper case are accepted."""
    hex_part = text.removeprefix(_PREFIX).lower()
    if not _HEX64.fullmatch(hex_part):
        raise InvalidDigestError(f"expected digest {text!r} is not sha256: followed by 64 hex digits")
    return _PREFIX + hex_part


def file_digest(path: Path) -> str:
    """``sha256:<hex>`` of the file, streamed in chunks (callers run this in a worker thread)."""
    return _PREFIX + sha256_file(path)
