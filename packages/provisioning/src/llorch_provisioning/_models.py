"""``ensure_model``: turn a model reference into a verified local file (CAT-1010..1021).

Generated models and downloads live under ``<cache_root>/models/`` (``catalog.models_dir``)
next to a sidecar record, and are reused only when the file still matches it. Local files
are used in place and never modified or deleted (CAT-1012). Everything here blocks; the
services call it from a worker thread.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.parse
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import assert_never

from ._digest import file_digest, parse_digest
from ._download import DEFAULT_TIMEOUT_S, download_to_part
from ._errors import (
    ModelDigestMismatchError,
    ModelGenerationError,
    ModelNotFoundError,
    OutboundDeniedError,
)
from ._files import exclusive_lock
from ._model_progress import ModelProgress, ModelProgressCallback, ModelStep, no_model_progress
from ._model_record import ModelRecord, discard, reusable_record, write_record
from ._model_ref import FileModelRef, GenModelRef, HfModelRef, UrlModelRef, parse_model_ref
from ._outbound import OutboundHook
from ._tiny_model import TinyModelSpec, make_tiny_model
from ._urls import redact_url

_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")


class ModelSource(StrEnum):
    """Where the file behind a reference came from."""

    GENERATED = "generated"
    LOCAL_FILE = "file"
    DOWNLOAD = "download"


@dataclass(frozen=True, kw_only=True)
class ModelFile:
    """A model file on local disk, its ``sha256:<hex>`` digest and how it got there."""

    path: Path
    sha256: str
    size_bytes: int
    ref: str
    source: ModelSource
    reused: bool


def models_dir(cache_root: Path) -> Path:
    """``<cache_root>/models``: the only directory whose files ensure_model may delete."""
    return cache_root / "models"


def tiny_model_path(cache_root: Path, seed: int) -> Path:
    """Where ``gen:tiny-llama?seed=<seed>`` is kept in the cache."""
    return models_dir(cache_root) / f"tiny-llama-s{seed}.gguf"


def _verify(model: ModelFile, expected: str | None) -> ModelFile:
    if expected is not None and model.sha256 != expected:
        raise ModelDigestMismatchError(
            ref=model.ref, path=model.path, expected=expected, actual=model.sha256, deleted=False
        )
    return model


def _finished(on_progress: ModelProgressCallback, step: ModelStep, size_bytes: int, message: str) -> None:
    on_progress(ModelProgress(step=step, bytes_done=size_bytes, bytes_total=size_bytes, message=message))


def ensure_tiny_model(
    dest: Path, *, seed: int, vocab_path: Path | None, on_progress: ModelProgressCallback = no_model_progress
) -> ModelFile:
    """Write the tiny test model for ``seed`` at ``dest``, or reuse the one already there.

    The file is a pure function of seed, vocab and ``TinyModelSpec``; its record names all
    three, so an engine upgrade that changes the vocab regenerates it instead of reusing it.
    """
    if vocab_path is None or not vocab_path.is_file():
        where = "no vocab file was given" if vocab_path is None else f"{vocab_path} is missing"
        raise ModelGenerationError(
            f"gen:tiny-llama needs the engine's ggml-vocab-llama-spm.gguf ({where}); "
            "provision the engine first"
        )
    ref = f"gen:tiny-llama?seed={seed}"
    spec = TinyModelSpec()
    origin = f"{ref} vocab={file_digest(vocab_path)} spec={spec!r}"

    def result(sha256: str, size_bytes: int, *, reused: bool) -> ModelFile:
        source = ModelSource.GENERATED
        return ModelFile(
            path=dest, sha256=sha256, size_bytes=size_bytes, ref=ref, source=source, reused=reused
        )

    with exclusive_lock(dest.with_name(f".{dest.name}.lock")):
        record = reusable_record(dest, origin)
        if record is not None:
            _finished(on_progress, "verify", record.size_bytes, f"reusing {dest}")
            return result(record.sha256, record.size_bytes, reused=True)
        on_progress(
            ModelProgress(step="generate", bytes_done=0, bytes_total=None, message=f"generating {dest}")
        )
        tiny = make_tiny_model(dest, seed=seed, vocab_gguf_path=vocab_path, spec=spec)
        digest = f"sha256:{tiny.sha256}"
        write_record(dest, ModelRecord(origin=origin, sha256=digest, size_bytes=tiny.size_bytes))
    _finished(on_progress, "generate", tiny.size_bytes, f"generated {dest} {digest}")
    return result(digest, tiny.size_bytes, reused=False)


def _local_file(ref: FileModelRef, on_progress: ModelProgressCallback) -> ModelFile:
    path = ref.path
    if not path.exists():
        raise ModelNotFoundError(ref.raw, path, "does not exist")
    if not path.is_file():
        raise ModelNotFoundError(ref.raw, path, "is not a regular file")
    if not os.access(path, os.R_OK):
        raise ModelNotFoundError(ref.raw, path, "is not readable")
    size = path.stat().st_size
    on_progress(ModelProgress(step="verify", bytes_done=0, bytes_total=size, message=f"hashing {path}"))
    digest = file_digest(path)
    _finished(on_progress, "verify", size, f"{path} {digest}")
    return ModelFile(
        path=path, sha256=digest, size_bytes=size, ref=ref.raw, source=ModelSource.LOCAL_FILE, reused=True
    )


def _download_name(url: str) -> str:
    """A safe file name from the URL's last path segment (``model.gguf`` when there is none)."""
    name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
    name = _UNSAFE_NAME_CHARS.sub("_", name).lstrip(".")[:200]
    return name or "model.gguf"


