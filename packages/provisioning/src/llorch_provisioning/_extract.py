"""Extracting the vendored llama.cpp tree (and its vocab files) from a llama-cpp-python sdist."""

from __future__ import annotations

import json
import re
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from ._errors import SourceLayoutError
from ._files import atomic_write_bytes
from ._progress import Phase, ProgressCallback

_VENDOR = "vendor/llama.cpp/"
# The sdist carries llama-cpp-python's git metadata; the submodule's HEAD names the exact
# llama.cpp commit, which we record because the tree we extract has no usable .git.
_SUBMODULE_HEAD = ".git/modules/vendor/llama.cpp/HEAD"
_STAMP = ".llorch-extracted.json"
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
VOCAB_GLOB = "ggml-vocab-*.gguf"


@dataclass(frozen=True, kw_only=True)
class ExtractedSource:
    """A llama.cpp source tree on disk and the upstream commit it came from, if known."""

    source_dir: Path
    commit: str | None

    @property
    def models_dir(self) -> Path:
        """``models/``, where the ``ggml-vocab-*.gguf`` files live."""
        return self.source_dir / "models"


def _top_dir(tf: tarfile.TarFile) -> str:
    first = tf.next()
    if first is None:
        raise SourceLayoutError("sdist is empty")
    return first.name.split("/", 1)[0]


def _read_commit(tf: tarfile.TarFile, top: str) -> str | None:
    try:
        member = tf.getmember(f"{top}/{_SUBMODULE_HEAD}")
    except KeyError:
        return None
    fh = tf.extractfile(member)
    if fh is None:
        return None
    text = fh.read().decode("ascii", errors="replace").strip()
    return text if _HEX40.match(text) else None


def _read_stamp(dest: Path, sdist_sha256: str) -> ExtractedSource | None:
    stamp = dest / _STAMP
    try:
        doc = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("sdist_sha256") != sdist_sha256:
        return None
    commit = doc.get("commit")
    return ExtractedSource(source_dir=dest, commit=commit if isinstance(commit, str) else None)


def extract_llamacpp(
    sdist: Path, sdist_sha256: str, dest: Path, on_progress: ProgressCallback
) -> ExtractedSource:
    """Extract ``vendor/llama.cpp`` of ``sdist`` into ``dest`` (reused if already extracted).

    Member mtimes are kept as stored in the archive, so re-extracting over an existing
    build tree does not make cmake rebuild everything. The submodule's ``.git`` pointer
    file is skipped: it points outside the tree and would only confuse build-info.
    """
    done = _read_stamp(dest, sdist_sha256)
    if done is not None:
        on_progress(Phase.EXTRACT, 100.0, f"reusing extracted tree {dest}")
        return done
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    with tarfile.open(sdist, "r:*") as tf:
        top = _top_dir(tf)
        prefix = f"{top}/{_VENDOR}"
        members = tf.getmembers()
        wanted: list[tarfile.TarInfo] = []
        for member in members:
            if not member.name.startswith(prefix):
                continue
            rel = member.name[len(prefix) :]
            if not rel or rel == ".git":
                continue
            wanted.append(member.replace(name=rel, deep=False))
        if not any(m.name == "CMakeLists.txt" for m in wanted):
            raise SourceLayoutError(f"{sdist.name} has no {_VENDOR}CMakeLists.txt")
        for index, member in enumerate(wanted, start=1):
            # filter="data" refuses absolute paths, `..`, links out of the tree and devices.
            try:
                tf.extract(member, dest, filter="data")
            except tarfile.FilterError as exc:
                raise SourceLayoutError(f"{sdist.name}: unsafe member {member.name!r}: {exc}") from exc
            if index % 200 == 0 or index == len(wanted):
                on_progress(Phase.EXTRACT, 100.0 * index / len(wanted), member.name)
        commit = _read_commit(tf, top)
    if not any(dest.joinpath("models").glob(VOCAB_GLOB)):
        raise SourceLayoutError(f"{sdist.name} has no {_VENDOR}models/{VOCAB_GLOB}")
    stamp = {"sdist_sha256": sdist_sha256, "commit": commit}
    atomic_write_bytes(dest / _STAMP, json.dumps(stamp, sort_keys=True).encode())
    return ExtractedSource(source_dir=dest, commit=commit)
