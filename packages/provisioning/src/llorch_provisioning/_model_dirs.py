"""Which local files a model reference from a client may name (CAT-1080..1082).

Operators name files in the configuration (`pools[].model.ref`); clients name them through
the catalog API and pool reloads. A client's path is allowed only when it resolves, symlinks
included, inside a model directory: the model cache or one of `catalog.model_dirs`.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from ._errors import ModelPathNotAllowedError
from ._model_record import discard
from ._model_ref import FileModelRef, GenModelRef, HfModelRef, ModelRef, UrlModelRef, parse_model_ref
from ._models import download_path, models_dir, tiny_model_path


def _real(path: Path) -> Path:
    # realpath, not normpath: a symlink inside a model directory that points outside is outside.
    return Path(os.path.realpath(path))


@dataclass(frozen=True, kw_only=True)
class ModelDirs:
    """The resolved model directories, plus the refs the configuration itself names (trusted)."""

    dirs: tuple[Path, ...]
    configured_refs: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls, *, cache_root: Path, extra_dirs: Iterable[str] = (), configured_refs: Collection[str] = ()
    ) -> ModelDirs:
        """`<cache_root>/models` and `extra_dirs` (`catalog.model_dirs`, `~` expanded), resolved."""
        dirs = [models_dir(cache_root.expanduser()), *(Path(d).expanduser() for d in extra_dirs)]
        return cls(dirs=tuple(_real(d) for d in dirs), configured_refs=frozenset(configured_refs))

    def contains(self, path: Path) -> bool:
        """Whether `path`, resolved, is inside one of the directories (symlinks followed)."""
        real = _real(path)
        return any(real.is_relative_to(d) for d in self.dirs)

    def resolve(self, path: Path, ref: str) -> Path:
        """`path` resolved when it is inside a model directory, else `ModelPathNotAllowedError`."""
        if not self.contains(path):
            raise ModelPathNotAllowedError(ref)
        return _real(path)

    def check_ref(self, raw: str, *, base_dir: Path) -> ModelRef:
        """Parse a client's ref and refuse a local path outside the model directories.

        Touches the file system only to resolve symlinks; the refusal is the same whether
        the file exists or not (CAT-1081). Refs the configuration names are accepted as is.
        """
        parsed = parse_model_ref(raw, base_dir=base_dir)
        if isinstance(parsed, FileModelRef) and raw not in self.configured_refs:
            self.resolve(parsed.path, raw)
        return parsed


def cached_model_path(parsed: ModelRef, cache_root: Path) -> Path | None:
    """Where the cache keeps the file of a fetched or generated ref; None for a local file ref.

    The path is derived from the ref alone, never from a path a client supplied (CAT-1083).
    """
    if isinstance(parsed, UrlModelRef | HfModelRef):
        return download_path(cache_root, parsed.url)
    if isinstance(parsed, GenModelRef):
        return tiny_model_path(cache_root, parsed.seed)
    return None


def discard_cached_model(parsed: ModelRef, cache_root: Path) -> bool:
    """Delete the file (and its record) the cache fetched or generated for `parsed` (CAT-1083).

    Returns whether there was such a path; local file refs are never touched (CAT-1012).
    """
    path = cached_model_path(parsed, cache_root)
    if path is None or not _real(path).is_relative_to(_real(models_dir(cache_root))):
        return False
    discard(path)
    return True
