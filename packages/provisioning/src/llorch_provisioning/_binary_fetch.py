"""Fetching a prebuilt engine for ``binary.url``: verified before anything is extracted or run.

Downloads land in ``<cache_root>/engines/binary/<sha256 hex>/``, keyed by the digest the
operator pinned, so the same URL with a new digest never reuses stale bytes and a second
pool with the same digest reuses the first download without touching the network. The
URL may name the executable itself or a ``.zip``/``.tar.*`` archive holding it (the
llama.cpp release assets are zips with ``llama-server`` and its shared libraries).
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from ._errors import EngineBinaryError, EngineUrlError
from ._files import exclusive_lock, replace_dir, sha256_file
from ._gated_urlopen import gated_url_opener
from ._outbound import OutboundHook, OutboundPurpose
from ._progress import Phase, ProgressCallback
from ._pypi import SdistRef, download_verified
from ._urls import redact_url

DEFAULT_DOWNLOAD_TIMEOUT_S = 60.0
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")
_TREE = "tree"


def binary_cache_dir(cache_root: Path, sha256_hex: str) -> Path:
    """``<cache_root>/engines/binary/<sha256 hex>``, next to the source builds in ``engines/``."""
    return cache_root / "engines" / "binary" / sha256_hex


def _file_name(url: str) -> str:
    name = Path(urllib.parse.urlsplit(url).path).name
    return _SAFE_NAME.sub("_", name) or "engine-download"


def _unpack(archive: Path, entry: Path, executable: str) -> Path:
    tree = entry / _TREE
    if not tree.is_dir():
        # Extract beside the final place and rename, so a crash never leaves half a tree
        # that a later call would mistake for a finished one.
        staging = Path(tempfile.mkdtemp(prefix=".tree-", dir=entry))
        try:
            if zipfile.is_zipfile(archive):
                with zipfile.ZipFile(archive) as zf:
                    for info in zf.infolist():
                        # ZipFile.extract drops ".." and absolute parts; the mode bits are not
                        # restored by it, so the executables get theirs back from external_attr.
                        target = Path(zf.extract(info, staging))
                        if (info.external_attr >> 16) & 0o111:
                            target.chmod(0o755)
            else:
                with tarfile.open(archive, "r:*") as tf:
                    # filter="data" refuses absolute paths, "..", links out of the tree and devices.
                    tf.extractall(staging, filter="data")
            replace_dir(staging, tree)
        except (OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
            raise EngineBinaryError(archive, f"cannot unpack the archive: {exc}") from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # gone already after a successful rename
    found = sorted((p for p in tree.rglob(executable) if p.is_file()), key=lambda p: (len(p.parts), p))
    if not found:
        raise EngineBinaryError(archive, f"the archive holds no file named {executable!r}")
    return found[0]


def _is_archive(path: Path) -> bool:
    return zipfile.is_zipfile(path) or tarfile.is_tarfile(path)


def fetch_engine_binary(
    url: str,
    sha256: str,
    *,
    executable: str,
    cache_root: Path,
    hook: OutboundHook,
    on_progress: ProgressCallback,
    timeout_s: float = DEFAULT_DOWNLOAD_TIMEOUT_S,
) -> Path:
    """Return the path of the engine executable from ``url``, downloading it if not cached.

    ``sha256`` is ``sha256:<hex>``. The body is hashed while it streams into a temp file
    and renamed into place only when it matches (OC-POOL-3119), so a wrong download is
    deleted before anything reads it. ``hook`` decides the URL and every redirect; it is
    asked only when a download is needed, as a verified cache entry needs no network.
    """
    hex_digest = sha256.removeprefix("sha256:")
    entry = binary_cache_dir(cache_root, hex_digest)
    download = entry / _file_name(url)
    with exclusive_lock(entry.parent / f".{hex_digest}.lock"):
        if download.is_file() and sha256_file(download) == hex_digest:
            on_progress(Phase.VERIFY, 100.0, f"reusing verified {download}")
        else:
            # download_verified is the sdist downloader; only its SdistRef name is sdist-specific.
            ref = SdistRef(filename=download.name, url=url, sha256=hex_digest, size_bytes=0)
            opener = gated_url_opener(hook, OutboundPurpose.ENGINE_BINARY, timeout_s=timeout_s)
            try:
                download_verified(ref, download, on_progress, opener=opener)
            except urllib.error.HTTPError as exc:
                exc.close()
                raise EngineUrlError(
                    redact_url(url), f"download answered HTTP {exc.code} {exc.reason}"
                ) from None
            except OSError as exc:  # URLError, TLS and socket errors, timeouts, a full disk
                reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
                raise EngineUrlError(redact_url(url), f"download failed: {reason}") from exc
        binary = _unpack(download, entry, executable) if _is_archive(download) else download
        if not os.access(binary, os.X_OK):
            binary.chmod(0o755)
        return binary
