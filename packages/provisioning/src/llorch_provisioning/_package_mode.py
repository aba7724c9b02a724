"""``package`` mode: use the engine a system package manager installed (ORCH-3204).

We never run sudo or a package manager ourselves: installing system packages from a
daemon would need root and reach the network behind the operator's back. When the engine
is missing, the error carries the exact command to run instead.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from msgspec import UNSET

from llorch_contracts.config import EngineKind, PackageManager, PackageProvisioning, PolicyConfig

from ._binary_mode import DEFAULT_VERSION_TIMEOUT_S, inspect_engine_binary
from ._commands import RunCommand, Which
from ._engine_version import version_line
from ._errors import PackageNotInstalledError, ToolNotFoundError
from ._progress import Phase, ProgressCallback
from ._provisioned import ProvisionedEngine


@dataclass(frozen=True, kw_only=True)
class _Manager:
    executables: tuple[str, ...]  # any one of them on PATH means the manager is there
    sudo: bool
    install: tuple[str, ...]  # argv after the executable
    pin: str | None  # how a version is written after the name; None: the manager cannot pin
    note: str = ""


_MANAGERS: dict[PackageManager, _Manager] = {
    PackageManager.apt: _Manager(executables=("apt-get",), sudo=True, install=("install", "-y"), pin="="),
    PackageManager.dnf: _Manager(executables=("dnf",), sudo=True, install=("install", "-y"), pin="-"),
    PackageManager.pacman: _Manager(executables=("pacman",), sudo=True, install=("-S", "--needed"), pin=None),
    # AUR helpers call sudo themselves and refuse to run as root.
    PackageManager.aur: _Manager(
        executables=("paru", "yay"), sudo=False, install=("-S", "--needed"), pin=None
    ),
    PackageManager.brew: _Manager(
        executables=("brew",),
        sudo=False,
        install=("install",),
        pin=None,
        note="Homebrew pins versions only through versioned formulae (name@version).",
    ),
    PackageManager.pip: _Manager(executables=("pip3", "pip"), sudo=False, install=("install",), pin="=="),
}


def install_command(spec: PackageProvisioning, manager_executable: str) -> tuple[str, str]:
    """The shell command that installs ``spec`` with this manager, and a note on version pinning."""
    manager = _MANAGERS[PackageManager(spec.manager)]
    package = spec.name
    note = manager.note
    if spec.version is not UNSET:
        if manager.pin is not None:
            package = f"{spec.name}{manager.pin}{spec.version}"
        elif not note:
            note = f"{spec.manager} installs the repository's current version; package.version is not pinned."
    sudo = ("sudo",) if manager.sudo else ()
    argv = (*sudo, manager_executable, *manager.install, package)
    return shlex.join(argv), note


def provision_package(
    kind: EngineKind,
    spec: PackageProvisioning,
    *,
    policy: PolicyConfig,
    on_progress: ProgressCallback,
    which: Which,
    run: RunCommand,
    default_executable: str,
    version_timeout_s: float = DEFAULT_VERSION_TIMEOUT_S,
) -> ProvisionedEngine:
    """Find the packaged engine on PATH and check it runs; otherwise say how to install it."""
    manager = _MANAGERS[PackageManager(spec.manager)]
    found = next((exe for exe in manager.executables if which(exe) is not None), None)
    if found is None:
        raise ToolNotFoundError(
            tuple(f"{exe} (not on PATH)" for exe in manager.executables),
            f"package.manager is {spec.manager!s}, which this system does not have; set it to this "
            "system's package manager, or choose another provisioning mode.",
        )
    executable = spec.executable if spec.executable is not UNSET else default_executable
    located = which(executable)
    if located is None:
        command, note = install_command(spec, found)
        switch = "true" if policy.allow_package_installs else "false"
        note = (
            f"{note} llama-orch never runs sudo or a package manager itself "
            f"(policy.allow_package_installs is {switch}); run the command, then restart pool-managerd."
        ).strip()
        raise PackageNotInstalledError(executable, command, note)
    path = Path(located)
    engine_version = version_line(inspect_engine_binary(path, run=run, timeout_s=version_timeout_s))
    on_progress(Phase.VERIFY, 100.0, f"{path}: {engine_version}")
    return ProvisionedEngine(
        mode="package",
        kind=kind,
        binary_path=path,
        engine_version=engine_version,
        detail=f"{executable} from {spec.manager!s} package {spec.name} at {path}",
    )
