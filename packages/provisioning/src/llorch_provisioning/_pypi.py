"""Finding and downloading a verified sdist from a PyPI-compatible index (stdlib only)."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from ._errors import ChecksumMismatchError, ProvisioningError, SdistNotFoundError
from ._files import atomic_write_with, sha256_file
from ._progress import Phase, ProgressCallback

DEFAULT_INDEX_URL = "https://pypi.org/pypi"
_CHUNK_BYTES = 1 << 20
_TIMEOUT_S = 60.0

UrlOpener = Callable[[str], IO[bytes]]


def urlopen_with_timeout(url: str) -> IO[bytes]:
    return cast("IO[bytes]", urllib.request.urlopen(url, timeout=_TIMEOUT_S))


@dataclass(frozen=True, kw_only=True)
class SdistRef:
    """Where an sdist lives and the sha256 the index publishes for it."""

    filename: str
    url: str
    sha256: str
    size_bytes: int


def _pick_sdist(files: list[dict[str, Any]], base_url: str, project: str, version: str) -> SdistRef:
    for entry in files:
        if entry.get("packagetype") == "sdist" and not entry.get("yanked", False):
            return SdistRef(
                filename=str(entry["filename"]),
                # Mirrors may publish relative URLs ("../../packages/..."); resolve them
                # against the JSON document they came from.
                url=urllib.parse.urljoin(base_url, str(entry["url"])),
                sha256=str(entry["digests"]["sha256"]),
                size_bytes=int(entry.get("size", 0)),
            )
    raise SdistNotFoundError(f"{project}=={version} has no (unyanked) sdist on the index")


def resolve_sdist(
    project: str,
    version: str,
    *,
    index_url: str = DEFAULT_INDEX_URL,
    opener: UrlOpener = urlopen_with_timeout,
) -> SdistRef:
    """Look up the sdist of ``project==version`` in the index's JSON API.

    The per-release endpoint is tried first; some mirrors only serve the per-project
    document, so a 404 there falls back to ``releases[version]`` of the project JSON.
    """
    base = index_url.rstrip("/")
    release_url = f"{base}/{project}/{version}/json"
    try:
        with opener(release_url) as resp:
            doc = json.load(resp)
        return _pick_sdist(list(doc.get("urls", [])), release_url, project, version)
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise ProvisioningError(f"index lookup {release_url} failed: HTTP {exc.code}") from exc
    project_url = f"{base}/{project}/json"
    try:
        with opener(project_url) as resp:
            doc = json.load(resp)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise SdistNotFoundError(f"{project} is not on the index {index_url}") from exc
        raise ProvisioningError(f"index lookup {project_url} failed: HTTP {exc.code}") from exc
    files = doc.get("releases", {}).get(version)
    if not files:
        raise SdistNotFoundError(f"{project}=={version} is not on the index {index_url}")
    return _pick_sdist(list(files), project_url, project, version)


def download_verified(
    ref: SdistRef, dest: Path, on_progress: ProgressCallback, *, opener: UrlOpener = urlopen_with_timeout
) -> Path:
    """Download ``ref`` to ``dest`` unless a file with the right sha256 is already there.

    The body is hashed while it streams into a temp file, and only a verified file is
    renamed to ``dest``, so an interrupted or tampered download never poses as the sdist.
    """
    if dest.exists():
        if sha256_file(dest) == ref.sha256:
            on_progress(Phase.DOWNLOAD, 100.0, f"reusing verified {dest.name}")
            return dest
        dest.unlink()

    def fetch_into(tmp: Path) -> None:
        digest = hashlib.sha256()
        received = 0
        with opener(ref.url) as resp, tmp.open("wb") as out:
            while chunk := resp.read(_CHUNK_BYTES):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                pct = 100.0 * received / ref.size_bytes if ref.size_bytes else 0.0
                on_progress(Phase.DOWNLOAD, min(pct, 100.0), f"{received}/{ref.size_bytes} bytes")
        actual = digest.hexdigest()
        if actual != ref.sha256:
            raise ChecksumMismatchError(dest, ref.sha256, actual)

    atomic_write_with(dest, fetch_into)
    on_progress(Phase.DOWNLOAD, 100.0, f"downloaded and verified {dest.name} sha256={ref.sha256}")
    return dest
