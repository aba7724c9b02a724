"""Whether a pool's device request can be met on this host: GPU-only home, explicit CPU in dev."""

from __future__ import annotations

from collections.abc import Sequence

from llorch_contracts.api import GpuInventory
from llorch_contracts.config import Profile

from ._gpu import GpuDeviceProblem

_DRIVER_FIX = "install the NVIDIA driver so NVML can see the GPU (`nvidia-smi` should list it)"


def _found(inventory: GpuInventory) -> str:
    if not inventory.devices:
        return "no GPU"
    return ", ".join(f"{d.index} ({d.name}, {d.free_vram_bytes >> 20} MiB free)" for d in inventory.devices)


def _cpu_fix(profile: Profile, devices_requested: Sequence[int], allow_cpu_inference: bool) -> str:
    # Say exactly which keys still stand between this pool and a CPU run (OC-POOL-3181).
    changes = []
    if profile != Profile.dev:
        changes.append("`profile: dev`")
    if devices_requested:
        changes.append("`devices: []`")
    if not allow_cpu_inference:
        changes.append("`allow_cpu_inference: true`")
    text = f"or, to run this pool on CPU, set {' and '.join(changes)}"
    if profile != Profile.dev and allow_cpu_inference:
        text += " (allow_cpu_inference is honoured only with profile dev; the home profile is GPU-only)"
    return text


def gpu_policy_problem(
    profile: Profile,
    devices_requested: Sequence[int],
    inventory: GpuInventory,
    allow_cpu_inference: bool,
    *,
    device_problems: Sequence[GpuDeviceProblem] = (),
) -> str | None:
    """Why a pool cannot get the devices it needs here, as an actionable sentence; None when it can.

    ``devices: []`` means "any GPU" (HME-011) unless the profile is ``dev`` and the pool sets
    ``allow_cpu_inference``, in which case it runs on CPU and needs no GPU at all
    (OC-POOL-3181). Every other pool needs NVML to work and to report a device, and each
    index it names must exist (HME-013): the message then names the NVML error, the devices
    found and what to change. ``device_problems`` (from ``scan_gpus``) explain a GPU that
    NVML counted but could not read.
    """
    if not devices_requested and profile == Profile.dev and allow_cpu_inference:
        return None
    wanted = f"GPU {', '.join(map(str, devices_requested))}" if devices_requested else "a GPU"
    fix = f"To fix: {_DRIVER_FIX}, {_cpu_fix(profile, devices_requested, allow_cpu_inference)}."
    if not inventory.nvml_available:
        reason = inventory.reason if isinstance(inventory.reason, str) else "NVML is unavailable"
        return f"this pool needs {wanted} but NVML is unavailable: {reason}. Devices found: none. {fix}"
    unreadable = {p.index: p.message for p in device_problems if p.skipped}
    notes = "".join(f" GPU {i} could not be read: {msg}." for i, msg in sorted(unreadable.items()))
    if not inventory.devices:
        return f"this pool needs {wanted} but NVML reports no usable GPU.{notes} {fix}"
    present = {d.index for d in inventory.devices}
    missing = sorted(set(devices_requested) - present)
    if missing:
        return (
            f"this pool asks for GPU {', '.join(map(str, missing))}, which NVML does not list; "
            f"devices found: {_found(inventory)}.{notes} To fix: set `devices` to indices that exist, "
            "or to [] to let the pool use any GPU."
        )
    return None
