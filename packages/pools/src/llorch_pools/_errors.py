"""Why a replica could not be brought to Ready; each message is meant for the operator."""

from __future__ import annotations


class ReplicaError(Exception):
    """A replica failed to start, to become healthy, or died; `str()` is the operator-facing reason."""

    #: What ended the replica, as the `reason` label of `replica_restarts_total`.
    reason = "process_exit"


class PortUnavailableError(ReplicaError):
    """No free port in the configured engine port range."""


class EngineExitedError(ReplicaError):
    """The engine process exited while starting or serving."""

    def __init__(self, message: str, *, signal: bool = False) -> None:
        super().__init__(message)
        self.reason = "signal" if signal else "process_exit"


class HealthTimeoutError(ReplicaError):
    """The engine never answered `/health` with 200 within the health timeout."""

    reason = "health_check_failure"


class HealthChecksFailedError(ReplicaError):
    """A Ready replica failed several periodic health checks in a row."""

    reason = "health_check_failure"


class PoolBusyError(Exception):
    """A drain or reload is already running on the pool (OC-POOL-3151); `str()` says which."""
