"""The manifest that describes one cached engine build, and its (atomic) persistence."""

from __future__ import annotations

from pathlib import Path

import msgspec

from ._files import atomic_write_bytes

MANIFEST_NAME = "manifest.json"
MANIFEST_SCHEMA_VERSION = 1


class EngineManifest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What was built, from what, with which flags; paths are relative to the engine dir."""

    schema_version: int = MANIFEST_SCHEMA_VERSION
    engine: str
    version: str
    variant: str
    sdist_filename: str
    sdist_sha256: str
    llamacpp_commit: str | None
    llamacpp_build_number: int | None
    cmake_generator: str
    cmake_options: tuple[str, ...]
    build_info_options: tuple[str, ...]
    binary: str
    binary_sha256: str
    engine_version: str
    vocab_dir: str
    vocab_files: tuple[str, ...]
    cpu_fingerprint: str
    # Wall time of the run that produced this install; a resumed build reports only its rest.
    build_seconds: float


_ENCODER = msgspec.json.Encoder(order="deterministic")
_DECODER = msgspec.json.Decoder(EngineManifest)


def encode_manifest(manifest: EngineManifest) -> bytes:
    """Stable JSON (sorted keys, trailing newline) so two equal manifests are equal bytes."""
    return msgspec.json.format(_ENCODER.encode(manifest), indent=2) + b"\n"


def read_manifest(path: Path) -> EngineManifest | None:
    """The manifest at ``path``, or None when it is missing, unreadable or of another schema."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        manifest = _DECODER.decode(data)
    except msgspec.DecodeError:
        return None
    if manifest.schema_version != MANIFEST_SCHEMA_VERSION:
        return None
    return manifest


def write_manifest(path: Path, manifest: EngineManifest) -> None:
    """Write the manifest atomically (temp file + rename)."""
    atomic_write_bytes(path, encode_manifest(manifest))
