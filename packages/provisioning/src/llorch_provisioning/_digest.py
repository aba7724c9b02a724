"""Digest strings as the catalog writes them: ``sha256:<64 lowercase hex>`` (CAT-1020)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
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


def file_digest_until(path: Path, should_stop: Callable[[], bool], chunk_bytes: int = 1 << 20) -> str | None:
    """Like `file_digest`, but asks `should_stop()` before each chunk and gives up (None) when it says so.

    Lets a caller bound a hash in time and cancel it from another thread (CAT-1084).
    """
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while not should_stop():
            chunk = fh.read(chunk_bytes)
            if not chunk:
                return _PREFIX + digest.hexdigest()
            digest.update(chunk)
    return None
