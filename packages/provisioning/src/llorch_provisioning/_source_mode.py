"""``source`` mode: llama.cpp built from the pinned llama-cpp-python sdist, or a planned git build."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from msgspec import UNSET

from llorch_contracts.config import EngineKind, SourceProvisioning

from ._cmake import CMakeBuilder, EngineBuilder
from ._errors import ChecksumMismatchError, GitSourceNotExecutedError, ProvisioningConfigError
from ._gated_urlopen import gated_url_opener
from ._git_plan import plan_git_source
from ._host import HostProbe, probe_host
from ._install import ensure_llamacpp_source
from ._layout import SDIST_PROJECT
from ._outbound import OutboundHook, OutboundPurpose
from ._progress import ProgressCallback
from ._provisioned import ProvisionedEngine
from ._sdist_fetch import FetchedSdist, PyPIFetcher, SdistFetcher


@dataclass(frozen=True, kw_only=True)
class _PinnedSdistFetcher:
    """Refuses an sdist whose digest is not ``source.sdist.sha256`` before anything is built."""

    inner: SdistFetcher
    expected_hex: str

    def fetch(self, version: str, downloads_dir: Path, on_progress: ProgressCallback) -> FetchedSdist:
        fetched = self.inner.fetch(version, downloads_dir, on_progress)
        if fetched.sha256 != self.expected_hex:
            raise ChecksumMismatchError(fetched.path, self.expected_hex, fetched.sha256)
        return fetched


def provision_source(
    kind: EngineKind,
    source: SourceProvisioning,
    *,
    cache_root: Path,
    on_progress: ProgressCallback,
    hook: OutboundHook,
    builder: EngineBuilder | None,
    fetcher: SdistFetcher | None,
    host: HostProbe | None,
) -> ProvisionedEngine:
    """Build (or reuse) ``llama-server`` from ``source.sdist``; ``source.git`` is only planned.

    ``source.sdist.sha256``, when given, is checked before building and against a reused
    cache entry (OC-POOL-3111). ``source.git`` raises ``GitSourceNotExecutedError`` with the
    validated plan: git builds need the network and are not run yet.
    """
    jobs = source.build_jobs or os.cpu_count() or 2  # 0 means one job per CPU
    if source.git is not UNSET:
        # Validates repo and ref (InvalidSourceSpecError) and shows the exact steps this host would run.
        accelerator = (host if host is not None else probe_host()).accelerator
        work_dir = cache_root / "engines" / "git" / "work"
        plan = plan_git_source(source.git.repo, source.git.ref, work_dir, accelerator=accelerator, jobs=jobs)
        raise GitSourceNotExecutedError(plan)
    if source.cmake_flags:
        # The cache key (the manifest's cmake options) would not include them, so a build with
        # other flags could be reused silently; refuse until ensure_llamacpp_source takes them.
        raise ProvisioningConfigError("source.cmake_flags are not supported yet; remove them")
    sdist = source.sdist
    if sdist.package != SDIST_PROJECT:
        raise ProvisioningConfigError(
            f"source.sdist.package must be {SDIST_PROJECT} (it vendors llama.cpp), not {sdist.package!r}"
        )
    if fetcher is None:
        # OC-POOL-3112: the index lookup and the download both go through the outbound hook.
        fetcher = PyPIFetcher(opener=gated_url_opener(hook, OutboundPurpose.ENGINE_SOURCE))
    expected = sdist.sha256.removeprefix("sha256:") if sdist.sha256 is not UNSET else None
    if expected is not None:
        fetcher = _PinnedSdistFetcher(inner=fetcher, expected_hex=expected)
    if builder is None:
        builder = CMakeBuilder(jobs=jobs)
    install = ensure_llamacpp_source(
        sdist.version, cache_root, on_progress, builder=builder, fetcher=fetcher, host=host
    )
    # A cached install is reused without fetching, so check what it was built from too (OC-POOL-3111).
    if expected is not None and install.manifest.sdist_sha256 != expected:
        raise ChecksumMismatchError(install.install_dir, expected, install.manifest.sdist_sha256)
    return ProvisionedEngine(
        mode="source",
        kind=kind,
        binary_path=install.binary_path,
        engine_version=install.engine_version,
        variant=str(install.variant),
        vocab_dir=install.vocab_dir,
        detail=f"built from {SDIST_PROJECT} {sdist.version} ({install.variant}) in {install.install_dir}",
    )
