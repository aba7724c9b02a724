"""``binary`` mode: an engine executable the operator points at (``path``) or pins (``url`` + sha256)."""

from __future__ import annotations

import os
from pathlib import Path

from msgspec import UNSET

from llorch_contracts.config import BinaryProvisioning, EngineKind, PolicyConfig

from ._binary_fetch import fetch_engine_binary
from ._commands import RunCommand
from ._engine_version import read_engine_version, version_line
from ._errors import BuildError, EngineBinaryError, PolicyForbidsError, ProvisioningConfigError
from ._outbound import OutboundHook
from ._progress import Phase, ProgressCallback
from ._provisioned import ProvisionedEngine
from ._urls import redact_url

DEFAULT_VERSION_TIMEOUT_S = 30.0


def inspect_engine_binary(
    path: Path, *, run: RunCommand, timeout_s: float = DEFAULT_VERSION_TIMEOUT_S
) -> str:
    """Check ``path`` is an executable regular file that answers ``--version``; return its output.

    Each failure names the path and the one thing wrong with it, since this is what an
    operator sees after mistyping ``binary.path`` or copying a binary built elsewhere.
    """
    if not path.exists():
        raise EngineBinaryError(path, "does not exist")
    if not path.is_file():
        raise EngineBinaryError(path, "is not a regular file")
    if not os.access(path, os.X_OK):
        raise EngineBinaryError(path, f"is not executable (try: chmod +x {path})")
    try:
        return read_engine_version(path, run=run, timeout_s=timeout_s)
    except BuildError as exc:
        tail = "; ".join(exc.output_tail[-3:]) or "no output"
        raise EngineBinaryError(path, f"`--version` failed (exit {exc.returncode}): {tail}") from exc


def provision_binary(
    kind: EngineKind,
    spec: BinaryProvisioning,
    *,
    policy: PolicyConfig,
    cache_root: Path,
    on_progress: ProgressCallback,
    hook: OutboundHook,
    run: RunCommand,
    executable: str,
    version_timeout_s: float = DEFAULT_VERSION_TIMEOUT_S,
) -> ProvisionedEngine:
    """Use ``spec.path`` as is, or download ``spec.url`` (when policy allows) and use that."""
    if spec.path is not UNSET:
        path = Path(spec.path).absolute()
        detail = f"configured binary {path}"
    elif spec.url is not UNSET:
        # POL-1006: the switch is checked here, not only in the hook, because the hook lets
        # loopback URLs through (POL-1003) and the switch must hold for them too.
        if not policy.allow_binary_downloads:
            raise PolicyForbidsError("policy.allow_binary_downloads", f"binary.url ({redact_url(spec.url)})")
        if spec.sha256 is UNSET:
            raise ProvisioningConfigError(
                "binary.url needs binary.sha256: a downloaded engine is run only after its digest is checked"
            )
        path = fetch_engine_binary(
            spec.url,
            spec.sha256,
            executable=executable,
            cache_root=cache_root,
            hook=hook,
            on_progress=on_progress,
        )
        detail = f"downloaded {redact_url(spec.url)} ({spec.sha256}) to {path}"
    else:
        raise ProvisioningConfigError("binary mode needs binary.path or binary.url")
    output = inspect_engine_binary(path, run=run, timeout_s=version_timeout_s)
    engine_version = version_line(output)
    on_progress(Phase.VERIFY, 100.0, f"{path}: {engine_version}")
    return ProvisionedEngine(
        mode="binary", kind=kind, binary_path=path, engine_version=engine_version, detail=detail
    )
