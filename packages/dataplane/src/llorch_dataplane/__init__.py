"""orchestratord's data plane: tasks as event logs, per-pool queues and dispatch onto engine adapters.

`Orchestrator` admits, dispatches and cancels; `PoolView` is what it knows of
the pools (fed by pool-managerd's watch stream); each task's `TaskLog` is the
append-only source of its SSE stream.
"""

from ._events import TaskEvents
from ._observer import DataPlaneObserver, NullObserver
from ._orchestrator import Orchestrator, UnknownTaskError
from ._poolview import PoolView, follow_pool_manager
from ._settings import DataPlaneSettings, QueueSettings
from ._task import Task
from ._tasklog import Frame, TaskLog

__all__ = [
    "DataPlaneObserver",
    "DataPlaneSettings",
    "Frame",
    "NullObserver",
    "Orchestrator",
    "PoolView",
    "QueueSettings",
    "Task",
    "TaskEvents",
    "TaskLog",
    "UnknownTaskError",
    "follow_pool_manager",
]
