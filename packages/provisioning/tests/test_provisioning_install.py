"""ensure_llamacpp_source: build once, reuse only what verifies, never expose a half install."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from llorch_provisioning import (
    BuildError,
    ChecksumMismatchError,
    EngineInstall,
    HostProbe,
    LocalSdistFetcher,
    ensure_llamacpp_source,
    read_manifest,
)
from llorch_provisioning.testing import STUB_COMMIT, StubServerBuilder

VERSION = "9.9.9"


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, float, str]] = []

    def __call__(self, phase: str, pct: float, line: str) -> None:
        self.events.append((phase, pct, line))

    @property
    def phases(self) -> list[str]:
        seen: list[str] = []
        for phase, _, _ in self.events:
            if not seen or seen[-1] != phase:
                seen.append(phase)
        return seen


def _ensure(
    cache: Path,
    fetcher: LocalSdistFetcher,
    builder: StubServerBuilder,
    host: HostProbe,
    rec: Recorder | None = None,
) -> EngineInstall:
    return ensure_llamacpp_source(
        VERSION, cache, rec if rec is not None else Recorder(), builder=builder, fetcher=fetcher, host=host
    )


def test_first_run_builds_and_writes_a_verifiable_manifest(
    tmp_path: Path, stub_sdist: Path, host: HostProbe
) -> None:
    fetcher, builder, rec = LocalSdistFetcher(path=stub_sdist), StubServerBuilder(), Recorder()
    inst = _ensure(tmp_path, fetcher, builder, host, rec)

    assert not inst.reused
    assert inst.install_dir == tmp_path / "engines" / "llamacpp" / "9.9.9-cpu"
    assert inst.binary_path == inst.install_dir / "bin" / "llama-server"
    assert inst.sha256 == hashlib.sha256(inst.binary_path.read_bytes()).hexdigest()
    assert inst.engine_version == "version: 0.0.0-stub (build 0, commit 0c1e570)"
    assert inst.llamacpp_commit == STUB_COMMIT
    assert "-DGGML_CUDA=OFF" in inst.flags
    assert "-DLLAMA_BUILD_COMMIT=0c1e570" in inst.flags
    assert builder.flags_seen == [inst.flags]
    assert inst.vocab_path().read_bytes() == b"spm-vocab"
    assert (inst.vocab_dir / "ggml-vocab-gpt-2.gguf").is_file()

    on_disk = json.loads((inst.install_dir / "manifest.json").read_text())
    assert on_disk["binary_sha256"] == inst.sha256
    assert on_disk["version"] == VERSION
    assert on_disk["variant"] == "cpu"
    assert on_disk["vocab_files"] == ["ggml-vocab-gpt-2.gguf", "ggml-vocab-llama-spm.gguf"]
    assert rec.phases == ["verify", "download", "extract", "build", "install"]
    # The scratch tree is gone and no staging directory is left behind.
    leftovers = sorted(p.name for p in inst.install_dir.parent.iterdir())
    assert leftovers == [".9.9.9-cpu.lock", "9.9.9-cpu"]


def test_second_run_reuses_without_fetching_or_building(
    tmp_path: Path, stub_sdist: Path, host: HostProbe
) -> None:
    fetcher, builder = LocalSdistFetcher(path=stub_sdist), StubServerBuilder()
    first = _ensure(tmp_path, fetcher, builder, host)
    rec = Recorder()
    second = _ensure(tmp_path, fetcher, builder, host, rec)

    assert second.reused
    assert builder.calls == 1
    assert "download" not in rec.phases
    assert second.sha256 == first.sha256
    assert second.binary_path == first.binary_path
    assert rec.phases == ["verify"]
    assert rec.events[-1][1] == 100.0


def test_tampered_binary_fails_verification_and_is_rebuilt(
    tmp_path: Path, stub_sdist: Path, host: HostProbe
) -> None:
    fetcher, builder = LocalSdistFetcher(path=stub_sdist), StubServerBuilder()
    first = _ensure(tmp_path, fetcher, builder, host)
    with first.binary_path.open("a") as fh:
        fh.write("# tampered\n")

    rec = Recorder()
    again = _ensure(tmp_path, fetcher, builder, host, rec)

    assert not again.reused
    assert builder.calls == 2
    assert any("does not match manifest" in line for _, _, line in rec.events)
    assert hashlib.sha256(again.binary_path.read_bytes()).hexdigest() == again.sha256 == first.sha256


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda h: replace(h, cpu_fingerprint="cpu-b"), id="other-cpu"),
        pytest.param(lambda h: replace(h, nvcc_path="/usr/bin/nvcc", nvidia_gpu_present=True), id="cuda"),
    ],
)
def test_a_different_host_does_not_reuse_the_cache(
    tmp_path: Path, stub_sdist: Path, host: HostProbe, change: object
) -> None:
    fetcher, builder = LocalSdistFetcher(path=stub_sdist), StubServerBuilder()
    _ensure(tmp_path, fetcher, builder, host)
    other_host = change(host)  # type: ignore[operator]
    other = _ensure(tmp_path, fetcher, builder, other_host)
    assert not other.reused
    assert builder.calls == 2


def test_cuda_host_builds_the_cuda_variant(tmp_path: Path, stub_sdist: Path, host: HostProbe) -> None:
    cuda_host = replace(host, nvcc_path="/usr/local/bin/nvcc", nvidia_gpu_present=True)
    inst = _ensure(tmp_path, LocalSdistFetcher(path=stub_sdist), StubServerBuilder(), cuda_host)
    assert inst.install_dir.name == "9.9.9-cuda"
    assert "-DGGML_CUDA=ON" in inst.flags


def test_corrupt_manifest_is_not_trusted(tmp_path: Path, stub_sdist: Path, host: HostProbe) -> None:
    fetcher, builder = LocalSdistFetcher(path=stub_sdist), StubServerBuilder()
    first = _ensure(tmp_path, fetcher, builder, host)
    manifest_path = first.install_dir / "manifest.json"
    manifest_path.write_text('{"engine": "llamacpp", "surprise": true}')
    assert read_manifest(manifest_path) is None
    assert not _ensure(tmp_path, fetcher, builder, host).reused


def test_failed_build_leaves_no_install_and_the_next_run_recovers(
    tmp_path: Path, stub_sdist: Path, host: HostProbe
) -> None:
    fetcher = LocalSdistFetcher(path=stub_sdist)
    with pytest.raises(BuildError, match="stub compiler error"):
        _ensure(tmp_path, fetcher, StubServerBuilder(fail_build=True), host)
    engines = tmp_path / "engines" / "llamacpp"
    assert not (engines / "9.9.9-cpu").exists()
    assert not list(engines.glob(".staging-*"))
    # The extracted tree is kept so that a rerun resumes instead of starting over.
    assert (engines / "work" / "9.9.9-cpu" / "src" / "CMakeLists.txt").is_file()

    assert not _ensure(tmp_path, fetcher, StubServerBuilder(), host).reused


def test_binary_that_cannot_run_is_not_installed(tmp_path: Path, stub_sdist: Path, host: HostProbe) -> None:
    with pytest.raises(BuildError) as err:
        _ensure(tmp_path, LocalSdistFetcher(path=stub_sdist), StubServerBuilder(version_exit_code=3), host)
    assert err.value.returncode == 3
    engines = tmp_path / "engines" / "llamacpp"
    assert not (engines / "9.9.9-cpu").exists()
    assert not list(engines.glob(".staging-*"))


def test_concurrent_runs_build_once_and_agree(tmp_path: Path, stub_sdist: Path, host: HostProbe) -> None:
    fetcher, builder = LocalSdistFetcher(path=stub_sdist), StubServerBuilder(delay_s=0.3)
    results: list[EngineInstall] = []
    errors: list[BaseException] = []
    recorders = [Recorder() for _ in range(3)]

    def run(rec: Recorder) -> None:
        try:
            results.append(_ensure(tmp_path, fetcher, builder, host, rec))
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(rec,)) for rec in recorders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert errors == []
    assert builder.calls == 1
    assert len({r.sha256 for r in results}) == 1
    assert sorted(r.reused for r in results) == [False, True, True]
    waited = [rec for rec in recorders if any(phase == "lock" for phase, _, _ in rec.events)]
    assert len(waited) == 2


def test_local_sdist_that_does_not_match_its_pin_is_refused(
    tmp_path: Path, stub_sdist: Path, host: HostProbe
) -> None:
    builder = StubServerBuilder()
    fetcher = LocalSdistFetcher(path=stub_sdist, expected_sha256="0" * 64)
    with pytest.raises(ChecksumMismatchError):
        _ensure(tmp_path, fetcher, builder, host)
    assert builder.calls == 0
    assert not (tmp_path / "engines" / "llamacpp" / "9.9.9-cpu").exists()
