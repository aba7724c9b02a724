"""container mode: runtime preflight, image presence/pull under the outbound policy, the run plan."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import msgspec
import pytest

from llorch_contracts.config import EngineConfig, PolicyConfig
from llorch_provisioning import (
    ContainerRunPlan,
    ContainerRuntimeError,
    OutboundDeniedError,
    OutboundGate,
    ToolNotFoundError,
    provision_engine,
)
from llorch_provisioning.testing import FakeCommands

DOCKER = "/usr/bin/docker"
PODMAN = "/usr/bin/podman"
IMAGE = "ghcr.io/ggml-org/llama.cpp"
DIGEST = "sha256:" + "ab" * 32
NO_DAEMON = (
    "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"
)


def _engine(container: dict[str, str], kind: str = "llamacpp") -> EngineConfig:
    doc = {"kind": kind, "provisioning": {"mode": "container", "container": container}}
    return msgspec.convert(doc, EngineConfig)


def _quiet_gate(*, allow: bool, hosts: list[str]) -> OutboundGate:
    def audit(decision: Any) -> None:
        pass

    return OutboundGate(allow=allow, allowed_hosts=hosts, audit=audit)


def _provision(config: EngineConfig, host: FakeCommands, tmp_path: Path, **kwargs: Any) -> Any:
    kwargs.setdefault("hook", _quiet_gate(allow=False, hosts=[]))
    return provision_engine(
        config, policy=PolicyConfig(), cache_root=tmp_path, which=host.which, run=host.run, **kwargs
    )


@pytest.mark.req("ORCH-3203")
def test_a_missing_runtime_and_gpu_setup_are_reported_together(tmp_path: Path) -> None:
    host = FakeCommands()
    config = _engine({"image": IMAGE, "tag": "server-cuda", "runtime": "podman"})
    with pytest.raises(ToolNotFoundError) as info:
        _provision(config, host, tmp_path, uses_gpu=True, cdi_dirs=[tmp_path / "cdi"])
    assert len(info.value.missing) == 2
    assert info.value.missing[0] == "podman (not on PATH)"
    assert "NVIDIA CDI spec" in info.value.missing[1]
    assert "nvidia-ctk cdi generate" in str(info.value)
    assert host.calls == []


def test_docker_gpu_pools_need_the_nvidia_hook(tmp_path: Path) -> None:
    host = FakeCommands(on_path={"docker": DOCKER})
    config = _engine({"image": IMAGE, "tag": "server-cuda", "runtime": "docker"})
    with pytest.raises(ToolNotFoundError, match="nvidia-container-runtime-hook"):
        _provision(config, host, tmp_path, uses_gpu=True)


def test_a_docker_client_without_a_daemon_says_what_to_do(tmp_path: Path) -> None:
    host = FakeCommands(on_path={"docker": DOCKER}, results={(DOCKER, "info"): (1, "", NO_DAEMON)})
    config = _engine({"image": IMAGE, "tag": "server", "runtime": "docker"})
    with pytest.raises(ContainerRuntimeError) as info:
        _provision(config, host, tmp_path)
    message = str(info.value)
    assert "the docker daemon is not reachable" in message
    assert NO_DAEMON in message
    assert "sudo systemctl start docker" in message
    assert "`container.runtime: podman`" in message


def test_the_real_docker_on_this_machine(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client on this machine")
    probe = subprocess.run([docker, "info"], capture_output=True, check=False, timeout=30)
    if probe.returncode == 0:
        pytest.skip("a docker daemon runs here; this test is for a client without one")
    config = _engine({"image": IMAGE, "tag": "server", "runtime": "docker"})
    with pytest.raises(ContainerRuntimeError, match="daemon is not reachable"):
        provision_engine(config, policy=PolicyConfig(), cache_root=tmp_path)


def test_socket_permission_and_timeouts_are_told_apart(tmp_path: Path) -> None:
    config = _engine({"image": IMAGE, "tag": "server", "runtime": "docker"})
    denied = "permission denied while trying to connect to the Docker daemon socket"
    host = FakeCommands(on_path={"docker": DOCKER}, results={(DOCKER, "info"): (1, "", denied)})
    with pytest.raises(ContainerRuntimeError, match="usermod -aG docker"):
        _provision(config, host, tmp_path)
    host = FakeCommands(on_path={"docker": DOCKER}, timeouts={(DOCKER, "info")})
    with pytest.raises(ContainerRuntimeError, match="gave no answer"):
        _provision(config, host, tmp_path)


def _usable_podman(image_present: bool) -> FakeCommands:
    ref = f"{IMAGE}@{DIGEST}"
    return FakeCommands(
        on_path={"podman": PODMAN},
        results={
            (PODMAN, "info"): (0, "host: ...", ""),
            (PODMAN, "image", "inspect", ref): (0 if image_present else 125, "[]", ""),
            (PODMAN, "pull", ref): (0, "Writing manifest", ""),
            (PODMAN, "run", "--rm", "--pull=never", ref, "--version"): (0, "", "version: 4242 (abcdef0)\n"),
        },
    )


@pytest.mark.req("OC-POOL-3121")
def test_a_usable_runtime_gives_a_run_plan_that_exposes_only_the_replica_gpus(tmp_path: Path) -> None:
    host = _usable_podman(image_present=True)
    (tmp_path / "cdi").mkdir()
    (tmp_path / "cdi" / "nvidia.yaml").write_text("cdiVersion: 0.5.0\n")
    config = _engine({"image": IMAGE, "tag": "server-cuda", "digest": DIGEST, "runtime": "podman"})
    engine = _provision(config, host, tmp_path, uses_gpu=True, cdi_dirs=[tmp_path / "cdi"])
    assert (engine.mode, engine.engine_version) == ("container", "version: 4242 (abcdef0)")
    assert engine.binary_path is None
    plan = engine.container
    assert plan == ContainerRunPlan(runtime="podman", runtime_path=PODMAN, image_ref=f"{IMAGE}@{DIGEST}")
    argv = plan.run_argv(
        name="llorch-chat-0",
        host_port=18001,
        gpu_uuids=["GPU-3060bbbb"],
        mounts=[(Path("/models/tiny.gguf"), "/models/tiny.gguf")],
        labels={"llorch.pool": "chat"},
        engine_args=["--host", plan.container_host, "--port", str(plan.container_port)],
    )
    assert argv == (
        PODMAN, "run", "--rm", "--name", "llorch-chat-0", "--pull=never",
        "--publish", "127.0.0.1:18001:8080",
        "--device", "nvidia.com/gpu=GPU-3060bbbb",
        "--volume", "/models/tiny.gguf:/models/tiny.gguf:ro",
        "--label", "llorch.pool=chat",
        f"{IMAGE}@{DIGEST}", "--host", "0.0.0.0", "--port", "8080",
    )  # fmt: skip
    assert not any(call[1] == "pull" for call in host.calls)


def test_docker_gpu_flags_quote_a_device_list() -> None:
    plan = ContainerRunPlan(runtime="docker", runtime_path=DOCKER, image_ref=f"{IMAGE}:server-cuda")
    assert plan.device_flags(["GPU-a", "GPU-b"]) == ("--gpus", '"device=GPU-a,GPU-b"')
    assert plan.device_flags([]) == ()


@pytest.mark.req("OC-POOL-3121")
def test_a_missing_image_is_pulled_only_when_the_outbound_policy_allows(tmp_path: Path) -> None:
    config = _engine({"image": IMAGE, "tag": "server", "digest": DIGEST, "runtime": "podman"})
    host = _usable_podman(image_present=False)
    with pytest.raises(ContainerRuntimeError, match="may not be pulled") as info:
        _provision(config, host, tmp_path, hook=_quiet_gate(allow=False, hosts=[]))
    assert isinstance(info.value.__cause__, OutboundDeniedError)
    assert f"podman pull {IMAGE}@{DIGEST}" in str(info.value)
    assert not any(call[1] == "pull" for call in host.calls)

    engine = _provision(config, host, tmp_path, hook=_quiet_gate(allow=True, hosts=["ghcr.io"]))
    assert (PODMAN, "pull", f"{IMAGE}@{DIGEST}") in host.calls
    assert engine.detail == f"podman: pulled image {IMAGE}@{DIGEST}"


def test_other_engine_kinds_run_in_containers_without_a_version_probe(tmp_path: Path) -> None:
    ref = "docker.io/vllm/vllm-openai:v0.11.0"
    host = FakeCommands(
        on_path={"podman": PODMAN},
        results={(PODMAN, "info"): (0, "", ""), (PODMAN, "image", "inspect", ref): (0, "[]", "")},
    )
    config = _engine({"image": "docker.io/vllm/vllm-openai", "tag": "v0.11.0"}, kind="vllm")
    engine = _provision(config, host, tmp_path)
    assert engine.engine_version is None
    assert engine.container is not None
    assert engine.container.image_ref == ref
    assert not any("--version" in call for call in host.calls)
