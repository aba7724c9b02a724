"""GPU inventory through NVML (FakeNvml and the real bindings) and the home/dev GPU policy."""

from __future__ import annotations

import pytest

from llorch_contracts.api import GpuDevice, GpuInventory
from llorch_contracts.config import Profile
from llorch_provisioning import GpuDeviceProblem, gpu_policy_problem, read_gpu_inventory, scan_gpus
from llorch_provisioning.testing import FakeGpu, FakeNvml

GIB = 1 << 30
NO_DRIVER = "NVML shared library not found: no NVIDIA driver on this machine"


@pytest.mark.req("OC-POOL-3170")
def test_every_device_is_listed_with_its_numbers() -> None:
    nvml = FakeNvml.reference_workstation()
    inventory = read_gpu_inventory(nvml)
    assert inventory.nvml_available is True
    assert inventory.devices == [
        GpuDevice(
            index=0,
            name="NVIDIA GeForce RTX 3090",
            uuid="GPU-3090aaaa-0000-0000-0000-000000000000",
            total_vram_bytes=24 * GIB,
            free_vram_bytes=23 * GIB,
            utilization_pct=7,
        ),
        GpuDevice(
            index=1,
            name="NVIDIA GeForce RTX 3060",
            uuid="GPU-3060bbbb-0000-0000-0000-000000000000",
            total_vram_bytes=12 * GIB,
            free_vram_bytes=11 * GIB,
            utilization_pct=0,
        ),
    ]
    assert (nvml.init_calls, nvml.shutdown_calls, nvml.initialised) == (1, 1, False)


@pytest.mark.req("OC-POOL-3170")
def test_no_driver_means_nvml_unavailable_with_a_clear_reason() -> None:
    nvml = FakeNvml(init_error=12)  # NVML_ERROR_LIBRARY_NOT_FOUND
    inventory = read_gpu_inventory(nvml)
    assert inventory.nvml_available is False
    assert inventory.devices == []
    assert isinstance(inventory.reason, str)
    assert inventory.reason.startswith(NO_DRIVER)
    assert nvml.shutdown_calls == 0  # nothing to shut down after a failed init


@pytest.mark.req("OC-POOL-3170")
def test_the_real_bindings_on_this_machine_never_raise() -> None:
    pytest.importorskip("pynvml")
    inventory = read_gpu_inventory()
    if inventory.nvml_available:
        pytest.skip(f"NVML works here ({len(inventory.devices)} devices); this test is for driverless hosts")
    assert isinstance(inventory.reason, str)
    assert inventory.reason.startswith(NO_DRIVER)


def test_a_missing_nvidia_ml_py_is_a_reason_not_a_crash() -> None:
    def load() -> FakeNvml:
        raise ModuleNotFoundError("No module named 'pynvml'")

    inventory = scan_gpus(load=load).inventory
    assert inventory.nvml_available is False
    assert "nvidia-ml-py" in str(inventory.reason)


def test_driver_not_loaded_and_unknown_init_errors_are_explained() -> None:
    assert "kernel driver is not loaded" in str(read_gpu_inventory(FakeNvml(init_error=9)).reason)
    assert "Unknown Error (NVML error 999)" in str(read_gpu_inventory(FakeNvml(init_error=999)).reason)


@pytest.mark.req("OC-POOL-3170")
def test_a_failing_device_is_reported_and_the_others_still_listed() -> None:
    nvml = FakeNvml.reference_workstation()
    lost = FakeGpu(uuid="GPU-dead0000-0000", fail={"nvmlDeviceGetMemoryInfo": 15})  # GPU is lost
    nvml.devices.insert(1, lost)
    scan = scan_gpus(nvml)
    assert [d.index for d in scan.inventory.devices] == [0, 2]
    assert scan.device_problems == (
        GpuDeviceProblem(index=1, message="GPU is lost (NVML error 15)", skipped=True),
    )
    assert nvml.shutdown_calls == 1


