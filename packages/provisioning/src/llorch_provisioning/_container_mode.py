"""``container`` mode: check the runtime works, make sure the image is here, plan ``run`` (OC-POOL-3121)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from msgspec import UNSET

from llorch_contracts.config import ContainerProvisioning, EngineKind

from ._commands import RunCommand, Which
from ._container_plan import ContainerRunPlan
from ._engine_version import version_line
from ._errors import ContainerRuntimeError, OutboundDeniedError, ToolNotFoundError
from ._outbound import OutboundHook, OutboundPurpose
from ._progress import Phase, ProgressCallback
from ._provisioned import ProvisionedEngine

DEFAULT_INFO_TIMEOUT_S = 20.0
DEFAULT_PULL_TIMEOUT_S = 3600.0
DEFAULT_VERSION_TIMEOUT_S = 120.0  # a first container start can be slow (layers, overlay setup)
CDI_DIRS = (Path("/etc/cdi"), Path("/var/run/cdi"))
# dockerd looks this hook up on PATH to implement --gpus.
DOCKER_GPU_HOOK = "nvidia-container-runtime-hook"

_FIX_DAEMON = {
    "docker": "Start it (`sudo systemctl start docker`), or set `container.runtime: podman` for rootless "
    "containers, or choose another provisioning mode.",
    "podman": "Check the rootless setup (subuid/subgid entries for this user, then `podman system migrate`), "
    "or set `container.runtime: docker`, or choose another provisioning mode.",
}


def image_ref(spec: ContainerProvisioning) -> str:
    """``image@sha256:...`` when a digest is pinned (immutable), else ``image:tag``."""
    return f"{spec.image}@{spec.digest}" if spec.digest is not UNSET else f"{spec.image}:{spec.tag}"


def registry_url(image: str) -> str:
    """The registry URL a pull of ``image`` contacts, for the outbound policy hook.

    A first path component with a dot or a port (or ``localhost``) is a registry host, as
    in ``ghcr.io/ggml-org/llama.cpp``; anything else is a Docker Hub name.
    """
    first, sep, rest = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return f"https://{first}/v2/{rest}"
    return f"https://docker.io/v2/{image}"


def _gpu_setup_missing(runtime: str, which: Which, cdi_dirs: Sequence[Path]) -> str | None:
    if runtime == "docker":
        if which(DOCKER_GPU_HOOK) is None:
            return f"{DOCKER_GPU_HOOK} (install nvidia-container-toolkit, then restart docker)"
        return None
    specs = [p for d in cdi_dirs if d.is_dir() for p in d.iterdir() if p.name.startswith("nvidia")]
    if not specs:
        dirs = " or ".join(str(d) for d in cdi_dirs)
        return f"an NVIDIA CDI spec in {dirs} (`sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml`)"
    return None


def _run(run: RunCommand, argv: Sequence[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    return run(
        list(argv),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout_s,
        check=False,
    )


def _last_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line.strip() for line in f"{proc.stdout}\n{proc.stderr}".splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _check_usable(runtime: Literal["podman", "docker"], path: str, run: RunCommand, timeout_s: float) -> None:
    try:
        proc = _run(run, [path, "info"], timeout_s)
    except subprocess.TimeoutExpired:
        raise ContainerRuntimeError(
            runtime, f"`{runtime} info` gave no answer within {timeout_s:g} s. {_FIX_DAEMON[runtime]}"
        ) from None
    except OSError as exc:
        raise ContainerRuntimeError(runtime, f"cannot run {path}: {exc}") from exc
    if proc.returncode == 0:
        return
    said = _last_line(proc)
    if runtime == "podman":
        raise ContainerRuntimeError(runtime, f"`podman info` failed ({said}). {_FIX_DAEMON[runtime]}")
    if "permission denied" in said.lower():
        raise ContainerRuntimeError(
            runtime,
            f"this user may not use the docker daemon's socket ({said}). Add the user to the docker group "
            "(`sudo usermod -aG docker $USER`, then log in again), or set `container.runtime: podman`.",
        )
    fix = _FIX_DAEMON[runtime]
    raise ContainerRuntimeError(runtime, f"the docker daemon is not reachable ({said}). {fix}")


def _ensure_image(
    runtime: str, path: str, ref: str, image: str, *, hook: OutboundHook, run: RunCommand
) -> str:
    if _run(run, [path, "image", "inspect", ref], DEFAULT_INFO_TIMEOUT_S).returncode == 0:
        return f"image {ref} is present"
    try:
        hook.check(registry_url(image), OutboundPurpose.CONTAINER_IMAGE)
    except OutboundDeniedError as exc:
        raise ContainerRuntimeError(
            runtime,
            f"image {ref} is not present and may not be pulled: {exc}. Or run `{runtime} pull {ref}`.",
        ) from exc
    try:
        proc = _run(run, [path, "pull", ref], DEFAULT_PULL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ContainerRuntimeError(runtime, f"`{runtime} pull {ref}` took too long") from None
    if proc.returncode != 0:
        raise ContainerRuntimeError(runtime, f"`{runtime} pull {ref}` failed: {_last_line(proc)}")
    return f"pulled image {ref}"


def _image_version(runtime: str, path: str, ref: str, run: RunCommand) -> str:
    # The llama.cpp server images have llama-server as their entrypoint.
    try:
        proc = _run(run, [path, "run", "--rm", "--pull=never", ref, "--version"], DEFAULT_VERSION_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ContainerRuntimeError(runtime, f"`{ref} --version` took too long") from None
    if proc.returncode != 0:
        raise ContainerRuntimeError(runtime, f"`{ref} --version` failed: {_last_line(proc)}")
    return version_line(f"{proc.stdout}\n{proc.stderr}")


def provision_container(
    kind: EngineKind,
    spec: ContainerProvisioning,
    *,
    uses_gpu: bool,
    hook: OutboundHook,
    which: Which,
    run: RunCommand,
    on_progress: ProgressCallback,
    cdi_dirs: Sequence[Path] = CDI_DIRS,
    timeout_s: float = DEFAULT_INFO_TIMEOUT_S,
) -> ProvisionedEngine:
    """Preflight the runtime (all missing pieces in one message, ORCH-3203), get the image, plan ``run``.

    The image is pulled here, when absent and the outbound policy allows its registry, so
    that replica starts never wait for (or fail on) the network. For llama.cpp the image's
    ``--version`` output becomes ``engine_version`` (OC-POOL-3118). ``uses_gpu`` adds the
    NVIDIA container device setup to the preflight.
    """
    runtime: Literal["podman", "docker"] = "docker" if spec.runtime == "docker" else "podman"
    path = which(runtime)
    missing = [] if path is not None else [f"{runtime} (not on PATH)"]
    gpu_missing = _gpu_setup_missing(runtime, which, cdi_dirs) if uses_gpu else None
    if gpu_missing is not None:
        missing.append(gpu_missing)
    if path is None or missing:
        other = "docker" if runtime == "podman" else "podman"
        hint = f"Install what is missing, set `container.runtime: {other}`, or choose another mode."
        raise ToolNotFoundError(tuple(missing), hint)
    _check_usable(runtime, path, run, timeout_s)
    ref = image_ref(spec)
    on_progress(Phase.DOWNLOAD, 0.0, f"checking image {ref}")
    got = _ensure_image(runtime, path, ref, spec.image, hook=hook, run=run)
    on_progress(Phase.DOWNLOAD, 100.0, got)
    engine_version = _image_version(runtime, path, ref, run) if kind == EngineKind.llamacpp else None
    plan = ContainerRunPlan(runtime=runtime, runtime_path=path, image_ref=ref)
    return ProvisionedEngine(
        mode="container", kind=kind, engine_version=engine_version, container=plan, detail=f"{runtime}: {got}"
    )
