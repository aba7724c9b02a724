"""``ensure_llamacpp_source``: reuse a verified cached engine or build one, safely under a lock."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ._cmake import SERVER_TARGET, CMakeBuilder, EngineBuilder, build_info_options, cmake_options
from ._engine_version import read_engine_version, version_line
from ._extract import VOCAB_GLOB, extract_llamacpp
from ._files import exclusive_lock, replace_dir, sha256_file
from ._host import Accelerator, HostProbe, probe_host
from ._layout import ENGINE_NAME, EngineCacheLayout
from ._manifest import MANIFEST_NAME, EngineManifest, read_manifest, write_manifest
from ._progress import Phase, ProgressCallback, no_progress
from ._sdist_fetch import PyPIFetcher, SdistFetcher


@dataclass(frozen=True, kw_only=True)
class EngineInstall:
    """A ready-to-run ``llama-server`` in the cache, verified against its manifest."""

    binary_path: Path
    version: str
    variant: Accelerator
    flags: tuple[str, ...]
    sha256: str
    vocab_dir: Path
    engine_version: str
    llamacpp_commit: str | None
    install_dir: Path
    manifest: EngineManifest
    reused: bool

    def vocab_path(self, name: str = "llama-spm") -> Path:
        """Path of ``ggml-vocab-<name>.gguf`` in the install's vocab dir."""
        return self.vocab_dir / f"ggml-vocab-{name}.gguf"


def _install_from(layout: EngineCacheLayout, manifest: EngineManifest, *, reused: bool) -> EngineInstall:
    return EngineInstall(
        binary_path=layout.install_dir / manifest.binary,
        version=manifest.version,
        variant=layout.variant,
        flags=(*manifest.cmake_options, *manifest.build_info_options),
        sha256=manifest.binary_sha256,
        vocab_dir=layout.install_dir / manifest.vocab_dir,
        engine_version=version_line(manifest.engine_version),
        llamacpp_commit=manifest.llamacpp_commit,
        install_dir=layout.install_dir,
        manifest=manifest,
        reused=reused,
    )


def _binary_problem(layout: EngineCacheLayout, manifest: EngineManifest) -> str | None:
    binary = layout.install_dir / manifest.binary
    try:
        actual = sha256_file(binary)
    except OSError as exc:
        # Missing, or renamed away by a concurrent install between our reads.
        return f"{binary} is unreadable: {exc.strerror}"
    if actual != manifest.binary_sha256:
        return f"binary sha256 {actual} does not match manifest {manifest.binary_sha256}"
    vocab_dir = layout.install_dir / manifest.vocab_dir
    missing = [name for name in manifest.vocab_files if not (vocab_dir / name).is_file()]
    if missing:
        return f"vocab files missing: {', '.join(missing)}"
    return None


def _why_not_reusable(
    layout: EngineCacheLayout, manifest: EngineManifest | None, options: tuple[str, ...], host: HostProbe
) -> str | None:
    if manifest is None:
        return f"no valid {MANIFEST_NAME} in {layout.install_dir}"
    identity = (manifest.engine, manifest.version, manifest.variant)
    checks = (
        (identity == (ENGINE_NAME, layout.version, layout.variant), f"manifest is for {identity}"),
        (manifest.cmake_options == options, "cmake options changed"),
        (manifest.cpu_fingerprint == host.cpu_fingerprint, "built for a different CPU (GGML_NATIVE)"),
    )
    for ok, reason in checks:
        if not ok:
            return reason
    return _binary_problem(layout, manifest)


def _try_reuse(
    layout: EngineCacheLayout, options: tuple[str, ...], host: HostProbe, on_progress: ProgressCallback
) -> EngineInstall | None:
    manifest = read_manifest(layout.manifest_path)
    reason = _why_not_reusable(layout, manifest, options, host)
    if reason is not None or manifest is None:
        on_progress(Phase.VERIFY, 0.0, f"cannot reuse cache: {reason}")
        return None
    on_progress(
        Phase.VERIFY, 100.0, f"reusing {layout.install_dir} (sha256 {manifest.binary_sha256} verified)"
    )
    return _install_from(layout, manifest, reused=True)


@dataclass(frozen=True, kw_only=True)
class _BuildContext:
    layout: EngineCacheLayout
    options: tuple[str, ...]
    host: HostProbe
    builder: EngineBuilder
    fetcher: SdistFetcher
    clock: Callable[[], float]
    keep_build_tree: bool