def test_unreadable_utilisation_keeps_the_device_with_zero() -> None:
    nvml = FakeNvml(devices=[FakeGpu(utilization_pct=50, fail={"nvmlDeviceGetUtilizationRates": 3})])
    scan = scan_gpus(nvml)
    assert [d.utilization_pct for d in scan.inventory.devices] == [0]
    assert scan.device_problems[0].skipped is False
    assert "Not Supported" in scan.device_problems[0].message


def test_a_device_without_a_usable_uuid_is_left_out() -> None:
    scan = scan_gpus(FakeNvml(devices=[FakeGpu(uuid="not-a-uuid")]))
    assert scan.inventory.devices == []
    assert "unexpected UUID" in scan.device_problems[0].message


def test_count_failure_and_failing_shutdown() -> None:
    nvml = FakeNvml(devices=[FakeGpu()], count_error=999)
    inventory = read_gpu_inventory(nvml)
    assert inventory.nvml_available is False
    assert "could not count devices" in str(inventory.reason)
    assert nvml.shutdown_calls == 1  # shut down although the reading failed

    failing_shutdown = FakeNvml(devices=[FakeGpu()], shutdown_error=999)
    assert len(read_gpu_inventory(failing_shutdown).devices) == 1


def _no_nvml() -> GpuInventory:
    return GpuInventory(nvml_available=False, reason=NO_DRIVER, devices=[])


@pytest.mark.req("HME-013")
def test_home_pool_without_nvml_fails_with_error_devices_and_the_dev_profile_fix() -> None:
    problem = gpu_policy_problem(Profile.home, [], _no_nvml(), allow_cpu_inference=False)
    assert problem is not None
    assert NO_DRIVER in problem  # the NVML error
    assert "Devices found: none" in problem  # the devices found
    assert "install the NVIDIA driver" in problem
    assert "`profile: dev`" in problem  # how to select the dev profile
    assert "`allow_cpu_inference: true`" in problem


@pytest.mark.req("HME-013")
def test_home_profile_ignores_allow_cpu_inference_and_says_so() -> None:
    problem = gpu_policy_problem(Profile.home, [], _no_nvml(), allow_cpu_inference=True)
    assert problem is not None
    assert "honoured only with profile dev" in problem


def test_home_pool_with_nvml_but_no_device_fails() -> None:
    inventory = GpuInventory(nvml_available=True, devices=[])
    problem = gpu_policy_problem(
        Profile.home,
        [0],
        inventory,
        allow_cpu_inference=False,
        device_problems=[GpuDeviceProblem(index=0, message="GPU is lost (NVML error 15)", skipped=True)],
    )
    assert problem is not None
    assert "NVML reports no usable GPU" in problem
    assert "GPU 0 could not be read: GPU is lost" in problem


def test_a_requested_index_that_does_not_exist_names_what_does() -> None:
    inventory = read_gpu_inventory(FakeNvml.reference_workstation())
    problem = gpu_policy_problem(Profile.home, [0, 3], inventory, allow_cpu_inference=False)
    assert problem is not None
    assert "GPU 3, which NVML does not list" in problem
    assert "0 (NVIDIA GeForce RTX 3090, 23552 MiB free), 1 (NVIDIA GeForce RTX 3060" in problem
    assert gpu_policy_problem(Profile.home, [1, 0], inventory, allow_cpu_inference=False) is None
    assert gpu_policy_problem(Profile.home, [], inventory, allow_cpu_inference=False) is None


@pytest.mark.req("OC-POOL-3181")
def test_dev_cpu_pool_needs_no_gpu_but_a_dev_pool_without_the_flag_still_does() -> None:
    assert gpu_policy_problem(Profile.dev, [], _no_nvml(), allow_cpu_inference=True) is None
    problem = gpu_policy_problem(Profile.dev, [], _no_nvml(), allow_cpu_inference=False)
    assert problem is not None
    assert "set `allow_cpu_inference: true`" in problem
    assert "`profile: dev`" not in problem  # already dev: only the missing key is named


def test_dev_pool_naming_devices_is_a_gpu_pool() -> None:
    problem = gpu_policy_problem(Profile.dev, [0], _no_nvml(), allow_cpu_inference=True)
    assert problem is not None
    assert "set `devices: []`" in problem
