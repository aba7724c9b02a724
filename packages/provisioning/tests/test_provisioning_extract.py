"""Extraction through the public entry point: layout checks and hostile archives."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from llorch_provisioning import HostProbe, LocalSdistFetcher, SourceLayoutError, ensure_llamacpp_source
from llorch_provisioning.testing import StubServerBuilder, write_stub_sdist


def _ensure(cache: Path, sdist: Path, host: HostProbe, builder: StubServerBuilder) -> None:
    ensure_llamacpp_source("9.9.9", cache, builder=builder, fetcher=LocalSdistFetcher(path=sdist), host=host)


def test_sdist_without_vendored_llamacpp_is_rejected(tmp_path: Path, host: HostProbe) -> None:
    sdist = write_stub_sdist(tmp_path / "s.tar.gz", with_vendor=False)
    builder = StubServerBuilder()
    with pytest.raises(SourceLayoutError, match=r"CMakeLists\.txt"):
        _ensure(tmp_path / "cache", sdist, host, builder)
    assert builder.calls == 0


def test_path_traversal_in_the_archive_is_refused(tmp_path: Path, host: HostProbe) -> None:
    sdist = tmp_path / "evil.tar.gz"
    with tarfile.open(sdist, "w:gz") as tf:
        for name, data in [
            ("llama_cpp_python-9.9.9/vendor/llama.cpp/CMakeLists.txt", b"x"),
            ("llama_cpp_python-9.9.9/vendor/llama.cpp/../../../../escaped.txt", b"pwned"),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    with pytest.raises(SourceLayoutError, match="unsafe member"):
        _ensure(tmp_path / "cache", sdist, host, StubServerBuilder())
    assert not any(p.name == "escaped.txt" for p in tmp_path.rglob("*"))


def test_submodule_git_pointer_is_not_extracted(tmp_path: Path, host: HostProbe, stub_sdist: Path) -> None:
    builder = StubServerBuilder()
    ensure_llamacpp_source(
        "9.9.9",
        tmp_path / "cache",
        builder=builder,
        fetcher=LocalSdistFetcher(path=stub_sdist),
        host=host,
        keep_build_tree=True,
    )
    src = tmp_path / "cache" / "engines" / "llamacpp" / "work" / "9.9.9-cpu" / "src"
    assert (src / "CMakeLists.txt").is_file()
    assert not (src / ".git").exists()
