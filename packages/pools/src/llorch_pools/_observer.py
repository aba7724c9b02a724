"""What supervision reports as it happens, for metrics (OC-POOL-3030). The default hears nothing."""

from __future__ import annotations

from typing import Protocol


class SupervisionObserver(Protocol):
    """Receives supervision events; implementations must not block."""

    def provisioned(self, *, engine: str, mode: str, outcome: str, duration_s: float) -> None:
        """An engine provisioning attempt ended (`success`, `reused` or `failure`)."""

    def preloaded(
        self, *, engine: str, engine_version: str, pool_id: str, outcome: str, duration_s: float
    ) -> None:
        """A replica start ended: `success`, `failure` or `timeout` (duration until then)."""

    def restarted(
        self, *, engine: str, engine_version: str, pool_id: str, replica_id: str, reason: str
    ) -> None:
        """Supervision is restarting a replica; `reason` says what ended the last process."""

    def health_check_failed(self, *, engine: str, pool_id: str, replica_id: str) -> None:
        """One periodic health check of a Ready replica failed."""


class NullObserver:
    """Ignores every event."""

    def provisioned(self, *, engine: str, mode: str, outcome: str, duration_s: float) -> None:
        pass

    def preloaded(
        self, *, engine: str, engine_version: str, pool_id: str, outcome: str, duration_s: float
    ) -> None:
        pass

    def restarted(
        self, *, engine: str, engine_version: str, pool_id: str, replica_id: str, reason: str
    ) -> None:
        pass

    def health_check_failed(self, *, engine: str, pool_id: str, replica_id: str) -> None:
        pass
