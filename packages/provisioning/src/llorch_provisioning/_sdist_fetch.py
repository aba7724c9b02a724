"""Where the llama-cpp-python sdist comes from: the ``SdistFetcher`` seam and its PyPI implementation."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ._errors import ChecksumMismatchError
from ._files import sha256_file
from ._layout import SDIST_PROJECT
from ._progress import Phase, ProgressCallback
from ._pypi import DEFAULT_INDEX_URL, UrlOpener, download_verified, resolve_sdist, urlopen_with_timeout


@dataclass(frozen=True, kw_only=True)
class FetchedSdist:
    """A local sdist whose sha256 has been checked against the index."""

    path: Path
    sha256: str


class SdistFetcher(Protocol):
    """Puts the llama-cpp-python ``version`` sdist into ``downloads_dir``, verified."""

    def fetch(self, version: str, downloads_dir: Path, on_progress: ProgressCallback) -> FetchedSdist: ...


@dataclass(frozen=True, kw_only=True)
class PyPIFetcher:
    """Fetches from a PyPI JSON API (``https://pypi.org/pypi`` unless told otherwise)."""

    index_url: str = DEFAULT_INDEX_URL
    project: str = SDIST_PROJECT
    opener: UrlOpener = field(default=urlopen_with_timeout)

    def fetch(self, version: str, downloads_dir: Path, on_progress: ProgressCallback) -> FetchedSdist:
        """Resolve the sdist URL and sha256, then download (or reuse) and verify it."""
        ref = resolve_sdist(self.project, version, index_url=self.index_url, opener=self.opener)
        path = download_verified(ref, downloads_dir / ref.filename, on_progress, opener=self.opener)
        return FetchedSdist(path=path, sha256=ref.sha256)


@dataclass(frozen=True, kw_only=True)
class LocalSdistFetcher:
    """Uses an sdist already on disk (air-gapped hosts, tests), optionally pinned by sha256."""

    path: Path
    expected_sha256: str | None = None

    def fetch(self, version: str, downloads_dir: Path, on_progress: ProgressCallback) -> FetchedSdist:
        """Hash the local file and refuse it if it is not the pinned one."""
        actual = sha256_file(self.path)
        if self.expected_sha256 is not None and actual != self.expected_sha256:
            raise ChecksumMismatchError(self.path, self.expected_sha256, actual)
        on_progress(Phase.DOWNLOAD, 100.0, f"using local {self.path} sha256={actual}")
        return FetchedSdist(path=self.path, sha256=actual)
