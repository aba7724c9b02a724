"""pool-managerd's domain: bring configured pools to Ready and keep them there.

`PoolManager` owns a `PoolRegistry` and runs one `PoolSupervisor` per pool;
preparation (engine, model, GPU policy) is behind the `Preparer` protocol;
`PoolManager.drain()` and `PoolManager.reload()` act on one pool while it runs.
"""

from ._backoff import RestartPolicy, Verdict
from ._errors import (
    EngineExitedError,
    HealthChecksFailedError,
    HealthTimeoutError,
    PoolBusyError,
    PortUnavailableError,
    ReplicaError,
)
from ._health import EngineFacts, read_llamacpp_facts, wait_healthy
from ._host_preparer import HostPreparer
from ._incarnation import EngineRunner, IncarnationReports, ReplicaRunner
from ._launch import device_mask, llamacpp_launch
from ._manager import PoolManager, initial_status
from ._observer import NullObserver, SupervisionObserver
from ._ports import PortAllocator, port_is_free
from ._preparation import PreparationError, PreparedEngine, Preparer, Report, StagedModel
from ._process import EngineProcess, LaunchSpec
from ._registry import PoolRegistry, Watcher
from ._replica import ReplicaSupervisor
from ._settings import SupervisorSettings
from ._supervisor import PoolSupervisor

__all__ = [
    "EngineExitedError",
    "EngineFacts",
    "EngineProcess",
    "EngineRunner",
    "HealthChecksFailedError",
    "HealthTimeoutError",
    "HostPreparer",
    "IncarnationReports",
    "LaunchSpec",
    "NullObserver",
    "PoolBusyError",
    "PoolManager",
    "PoolRegistry",
    "PoolSupervisor",
    "PortAllocator",
    "PortUnavailableError",
    "PreparationError",
    "PreparedEngine",
    "Preparer",
    "ReplicaError",
    "ReplicaRunner",
    "ReplicaSupervisor",
    "Report",
    "RestartPolicy",
    "StagedModel",
    "SupervisionObserver",
    "SupervisorSettings",
    "Verdict",
    "Watcher",
    "device_mask",
    "initial_status",
    "llamacpp_launch",
    "port_is_free",
    "read_llamacpp_facts",
    "wait_healthy",
]