def _build_and_install(ctx: _BuildContext, on_progress: ProgressCallback) -> EngineInstall:
    layout = ctx.layout
    started = ctx.clock()
    sdist = ctx.fetcher.fetch(layout.version, layout.downloads_dir, on_progress)
    source = extract_llamacpp(sdist.path, sdist.sha256, layout.source_dir, on_progress)
    info = build_info_options(source.commit)
    built = ctx.builder.build(source.source_dir, layout.build_dir, (*ctx.options, *info), on_progress)
    on_progress(Phase.INSTALL, 0.0, f"installing into {layout.install_dir}")
    staging = Path(tempfile.mkdtemp(prefix=f".staging-{layout.key}-", dir=layout.engines_dir))
    staging.chmod(0o755)  # mkdtemp makes it 0700; the install should be readable like /usr/local
    try:
        binary = staging / "bin" / SERVER_TARGET
        binary.parent.mkdir()
        shutil.copy2(built, binary)
        binary.chmod(0o755)
        vocab_dir = staging / "vocab"
        vocab_dir.mkdir()
        vocab_files = sorted(p.name for p in source.models_dir.glob(VOCAB_GLOB))
        for name in vocab_files:
            shutil.copy2(source.models_dir / name, vocab_dir / name)
        engine_version = read_engine_version(binary)
        on_progress(Phase.INSTALL, 50.0, version_line(engine_version))
        manifest = EngineManifest(
            engine=ENGINE_NAME,
            version=layout.version,
            variant=str(layout.variant),
            sdist_filename=sdist.path.name,
            sdist_sha256=sdist.sha256,
            llamacpp_commit=source.commit,
            llamacpp_build_number=None,
            cmake_generator=ctx.builder.generator,
            cmake_options=ctx.options,
            build_info_options=info,
            binary=str(binary.relative_to(staging)),
            binary_sha256=sha256_file(binary),
            engine_version=engine_version,
            vocab_dir=str(vocab_dir.relative_to(staging)),
            vocab_files=tuple(vocab_files),
            cpu_fingerprint=ctx.host.cpu_fingerprint,
            build_seconds=round(ctx.clock() - started, 1),
        )
        write_manifest(staging / MANIFEST_NAME, manifest)
        replace_dir(staging, layout.install_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if not ctx.keep_build_tree:
        shutil.rmtree(layout.work_dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            layout.work_dir.parent.rmdir()  # only succeeds when no other build is in progress
    on_progress(Phase.INSTALL, 100.0, f"installed {layout.install_dir / manifest.binary}")
    return _install_from(layout, manifest, reused=False)


def ensure_llamacpp_source(
    version: str,
    cache_root: Path,
    on_progress: ProgressCallback = no_progress,
    *,
    builder: EngineBuilder | None = None,
    fetcher: SdistFetcher | None = None,
    host: HostProbe | None = None,
    clock: Callable[[], float] = time.monotonic,
    keep_build_tree: bool = False,
) -> EngineInstall:
    """Return a verified ``llama-server`` built from the llama-cpp-python ``version`` sdist.

    A cached install is reused when its manifest matches (version, variant, cmake options,
    CPU fingerprint) and the binary's sha256 still equals the recorded one. Otherwise the
    sdist is downloaded (sha256-checked), ``vendor/llama.cpp`` extracted and built, and the
    result moved into place atomically. An exclusive flock per ``(version, variant)`` makes
    concurrent callers wait for one build and then reuse it instead of building twice.
    """
    probe = host if host is not None else probe_host()
    layout = EngineCacheLayout(cache_root=cache_root, version=version, variant=probe.accelerator)
    options = cmake_options(probe.accelerator)
    found = _try_reuse(layout, options, probe, on_progress)
    if found is not None:
        return found

    def say_waiting() -> None:
        on_progress(Phase.LOCK, 0.0, f"waiting for another build of {layout.key} ({layout.lock_path})")

    with exclusive_lock(layout.lock_path, on_wait=say_waiting):
        # Whoever held the lock may just have finished the very build we need.
        found = _try_reuse(layout, options, probe, no_progress)
        if found is not None:
            on_progress(Phase.VERIFY, 100.0, f"reusing {layout.install_dir} built by another process")
            return found
        ctx = _BuildContext(
            layout=layout,
            options=options,
            host=probe,
            builder=builder if builder is not None else CMakeBuilder(),
            fetcher=fetcher if fetcher is not None else PyPIFetcher(),
            clock=clock,
            keep_build_tree=keep_build_tree,
        )
        return _build_and_install(ctx, on_progress)
