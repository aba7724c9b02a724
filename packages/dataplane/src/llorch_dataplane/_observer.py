"""What the data plane reports as it happens, for metrics and narrated logs (ORCH-3300, OC-METRICS-7101)."""

from __future__ import annotations

from typing import Protocol

from llorch_contracts.api import ErrorKind

from ._task import Task


class DataPlaneObserver(Protocol):
    """Receives data-plane events; implementations must be cheap and must not block."""

    def admitted(self, task: Task, queue_position: int, predicted_start_ms: int) -> None: ...

    def rejected(self, engine: str, kind: ErrorKind, policy: str | None, message: str) -> None: ...

    def dispatched(self, task: Task) -> None: ...

    def first_token(self, task: Task, latency_ms: float) -> None: ...

    def ended(self, task: Task) -> None:
        """The task reached a terminal state (completed, failed, canceled, or dropped)."""
        ...


class NullObserver:
    """Ignores every event."""

    def admitted(self, task: Task, queue_position: int, predicted_start_ms: int) -> None:
        pass

    def rejected(self, engine: str, kind: ErrorKind, policy: str | None, message: str) -> None:
        pass

    def dispatched(self, task: Task) -> None:
        pass

    def first_token(self, task: Task, latency_ms: float) -> None:
        pass

    def ended(self, task: Task) -> None:
        pass