@dataclass(frozen=True, kw_only=True)
class _Fetch:
    ref: str
    shown_ref: str  # the ref as it may appear in messages: no query string or credentials
    url: str
    dest: Path
    expected: str | None
    hook: OutboundHook
    timeout_s: float

    def model(self, sha256: str, size_bytes: int, *, reused: bool) -> ModelFile:
        return ModelFile(
            path=self.dest,
            sha256=sha256,
            size_bytes=size_bytes,
            ref=self.ref,
            source=ModelSource.DOWNLOAD,
            reused=reused,
        )


def _fetch_verified(fetch: _Fetch, origin: str, on_progress: ModelProgressCallback) -> ModelFile:
    part = fetch.dest.with_name(fetch.dest.name + ".part")
    if fetch.expected is None:
        # Resuming splices two responses; if the file changed upstream in between, only an
        # expected digest would notice. Without one, start over rather than risk a hybrid.
        part.unlink(missing_ok=True)
    try:
        size = download_to_part(
            fetch.url, part, hook=fetch.hook, on_progress=on_progress, timeout_s=fetch.timeout_s
        )
    except OutboundDeniedError as exc:
        # CAT-1017: say which reference could not be fetched, not only which URL was denied.
        raise OutboundDeniedError(
            f"model {fetch.shown_ref!r} is not in the cache and may not be fetched: {exc}",
            url=exc.url,
            purpose=exc.purpose,
            rule=exc.rule,
            setting=exc.setting,
        ) from exc
    on_progress(ModelProgress(step="verify", bytes_done=0, bytes_total=size, message=f"hashing {part}"))
    digest = file_digest(part)
    if fetch.expected is not None and digest != fetch.expected:
        part.unlink()
        raise ModelDigestMismatchError(
            ref=fetch.shown_ref, path=fetch.dest, expected=fetch.expected, actual=digest, deleted=True
        )
    # Renamed only after the digest check (CAT-1013); the record follows, so a crash in
    # between leaves a file without a record, which the next call discards and fetches again.
    os.replace(part, fetch.dest)
    write_record(fetch.dest, ModelRecord(origin=origin, sha256=digest, size_bytes=size))
    _finished(on_progress, "verify", size, f"{fetch.dest} {digest}")
    return fetch.model(digest, size, reused=False)


def _downloaded(fetch: _Fetch, on_progress: ModelProgressCallback) -> ModelFile:
    origin = redact_url(fetch.url)
    # The lock makes concurrent callers for one URL share a download (CAT-1016): the second
    # waits, then finds the finished file and its record. It lives outside the URL's own
    # directory, which is only created once the policy allowed the download.
    url_key = fetch.dest.parent.name
    with exclusive_lock(fetch.dest.parent.parent / ".locks" / f"{url_key}.lock"):
        record = reusable_record(fetch.dest, origin)
        if record is not None and fetch.expected in (None, record.sha256):
            _finished(on_progress, "verify", record.size_bytes, f"reusing {fetch.dest}")
            return fetch.model(record.sha256, record.size_bytes, reused=True)
        discard(fetch.dest)  # stale, foreign or not the expected content: fetch it again
        return _fetch_verified(fetch, origin, on_progress)


def download_path(cache_root: Path, url: str) -> Path:
    """Where a download of ``url`` is kept: one directory per exact URL, so names never collide."""
    url_key = hashlib.sha256(url.encode()).hexdigest()
    return models_dir(cache_root) / "by-url" / url_key / _download_name(url)


def ensure_model(
    ref: str,
    *,
    expected_sha256: str | None,
    cache_root: Path,
    base_dir: Path,
    gate: OutboundHook,
    vocab_path: Path | None,
    on_progress: ModelProgressCallback = no_model_progress,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> ModelFile:
    """Resolve ``ref`` to a local model file and check it against ``expected_sha256``.

    ``gen:`` refs are generated (needs ``vocab_path``), file refs hashed in place, and
    ``https:``/``hf:`` refs downloaded through ``gate`` into the cache, or reused when a
    previous download still matches its record. ``expected_sha256`` is ``sha256:<hex>``;
    a mismatch raises ``ModelDigestMismatchError`` (and deletes a fresh download).
    """
    expected = parse_digest(expected_sha256) if expected_sha256 is not None else None
    parsed = parse_model_ref(ref, base_dir=base_dir)
    if isinstance(parsed, GenModelRef):
        dest = tiny_model_path(cache_root, parsed.seed)
        model = ensure_tiny_model(dest, seed=parsed.seed, vocab_path=vocab_path, on_progress=on_progress)
        return _verify(replace(model, ref=ref), expected)
    if isinstance(parsed, FileModelRef):
        return _verify(_local_file(parsed, on_progress), expected)
    if isinstance(parsed, UrlModelRef | HfModelRef):
        fetch = _Fetch(
            ref=ref,
            shown_ref=redact_url(ref) if isinstance(parsed, UrlModelRef) else ref,
            url=parsed.url,
            dest=download_path(cache_root, parsed.url),
            expected=expected,
            hook=gate,
            timeout_s=timeout_s,
        )
        return _downloaded(fetch, on_progress)
    assert_never(parsed)
