"""package mode: use the packaged engine, never install it, and say exactly how to."""

from __future__ import annotations

import subprocess
from pathlib import Path

import msgspec
import pytest

from llorch_contracts.config import EngineConfig, PackageProvisioning, PolicyConfig
from llorch_provisioning import (
    PackageNotInstalledError,
    ToolNotFoundError,
    install_command,
    provision_engine,
)
from llorch_provisioning.testing import FakeCommands


def _engine(package: dict[str, str]) -> EngineConfig:
    doc = {"kind": "llamacpp", "provisioning": {"mode": "package", "package": package}}
    return msgspec.convert(doc, EngineConfig)


def _policy(*, installs: bool) -> PolicyConfig:
    return msgspec.convert({"allow_package_installs": installs}, PolicyConfig)


def _server(tmp_path: Path) -> Path:
    path = tmp_path / "llama-server"
    path.write_text("#!/bin/sh\necho 'version: 7000 (1234567)' >&2\n")
    path.chmod(0o755)
    return path


@pytest.mark.req("ORCH-3204")
def test_the_installed_engine_is_used(tmp_path: Path) -> None:
    server = _server(tmp_path)
    host = FakeCommands(on_path={"apt-get": "/usr/bin/apt-get", "llama-server": str(server)})
    engine = provision_engine(
        _engine({"manager": "apt", "name": "llama.cpp"}),
        policy=_policy(installs=True),
        cache_root=tmp_path,
        which=host.which,
        run=subprocess.run,
    )
    assert (engine.mode, engine.binary_path, engine.engine_version) == (
        "package",
        server,
        "version: 7000 (1234567)",
    )


@pytest.mark.req("ORCH-3204")
@pytest.mark.parametrize("installs", [False, True])
def test_a_missing_engine_fails_with_the_exact_command_and_installs_nothing(
    tmp_path: Path, installs: bool
) -> None:
    host = FakeCommands(on_path={"apt-get": "/usr/bin/apt-get"})
    with pytest.raises(PackageNotInstalledError) as info:
        provision_engine(
            _engine({"manager": "apt", "name": "llama.cpp", "version": "0.0.4242-1"}),
            policy=_policy(installs=installs),
            cache_root=tmp_path,
            which=host.which,
            run=host.run,
        )
    assert info.value.install_command == "sudo apt-get install -y llama.cpp=0.0.4242-1"
    assert "Install it with:\n  sudo apt-get install -y llama.cpp=0.0.4242-1" in str(info.value)
    assert f"policy.allow_package_installs is {'true' if installs else 'false'}" in str(info.value)
    assert host.calls == []  # nothing was run, least of all a package manager


def test_a_manager_this_system_lacks_is_named(tmp_path: Path) -> None:
    host = FakeCommands(on_path={"apt-get": "/usr/bin/apt-get"})
    with pytest.raises(ToolNotFoundError, match=r"missing: dnf \(not on PATH\)") as info:
        provision_engine(
            _engine({"manager": "dnf", "name": "llama-cpp"}),
            policy=_policy(installs=True),
            cache_root=tmp_path,
            which=host.which,
            run=host.run,
        )
    assert "package.manager is dnf" in str(info.value)


def test_a_configured_executable_name_is_looked_up(tmp_path: Path) -> None:
    server = _server(tmp_path)
    host = FakeCommands(on_path={"brew": "/opt/homebrew/bin/brew", "llama-server-cuda": str(server)})
    engine = provision_engine(
        _engine({"manager": "brew", "name": "llama.cpp", "executable": "llama-server-cuda"}),
        policy=_policy(installs=True),
        cache_root=tmp_path,
        which=host.which,
        run=subprocess.run,
    )
    assert engine.binary_path == server


@pytest.mark.parametrize(
    ("spec", "manager_exe", "command", "note"),
    [
        (
            {"manager": "dnf", "name": "llama-cpp", "version": "b4242"},
            "dnf",
            "sudo dnf install -y llama-cpp-b4242",
            "",
        ),
        (
            {"manager": "pacman", "name": "llama.cpp", "version": "1"},
            "pacman",
            "sudo pacman -S --needed llama.cpp",
            "not pinned",
        ),
        ({"manager": "aur", "name": "llama.cpp-cuda"}, "yay", "yay -S --needed llama.cpp-cuda", ""),
        (
            {"manager": "brew", "name": "llama.cpp", "version": "1"},
            "brew",
            "brew install llama.cpp",
            "versioned formulae",
        ),
        (
            {"manager": "pip", "name": "llama-cpp-server", "version": "1.0"},
            "pip3",
            "pip3 install llama-cpp-server==1.0",
            "",
        ),
    ],
)
def test_install_commands_per_manager(
    spec: dict[str, str], manager_exe: str, command: str, note: str
) -> None:
    got_command, got_note = install_command(msgspec.convert(spec, PackageProvisioning), manager_exe)
    assert got_command == command
    assert note in got_note
