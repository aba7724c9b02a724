"""``provision_engine``: one entry point that turns a pool's ``engine`` config into something to run.

Each mode lives in its own ``_<mode>_mode`` module; this one checks the kind against the
mode and routes. Every failure is an ``EngineModeError`` (or another ``ProvisioningError``)
whose message says what to change.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from msgspec import UNSET

from llorch_contracts.config import EngineConfig, EngineKind, PolicyConfig, ProvisioningMode

from ._binary_mode import provision_binary
from ._cmake import SERVER_TARGET, EngineBuilder
from ._commands import RunCommand, Which
from ._container_mode import CDI_DIRS, provision_container
from ._errors import ProvisioningConfigError
from ._external_mode import provision_external
from ._host import HostProbe
from ._outbound import OutboundGate, OutboundHook
from ._package_mode import provision_package
from ._progress import ProgressCallback, no_progress
from ._provisioned import ProvisionedEngine
from ._sdist_fetch import SdistFetcher
from ._source_mode import provision_source

# Engines we can build, download or find installed; the others are servers someone runs.
_LOCAL_KINDS = {EngineKind.llamacpp: SERVER_TARGET}
_REMOTE_ONLY_MODES = (ProvisioningMode.external, ProvisioningMode.container)


def provision_engine(
    engine: EngineConfig,
    *,
    policy: PolicyConfig,
    cache_root: Path,
    on_progress: ProgressCallback = no_progress,
    uses_gpu: bool = False,
    hook: OutboundHook | None = None,
    which: Which = shutil.which,
    run: RunCommand = subprocess.run,
    builder: EngineBuilder | None = None,
    fetcher: SdistFetcher | None = None,
    host: HostProbe | None = None,
    cdi_dirs: Sequence[Path] = CDI_DIRS,
) -> ProvisionedEngine:
    """Provision ``engine`` in its configured mode and return what pool-managerd needs to run it.

    Blocks (builds, downloads, subprocesses), so services call it from a worker thread.
    ``cache_root`` is the engine cache root (``pool_managerd.cache_dir``). ``hook`` is the
    outbound policy hook, by default ``OutboundGate.from_policy(policy)``; ``uses_gpu``
    says whether the pool's replicas get GPUs (container mode then checks the NVIDIA
    container setup). ``which``, ``run``, ``builder``, ``fetcher``, ``host`` and ``cdi_dirs``
    replace the host's tools in tests.
    """
    kind = EngineKind(engine.kind)
    if kind == EngineKind.mock:
        return ProvisionedEngine(
            mode="mock", kind=kind, detail="mock engine: served in-process, nothing to run"
        )
    prov = engine.provisioning
    mode = ProvisioningMode(prov.mode)
    executable = _LOCAL_KINDS.get(kind)
    if executable is None and mode not in _REMOTE_ONLY_MODES:
        raise ProvisioningConfigError(
            f"engine kind {kind!s} cannot be provisioned in {mode!s} mode: only llama.cpp is built, "
            f"downloaded or taken from a package here. Run {kind!s} yourself and use mode external "
            "(or mode container with its image)."
        )
    gate = hook if hook is not None else OutboundGate.from_policy(policy)
    if mode == ProvisioningMode.source:
        return provision_source(
            kind,
            prov.source,
            cache_root=cache_root,
            on_progress=on_progress,
            hook=gate,
            builder=builder,
            fetcher=fetcher,
            host=host,
        )
    if mode == ProvisioningMode.external:
        if prov.external is UNSET:
            raise ProvisioningConfigError("mode external needs provisioning.external.url")
        return provision_external(kind, prov.external)
    if mode == ProvisioningMode.container:
        if prov.container is UNSET:
            raise ProvisioningConfigError("mode container needs provisioning.container (image, tag)")
        return provision_container(
            kind,
            prov.container,
            uses_gpu=uses_gpu,
            hook=gate,
            which=which,
            run=run,
            on_progress=on_progress,
            cdi_dirs=cdi_dirs,
        )
    assert executable is not None  # only llama.cpp reaches the local modes (checked above)
    if mode == ProvisioningMode.binary:
        if prov.binary is UNSET:
            raise ProvisioningConfigError("mode binary needs provisioning.binary (path, or url and sha256)")
        return provision_binary(
            kind,
            prov.binary,
            policy=policy,
            cache_root=cache_root,
            on_progress=on_progress,
            hook=gate,
            run=run,
            executable=executable,
        )
    if prov.package is UNSET:
        raise ProvisioningConfigError("mode package needs provisioning.package (manager, name)")
    return provision_package(
        kind,
        prov.package,
        policy=policy,
        on_progress=on_progress,
        which=which,
        run=run,
        default_executable=executable,
    )
