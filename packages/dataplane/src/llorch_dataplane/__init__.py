"""orchestratord's data plane: tasks as event logs, per-pool queues and dispatch onto engine adapters.

`Orchestrator` admits, dispatches and cancels; `PoolView` is what it knows of
the pools (fed by pool-managerd's watch stream); each task's `TaskLog` is the
append-only source of its SSE stream; `SessionStore` keeps session turns, budgets and affinity.
"""

from ._events import TaskEvents
from ._observer import DataPlaneObserver, NullObserver
from ._orchestrator import Orchestrator, UnknownTaskError
from ._poolview import PoolView, follow_pool_manager
from ._sessions import SessionStore, Usage
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
    "SessionStore",
    "Task",
    "TaskEvents",
    "TaskLog",
    "UnknownTaskError",
    "Usage",
    "follow_pool_manager",
]
