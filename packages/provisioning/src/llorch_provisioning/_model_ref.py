"""Parsing model references (CAT-1010) into a closed set of typed refs.

A reference says where a model comes from: ``gen:tiny-llama[?seed=N]`` (generated here),
``file:/abs/path`` or a plain path (used in place), ``https://host/path`` (downloaded), or
``hf:org/repo[@revision]/path`` (downloaded from the Hugging Face resolve URL). Parsing
touches no file and no network; it only decides what the reference means.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ._errors import InvalidModelRefError
from ._urls import is_loopback_host, redact_url

TINY_LLAMA_RECIPE = "tiny-llama"
HF_BASE_URL = "https://huggingface.co"
SUPPORTED_REFS = (
    "gen:tiny-llama[?seed=N], file:/absolute/path, a relative or absolute path, "
    "https://host/path (http:// only for loopback hosts) or hf:org/repo[@revision]/path/in/repo"
)

# RFC 3986 scheme syntax; it cannot start with "." or "/", so "./a:b.gguf" stays a path.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
# Hugging Face user, organisation and repository names; revisions are branch, tag or commit
# names without "/" (a slash would make the revision and the path ambiguous).
_HF_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
_HF_REVISION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
_MAX_SEED = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")  # ASCII only: str.isdigit() also accepts "²"


@dataclass(frozen=True, kw_only=True)
class GenModelRef:
    """A model this project generates, e.g. ``gen:tiny-llama?seed=3``."""

    raw: str
    recipe: str
    seed: int
    kind: Literal["gen"] = "gen"


@dataclass(frozen=True, kw_only=True)
class FileModelRef:
    """A local file, used in place (CAT-1012); ``path`` is absolute and ``~``-expanded."""

    raw: str
    path: Path
    kind: Literal["file"] = "file"


@dataclass(frozen=True, kw_only=True)
class UrlModelRef:
    """An ``https://`` URL (or ``http://`` on a loopback host) to download."""

    raw: str
    url: str
    kind: Literal["url"] = "url"


@dataclass(frozen=True, kw_only=True)
class HfModelRef:
    """A file in a Hugging Face repository at a revision (default ``main``)."""

    raw: str
    repo: str
    revision: str
    path_in_repo: str
    kind: Literal["hf"] = "hf"

    @property
    def url(self) -> str:
        """The resolve URL the file is fetched from (CAT-1011)."""
        quoted = urllib.parse.quote(self.path_in_repo, safe="/")
        return f"{HF_BASE_URL}/{self.repo}/resolve/{urllib.parse.quote(self.revision, safe='')}/{quoted}"


ModelRef = GenModelRef | FileModelRef | UrlModelRef | HfModelRef


def _parse_gen(raw: str, rest: str) -> GenModelRef:
    recipe, _, query = rest.partition("?")
    if recipe != TINY_LLAMA_RECIPE:
        raise InvalidModelRefError(raw, f"unknown generated model {recipe!r}; known: gen:{TINY_LLAMA_RECIPE}")
    seed = 0
    seen: set[str] = set()
    for item in query.split("&") if query else ():
        key, sep, value = item.partition("=")
        if key != "seed" or not sep or key in seen:
            raise InvalidModelRefError(raw, f"unsupported or repeated parameter {item!r}; only seed=N")
        seen.add(key)
        if not _DIGITS.fullmatch(value) or int(value) > _MAX_SEED:
            raise InvalidModelRefError(raw, f"seed must be an integer from 0 to {_MAX_SEED}")
        seed = int(value)
    return GenModelRef(raw=raw, recipe=recipe, seed=seed)


def _local_path(raw: str, text: str, base_dir: Path) -> FileModelRef:
    if not text:
        raise InvalidModelRefError(raw, "empty path")
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    # normpath, not resolve(): the file is used in place, so its symlinks are its owner's business.
    return FileModelRef(raw=raw, path=Path(os.path.normpath(path)))


def _parse_file(raw: str, rest: str) -> FileModelRef:
    if rest.startswith("//"):
        # URL form file:///abs/path; a host part (file://host/...) would mean a remote file.
        host, slash, path = rest[2:].partition("/")
        if host not in ("", "localhost") or not slash:
            raise InvalidModelRefError(raw, "file:// references must not name a host")
        rest = "/" + urllib.parse.unquote(path)
    if not (rest.startswith("/") or rest.startswith("~")):
        raise InvalidModelRefError(raw, "file: needs an absolute path; write a relative path without file:")
    return _local_path(raw, rest, Path("/"))


def _parse_url(raw: str, scheme: str) -> UrlModelRef:
    parts = urllib.parse.urlsplit(raw)
    shown = redact_url(raw)  # errors get logged: never repeat credentials or a query string
    host = parts.hostname
    if not host:
        raise InvalidModelRefError(shown, "the URL has no host")
    if parts.username is not None or parts.password is not None:
        # Refs end up in logs, the catalog and transcripts; secrets belong in the environment.
        raise InvalidModelRefError(shown, "credentials in model URLs are not allowed")
    if scheme == "http" and not is_loopback_host(host):
        raise InvalidModelRefError(shown, "plain http:// is only allowed for loopback hosts; use https://")
    try:
        _ = parts.port  # raises for a port that is out of range or not a number
    except ValueError as exc:
        raise InvalidModelRefError(shown, f"bad port: {exc}") from exc
    return UrlModelRef(raw=raw, url=raw)


def _parse_hf(raw: str, rest: str) -> HfModelRef:
    org, _, remainder = rest.partition("/")
    repo_rev, _, path_in_repo = remainder.partition("/")
    repo, at, revision = repo_rev.partition("@")
    revision = revision if at else "main"
    segments = path_in_repo.split("/")
    if not (_HF_NAME.fullmatch(org) and _HF_NAME.fullmatch(repo)):
        raise InvalidModelRefError(raw, "expected hf:<org>/<repo>[@<revision>]/<path-in-repo>")
    if not _HF_REVISION.fullmatch(revision):
        raise InvalidModelRefError(raw, f"bad revision {revision!r}")
    if not path_in_repo or any(s in ("", ".", "..") for s in segments):
        raise InvalidModelRefError(raw, "the path in the repository is missing or not normalised")
    return HfModelRef(raw=raw, repo=f"{org}/{repo}", revision=revision, path_in_repo=path_in_repo)


def parse_model_ref(raw: str, *, base_dir: Path) -> ModelRef:
    """Parse ``raw`` into a typed reference; plain relative paths resolve against ``base_dir``.

    ``base_dir`` is the directory of the configuration file (CAT-1010). Any scheme other
    than ``gen:``, ``file:``, ``https:``, ``http:`` (loopback) and ``hf:`` is refused with
    ``InvalidModelRefError`` listing the supported forms.
    """
    if not raw or raw != raw.strip():
        raise InvalidModelRefError(raw, "empty or surrounded by whitespace")
    if any(ord(c) < 32 or ord(c) == 127 for c in raw):
        raise InvalidModelRefError(raw, "control characters are not allowed")
    match = _SCHEME.match(raw)
    if match is None:
        return _local_path(raw, raw, base_dir)
    scheme = match.group(1).lower()
    rest = raw[match.end() :]
    if scheme == "gen":
        return _parse_gen(raw, rest)
    if scheme == "file":
        return _parse_file(raw, rest)
    if scheme in ("https", "http"):
        return _parse_url(raw, scheme)
    if scheme == "hf":
        return _parse_hf(raw, rest)
    raise InvalidModelRefError(raw, f"unsupported scheme {scheme + ':'!r}; supported: {SUPPORTED_REFS}")
