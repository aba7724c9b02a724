"""The sidecar record written next to every model file we create (generated or downloaded).

A model is reused only when its record says where it came from and the file still hashes to
the recorded digest, so a truncated, edited or foreign file in the cache is never served.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import msgspec

from ._digest import file_digest
from ._files import atomic_write_bytes

RECORD_SUFFIX = ".record.json"
RECORD_SCHEMA_VERSION = 1


class ModelRecord(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a model file in the cache is; ``origin`` never holds credentials or a query string."""

    schema_version: int = RECORD_SCHEMA_VERSION
    origin: str
    sha256: str
    size_bytes: int


_ENCODER = msgspec.json.Encoder(order="deterministic")
_DECODER = msgspec.json.Decoder(ModelRecord)


def record_path(model_path: Path) -> Path:
    """``<model file>.record.json``."""
    return model_path.with_name(model_path.name + RECORD_SUFFIX)


def write_record(model_path: Path, record: ModelRecord) -> None:
    """Write the record atomically next to ``model_path``."""
    atomic_write_bytes(
        record_path(model_path), msgspec.json.format(_ENCODER.encode(record), indent=2) + b"\n"
    )


def _read_record(model_path: Path) -> ModelRecord | None:
    try:
        record = _DECODER.decode(record_path(model_path).read_bytes())
    except (OSError, msgspec.DecodeError):
        return None
    return record if record.schema_version == RECORD_SCHEMA_VERSION else None


def reusable_record(model_path: Path, origin: str) -> ModelRecord | None:
    """The record of ``model_path`` if it is from ``origin`` and the file still matches it.

    The size is compared first so an obviously different file is not hashed at all.
    """
    record = _read_record(model_path)
    if record is None or record.origin != origin:
        return None
    try:
        if model_path.stat().st_size != record.size_bytes:
            return None
        return record if file_digest(model_path) == record.sha256 else None
    except OSError:
        return None


def discard(model_path: Path) -> None:
    """Remove a model file we created and its record; only ever called inside the models dir."""
    for path in (model_path, record_path(model_path)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
