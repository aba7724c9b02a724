"""Where things live in the engine cache; the single place that spells out the layout."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ._host import Accelerator
from ._manifest import MANIFEST_NAME

ENGINE_NAME = "llamacpp"
SDIST_PROJECT = "llama-cpp-python"
PINNED_LLAMA_CPP_PYTHON_VERSION = "0.3.36"


def default_cache_root(env: Mapping[str, str]) -> Path:
    """``$XDG_CACHE_HOME/llama-orch``, else ``~/.cache/llama-orch``.

    ``env`` is passed in (normally the settings' view of ``os.environ``) so this module
    never reads the environment itself. Per the XDG spec a relative XDG_CACHE_HOME is ignored.
    """
    xdg = env.get("XDG_CACHE_HOME", "")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "llama-orch"
    home = env.get("HOME")
    base = Path(home) if home else Path("~").expanduser()
    return base / ".cache" / "llama-orch"


@dataclass(frozen=True, kw_only=True)
class EngineCacheLayout:
    """Paths for one ``(version, variant)`` of the llama.cpp engine under ``cache_root``.

    ``engines/llamacpp/<version>-<variant>/`` is the finished install (bin/, vocab/,
    manifest.json) and only ever appears by an atomic rename; ``work/`` holds the
    extracted tree and the cmake build dir, kept after a failure so a rerun resumes.
    """

    cache_root: Path
    version: str
    variant: Accelerator

    @property
    def key(self) -> str:
        """``<version>-<variant>``, e.g. ``0.3.36-cpu``."""
        return f"{self.version}-{self.variant}"

    @property
    def engines_dir(self) -> Path:
        """``<cache_root>/engines/llamacpp``."""
        return self.cache_root / "engines" / ENGINE_NAME

    @property
    def install_dir(self) -> Path:
        """The finished install for this version and variant."""
        return self.engines_dir / self.key

    @property
    def manifest_path(self) -> Path:
        """The install's manifest."""
        return self.install_dir / MANIFEST_NAME

    @property
    def downloads_dir(self) -> Path:
        """Verified sdists, kept so a rebuild needs no network."""
        return self.engines_dir / "downloads"

    @property
    def work_dir(self) -> Path:
        """Scratch space for this build: ``src/`` and ``build/``."""
        return self.engines_dir / "work" / self.key

    @property
    def source_dir(self) -> Path:
        """The extracted llama.cpp tree."""
        return self.work_dir / "src"

    @property
    def build_dir(self) -> Path:
        """The cmake binary dir."""
        return self.work_dir / "build"

    @property
    def lock_path(self) -> Path:
        """The flock file that serialises builds of this version and variant."""
        return self.engines_dir / f".{self.key}.lock"
