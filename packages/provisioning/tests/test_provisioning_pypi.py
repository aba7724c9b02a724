"""Resolving and downloading the sdist: JSON API fallbacks, relative URLs, sha256 checks."""

from __future__ import annotations

import hashlib
import io
import json
import urllib.error
from email.message import Message
from pathlib import Path
from typing import IO

import pytest

from llorch_provisioning import (
    ChecksumMismatchError,
    PyPIFetcher,
    SdistNotFoundError,
    SdistRef,
    resolve_sdist,
)

BODY = b"pretend this is a 70 MB sdist"
SHA = hashlib.sha256(BODY).hexdigest()
INDEX = "https://mirror.example/pypi"


def _sdist_entry(url: str, sha: str = SHA) -> dict[str, object]:
    return {
        "packagetype": "sdist",
        "filename": "llama_cpp_python-0.3.36.tar.gz",
        "url": url,
        "digests": {"sha256": sha},
        "size": len(BODY),
    }


class FakeIndex:
    """A scriptable opener: URL -> bytes, or an HTTP status to raise."""

    def __init__(self, routes: dict[str, bytes | int]) -> None:
        self.routes = routes
        self.requested: list[str] = []

    def __call__(self, url: str) -> IO[bytes]:
        self.requested.append(url)
        answer = self.routes.get(url, 404)
        if isinstance(answer, int):
            raise urllib.error.HTTPError(url, answer, "status", Message(), None)
        return io.BytesIO(answer)


def test_release_endpoint_is_used_when_present() -> None:
    doc = {"urls": [{"packagetype": "bdist_wheel"}, _sdist_entry("https://files.example/x.tar.gz")]}
    index = FakeIndex({f"{INDEX}/llama-cpp-python/0.3.36/json": json.dumps(doc).encode()})
    ref = resolve_sdist("llama-cpp-python", "0.3.36", index_url=INDEX, opener=index)
    assert ref == SdistRef(
        filename="llama_cpp_python-0.3.36.tar.gz",
        url="https://files.example/x.tar.gz",
        sha256=SHA,
        size_bytes=len(BODY),
    )


def test_404_on_release_endpoint_falls_back_to_project_json_and_resolves_relative_urls() -> None:
    doc = {"releases": {"0.3.36": [_sdist_entry("../../packages/ec/e9/x.tar.gz")]}}
    index = FakeIndex({f"{INDEX}/llama-cpp-python/json": json.dumps(doc).encode()})
    ref = resolve_sdist("llama-cpp-python", "0.3.36", index_url=INDEX, opener=index)
    assert ref.url == "https://mirror.example/packages/ec/e9/x.tar.gz"
    assert index.requested == [f"{INDEX}/llama-cpp-python/0.3.36/json", f"{INDEX}/llama-cpp-python/json"]


def test_unknown_version_is_a_typed_error() -> None:
    doc = {"releases": {"0.3.35": [_sdist_entry("x")]}}
    index = FakeIndex({f"{INDEX}/llama-cpp-python/json": json.dumps(doc).encode()})
    with pytest.raises(SdistNotFoundError, match=r"0\.3\.36"):
        resolve_sdist("llama-cpp-python", "0.3.36", index_url=INDEX, opener=index)


def test_download_is_verified_and_reused(tmp_path: Path) -> None:
    doc = {"urls": [_sdist_entry("https://files.example/x.tar.gz")]}
    index = FakeIndex(
        {
            f"{INDEX}/llama-cpp-python/0.3.36/json": json.dumps(doc).encode(),
            "https://files.example/x.tar.gz": BODY,
        }
    )
    fetcher = PyPIFetcher(index_url=INDEX, opener=index)
    pcts: list[float] = []
    got = fetcher.fetch("0.3.36", tmp_path, lambda phase, pct, line: pcts.append(pct))
    assert got.path.read_bytes() == BODY
    assert got.sha256 == SHA
    assert pcts[-1] == 100.0

    index.requested.clear()
    again = fetcher.fetch("0.3.36", tmp_path, lambda phase, pct, line: None)
    assert again.path == got.path
    assert "https://files.example/x.tar.gz" not in index.requested


def test_tampered_download_is_rejected_and_leaves_nothing(tmp_path: Path) -> None:
    doc = {"urls": [_sdist_entry("https://files.example/x.tar.gz", sha="a" * 64)]}
    index = FakeIndex(
        {
            f"{INDEX}/llama-cpp-python/0.3.36/json": json.dumps(doc).encode(),
            "https://files.example/x.tar.gz": BODY,
        }
    )
    with pytest.raises(ChecksumMismatchError) as err:
        PyPIFetcher(index_url=INDEX, opener=index).fetch("0.3.36", tmp_path, lambda *_: None)
    assert err.value.actual == SHA
    assert list(tmp_path.iterdir()) == []
