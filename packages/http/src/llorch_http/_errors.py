"""The error taxonomy on the wire: one envelope, one status per kind (OC-CTRL-2030, ORCH-2007).

Services raise `ApiError`; everything else a request can fail with (framework
validation, unknown routes, wrong methods, crashes) is mapped onto the same
envelope here, so no client ever sees a framework's default error body.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from llorch_contracts.api import EngineKind, ErrorEnvelope, ErrorKind, QueueFullPolicy

from ._correlation import correlation_id_of
from ._redact import redact

log = logging.getLogger("llorch.http")

STATUS_BY_KIND: dict[ErrorKind, int] = {
    ErrorKind.INVALID_PARAMS: 400,
    ErrorKind.DEADLINE_UNMET: 400,
    ErrorKind.MODEL_DEPRECATED: 400,
    ErrorKind.UNTRUSTED_ARTIFACT: 400,
    ErrorKind.MISSING_TOKEN: 401,
    ErrorKind.BAD_TOKEN: 401,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.METHOD_NOT_ALLOWED: 405,
    ErrorKind.CONFLICT: 409,
    ErrorKind.ADMISSION_REJECT: 429,
    ErrorKind.QUEUE_FULL_DROP_LRU: 429,
    ErrorKind.INTERNAL: 500,
    ErrorKind.DECODE_TIMEOUT: 500,
    ErrorKind.WORKER_RESET: 500,
    ErrorKind.POOL_UNREADY: 503,
    ErrorKind.POOL_UNAVAILABLE: 503,
    ErrorKind.REPLICA_EXHAUSTED: 503,
}

RETRIABLE_KINDS = frozenset(
    {
        ErrorKind.ADMISSION_REJECT,
        ErrorKind.QUEUE_FULL_DROP_LRU,
        ErrorKind.POOL_UNREADY,
        ErrorKind.POOL_UNAVAILABLE,
        ErrorKind.REPLICA_EXHAUSTED,
        ErrorKind.WORKER_RESET,
        ErrorKind.DECODE_TIMEOUT,
    }
)

DEFAULT_RETRY_AFTER_MS = 1000
#: The contract's maxLength for `ErrorEnvelope.message`; longer messages (one quoting a hostile
#: 5000-character id, say) are cut to fit (OC-CTRL-2180).
MAX_MESSAGE_CHARS = 2048


class ApiError(Exception):
    """A failure the client is told about with the error envelope."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        retry_after_ms: int | None = None,
        policy_label: QueueFullPolicy | None = None,
        engine: EngineKind | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        # Messages often quote client input (a model ref with credentials in it): redact once, here,
        # so neither the envelope nor a log line of this error can carry a secret (ORCH-3330).
        message = redact(message)
        super().__init__(message)
        self.kind = kind
        self.message = message
        # A retriable error always says when to come back (the contract's promise).
        if retry_after_ms is None and kind in RETRIABLE_KINDS:
            retry_after_ms = DEFAULT_RETRY_AFTER_MS
        self.retry_after_ms = retry_after_ms
        self.policy_label = policy_label
        self.engine = engine
        self.headers = headers or {}

    @property
    def status_code(self) -> int:
        return STATUS_BY_KIND[self.kind]

    @property
    def retriable(self) -> bool:
        return self.kind in RETRIABLE_KINDS

    def envelope(self, correlation_id: str) -> ErrorEnvelope:
        return ErrorEnvelope(
            code=self.kind,
            message=_fit(self.message),
            retriable=self.retriable,
            retry_after_ms=msgspec.UNSET if self.retry_after_ms is None else self.retry_after_ms,
            policy_label=msgspec.UNSET if self.policy_label is None else self.policy_label,
            engine=msgspec.UNSET if self.engine is None else self.engine,
            correlation_id=correlation_id,
        )

    def response_headers(self) -> dict[str, str]:
        """Retry-After in whole seconds (at least 1) and X-Backoff-Ms whenever a retry delay is known."""
        headers = dict(self.headers)
        if self.retry_after_ms is not None:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after_ms / 1000)))
            headers["X-Backoff-Ms"] = str(self.retry_after_ms)
        return headers


def _fit(message: str) -> str:
    if len(message) <= MAX_MESSAGE_CHARS:
        return message or "error"
    return message[: MAX_MESSAGE_CHARS - 1] + "…"


def error_response(error: ApiError, correlation_id: str) -> Response[bytes]:
    body = msgspec.json.encode(error.envelope(correlation_id))
    return Response(
        body,
        status_code=error.status_code,
        media_type="application/json",
        headers=error.response_headers(),
    )


def _describe_validation(exc: ValidationException) -> str:
    """Name the offending field: 'max_tokens: Expected `int`, got `str`'."""
    details = exc.extra if isinstance(exc.extra, list) else []
    parts = []
    for item in details:
        if not isinstance(item, dict):
            continue
        key, message = item.get("key"), item.get("message", "invalid value")
        parts.append(f"{key}: {message}" if key else str(message))
    return "; ".join(parts) or str(exc.detail)


def _from_http_exception(exc: HTTPException) -> ApiError:
    headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() == "allow"}
    if isinstance(exc, ValidationException):
        return ApiError(ErrorKind.INVALID_PARAMS, _describe_validation(exc), headers=headers)
    by_status = {
        404: (ErrorKind.NOT_FOUND, "no such resource"),
        405: (ErrorKind.METHOD_NOT_ALLOWED, "method not allowed on this resource"),
        409: (ErrorKind.CONFLICT, "conflict"),
    }
    kind, fallback = by_status.get(exc.status_code, (ErrorKind.INVALID_PARAMS, "bad request"))
    if exc.status_code >= 500:
        kind, fallback = ErrorKind.INTERNAL, "internal error"
    detail = exc.detail if exc.detail and exc.detail not in {"Not Found", "Method Not Allowed"} else fallback
    return ApiError(kind, detail, headers=headers)


def _handle_api_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    assert isinstance(exc, ApiError)
    return error_response(exc, correlation_id_of(request.scope))


def _handle_http_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    assert isinstance(exc, HTTPException)
    return error_response(_from_http_exception(exc), correlation_id_of(request.scope))


def _handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    error = ApiError(ErrorKind.INTERNAL, "internal error; see the service log")
    return error_response(error, correlation_id_of(request.scope))


def exception_handlers() -> ExceptionHandlersMap:
    """Handlers that turn every failure into the error envelope."""
    return {
        ApiError: _handle_api_error,
        HTTPException: _handle_http_exception,
        Exception: _handle_unexpected,
    }
