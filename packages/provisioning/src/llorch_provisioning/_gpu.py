"""Reading the GPU inventory through NVML (``import pynvml``, from the ``nvidia-ml-py`` package).

OC-POOL-3170: ``GET /v2/gpus`` answers with every device, or ``nvml_available: false`` and a
reason, so nothing here raises: a missing driver, a failing device or a bug in the bindings
all become data. The calls block (NVML talks to the kernel driver), so pool-managerd runs
``scan_gpus`` in a worker thread and caches the result; that belongs to the service, not here.
"""

from __future__ import annotations

import contextlib
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

from llorch_contracts.api import GpuDevice, GpuInventory

# nvml.h return codes; stable ABI values, so a fake can raise them without pynvml installed.
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18

_REASON_MAX_CHARS = 512  # GpuInventory.reason maxLength
_NAME_MAX_CHARS = 256  # GpuDevice.name maxLength
_UUID = re.compile(r"^(GPU|MIG)-[0-9A-Za-z-]{1,64}$")

# Clear words for the failures an operator can fix; NVML's own strings ("Driver Not Loaded")
# do not say what to do.
_INIT_REASONS = {
    NVML_ERROR_LIBRARY_NOT_FOUND: (
        "NVML shared library not found: no NVIDIA driver on this machine (libnvidia-ml.so.1 is missing)"
    ),
    NVML_ERROR_DRIVER_NOT_LOADED: (
        "the NVIDIA kernel driver is not loaded (NVML: Driver Not Loaded); load it or reboot"
    ),
    NVML_ERROR_NO_PERMISSION: "no permission to open the NVIDIA devices (check /dev/nvidia* access)",
    NVML_ERROR_LIB_RM_VERSION_MISMATCH: (
        "NVIDIA driver and NVML library versions differ (usually after a driver upgrade); reboot"
    ),
}


class NvmlMemory(Protocol):
    """What ``nvmlDeviceGetMemoryInfo`` returns (a ctypes struct in pynvml)."""

    @property
    def total(self) -> int: ...

    @property
    def free(self) -> int: ...


class NvmlUtilization(Protocol):
    """What ``nvmlDeviceGetUtilizationRates`` returns; ``gpu`` is a percentage."""

    @property
    def gpu(self) -> int: ...


class NvmlApi(Protocol):
    """The part of the pynvml module we use, so tests can pass ``FakeNvml`` instead."""

    def nvmlInit(self) -> None: ...  # noqa: N802 - pynvml's names
    def nvmlShutdown(self) -> None: ...  # noqa: N802
    def nvmlDeviceGetCount(self) -> int: ...  # noqa: N802
    def nvmlDeviceGetHandleByIndex(self, index: int) -> object: ...  # noqa: N802
    def nvmlDeviceGetName(self, handle: object) -> str | bytes: ...  # noqa: N802
    def nvmlDeviceGetUUID(self, handle: object) -> str | bytes: ...  # noqa: N802
    def nvmlDeviceGetMemoryInfo(self, handle: object) -> NvmlMemory: ...  # noqa: N802
    def nvmlDeviceGetUtilizationRates(self, handle: object) -> NvmlUtilization: ...  # noqa: N802


@dataclass(frozen=True, kw_only=True)
class GpuDeviceProblem:
    """A device NVML counted but could not read fully; ``skipped`` means it is not in the inventory."""

    index: int
    message: str
    skipped: bool


@dataclass(frozen=True, kw_only=True)
class GpuScan:
    """The inventory (the API shape) plus what went wrong per device, for logs and error messages."""

    inventory: GpuInventory
    device_problems: tuple[GpuDeviceProblem, ...] = ()


def _load_pynvml() -> NvmlApi:
    # Imported on first use, not at module import: importing this package must stay cheap
    # and side-effect free, and a missing nvidia-ml-py must become a reason, not a crash.
    return cast("NvmlApi", importlib.import_module("pynvml"))


def _describe(exc: BaseException) -> str:
    code = getattr(exc, "value", None)
    if isinstance(code, int):
        return f"{exc} (NVML error {code})"
    return f"{type(exc).__name__}: {exc}"


