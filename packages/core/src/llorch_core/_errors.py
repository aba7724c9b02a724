"""Domain errors of admission and dispatch; they carry an `ErrorKind` and never know about HTTP."""

from __future__ import annotations

from llorch_contracts.api import ErrorKind, QueueFullPolicy


class AdmissionError(Exception):
    """A task was refused or ended by the core; orchestratord maps `kind` to its HTTP status and envelope.

    `str(error)` is `message`, written for the client: it names the pools and model references involved.
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        retry_after_ms: int | None = None,
        policy_label: QueueFullPolicy | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after_ms = retry_after_ms
        self.policy_label = policy_label

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind.value}, message={self.message!r})"


class QueueFullError(AdmissionError):
    """A pool's bounded queue had no room (OC-CORE-1104, OC-CORE-1106) or none for a retry (OC-CORE-1118)."""


class InvalidParamsError(AdmissionError):
    """The request cannot be served as asked, whatever the pools' state (`INVALID_PARAMS`)."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorKind.INVALID_PARAMS, message)


class PoolUnreadyError(AdmissionError):
    """The pools that could serve the task are failed or otherwise not Ready (`POOL_UNREADY`)."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorKind.POOL_UNREADY, message)


class PoolUnavailableError(AdmissionError):
    """The pools that could serve the task are draining, stopped or excluded (`POOL_UNAVAILABLE`)."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorKind.POOL_UNAVAILABLE, message)
