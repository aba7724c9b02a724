"""One observer slot, several listeners: telemetry and transcripts both hear every data-plane event."""

from __future__ import annotations

from llorch_contracts.api import ErrorKind
from llorch_dataplane import DataPlaneObserver, Task


class ObserverFanOut:
    """A DataPlaneObserver that forwards each event to its observers, in order."""

    def __init__(self, *observers: DataPlaneObserver) -> None:
        self.observers = observers

    def admitted(self, task: Task, queue_position: int, predicted_start_ms: int) -> None:
        for observer in self.observers:
            observer.admitted(task, queue_position, predicted_start_ms)

    def rejected(self, engine: str, kind: ErrorKind, policy: str | None, message: str) -> None:
        for observer in self.observers:
            observer.rejected(engine, kind, policy, message)

    def dispatched(self, task: Task) -> None:
        for observer in self.observers:
            observer.dispatched(task)

    def first_token(self, task: Task, latency_ms: float) -> None:
        for observer in self.observers:
            observer.first_token(task, latency_ms)

    def ended(self, task: Task) -> None:
        for observer in self.observers:
            observer.ended(task)