def _init_failure(exc: BaseException) -> str:
    code = getattr(exc, "value", None)
    if isinstance(code, int) and code in _INIT_REASONS:
        return _INIT_REASONS[code]
    return f"NVML failed to start: {_describe(exc)}"


def _text(value: str | bytes) -> str:
    # pynvml returns str since 11.x; older bindings returned bytes.
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _unavailable(reason: str) -> GpuScan:
    return GpuScan(
        inventory=GpuInventory(nvml_available=False, reason=reason[:_REASON_MAX_CHARS], devices=[])
    )


def _utilization(nvml: NvmlApi, handle: object, index: int) -> tuple[int, GpuDeviceProblem | None]:
    # Some boards (and MIG instances) do not report utilisation; the device is still usable,
    # so it stays in the inventory with 0 and the problem is reported beside it.
    try:
        pct = int(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
    except Exception as exc:  # OC-POOL-3170: a device's failure is data, not a crash
        return 0, GpuDeviceProblem(
            index=index, message=f"utilisation unreadable: {_describe(exc)}", skipped=False
        )
    return min(max(pct, 0), 100), None


def _read_device(nvml: NvmlApi, index: int) -> tuple[GpuDevice | None, list[GpuDeviceProblem]]:
    try:
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        name = _text(nvml.nvmlDeviceGetName(handle))
        uuid = _text(nvml.nvmlDeviceGetUUID(handle))
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        total, free = int(memory.total), int(memory.free)
    except Exception as exc:  # one lost GPU ("GPU is lost", a fallen bus) must not hide the others
        return None, [GpuDeviceProblem(index=index, message=_describe(exc), skipped=True)]
    if not _UUID.match(uuid):
        # CUDA_VISIBLE_DEVICES is set from the UUID (OC-POOL-3020); a device we cannot
        # address that way cannot be placed on, so it is left out.
        return None, [GpuDeviceProblem(index=index, message=f"unexpected UUID {uuid!r}", skipped=True)]
    pct, problem = _utilization(nvml, handle, index)
    device = GpuDevice(
        index=index,
        name=name[:_NAME_MAX_CHARS],
        uuid=uuid,
        total_vram_bytes=max(total, 0),
        free_vram_bytes=min(max(free, 0), max(total, 0)),
        utilization_pct=pct,
    )
    return device, [problem] if problem is not None else []


def scan_gpus(nvml: NvmlApi | None = None, *, load: Callable[[], NvmlApi] = _load_pynvml) -> GpuScan:
    """Read every NVIDIA device NVML sees; never raises.

    ``nvml`` is the pynvml module or anything shaped like it (``FakeNvml``); by default
    pynvml is imported now. When NVML cannot start (no driver, no library, no permission)
    the inventory says ``nvml_available: false`` with a reason that tells the operator what
    to do. A device that fails to read is left out and listed in ``device_problems``.
    ``nvmlShutdown`` is called whenever ``nvmlInit`` succeeded.
    """
    if nvml is None:
        try:
            nvml = load()
        except ImportError as exc:
            return _unavailable(f"the nvidia-ml-py package is not installed (import pynvml: {exc})")
    try:
        nvml.nvmlInit()
    except Exception as exc:
        # Broad on purpose (OC-POOL-3170: "nvml_available: false with the reason"): besides
        # NVMLError, broken bindings can raise OSError or AttributeError, and the endpoint must answer.
        return _unavailable(_init_failure(exc))
    try:
        try:
            count = int(nvml.nvmlDeviceGetCount())
        except Exception as exc:  # same contract as nvmlInit above
            return _unavailable(f"NVML started but could not count devices: {_describe(exc)}")
        devices: list[GpuDevice] = []
        problems: list[GpuDeviceProblem] = []
        for index in range(count):
            device, device_problems = _read_device(nvml, index)
            if device is not None:
                devices.append(device)
            problems.extend(device_problems)
        return GpuScan(
            inventory=GpuInventory(nvml_available=True, devices=devices), device_problems=tuple(problems)
        )
    finally:
        # The reading is complete; a failing shutdown changes nothing we report.
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()


def read_gpu_inventory(nvml: NvmlApi | None = None) -> GpuInventory:
    """The inventory alone, in the ``GET /v2/gpus`` shape; see ``scan_gpus``."""
    return scan_gpus(nvml).inventory
