"""Typed writers for a task's five event kinds (OC-CTRL-2020..2029), encoded once into its log."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
from msgspec import UNSET

from llorch_contracts.api import (
    ErrorKind,
    FinishReason,
    PreparationProgress,
    SseEnd,
    SseError,
    SseMetrics,
    SseStarted,
    SseToken,
)

from ._tasklog import TERMINAL, Frame, TaskLog

_encode = msgspec.json.Encoder().encode
#: `orchestratord.sse.max_events_per_task`'s default; the orchestrator passes the configured value.
DEFAULT_MAX_EVENTS = 65536


def _frame(event: bytes, event_id: int, data: bytes) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event_id, event, data)


class TaskEvents:
    """Appends well-formed events to one task's log; every method returns whether it was appended."""

    def __init__(
        self,
        log: TaskLog,
        max_events: int = DEFAULT_MAX_EVENTS,
        on_overflow: Callable[[SseError], None] | None = None,
    ) -> None:
        self.log = log
        self.tokens = 0
        self.max_events = max_events
        self.on_overflow = on_overflow

    def _append(self, event: str, data: bytes, verbose: bytes | None = None) -> bool:
        if event not in TERMINAL and len(self.log) >= self.max_events - 1:
            # The last place is kept for the terminal event (OC-CORE-1166); the runner then aborts the engine.
            message = f"the task's event log reached max_events_per_task ({self.max_events})"
            if self.error(ErrorKind.INTERNAL, message, retriable=False) and self.on_overflow is not None:
                self.on_overflow(SseError(code=ErrorKind.INTERNAL, message=message, retriable=False))
            return False
        event_id = self.log.next_id
        plain = _frame(event.encode(), event_id, data)
        full = plain if verbose is None else _frame(event.encode(), event_id, verbose)
        return self.log.append(Frame(event, plain, full))

    def started(self, queue_position: int, predicted_start_ms: int) -> bool:
        payload = SseStarted(queue_position=queue_position, predicted_start_ms=predicted_start_ms)
        return self._append("started", _encode(payload))

    def token(self, text: str) -> bool:
        """`token {t, i}`; `i` counts this task's token events from 0 (refused after a cancel)."""
        if not self.log.accepts_tokens:
            return False
        appended = self._append("token", _encode(SseToken(t=text, i=self.tokens)))
        self.tokens += appended
        return appended

    def metrics(
        self,
        metrics: SseMetrics,
        *,
        human: str | None = None,
        prep: dict[str, PreparationProgress] | None = None,
    ) -> bool:
        """A metrics frame; `human` and `prep` only reach `?verbose=true` subscribers."""
        verbose = None
        if human is not None or prep:
            rich = msgspec.structs.replace(metrics, human=human or UNSET, prep=prep or UNSET)
            verbose = _encode(rich)
        return self._append("metrics", _encode(metrics), verbose)

    def end(self, tokens_out: int, decode_time_ms: int, finish_reason: FinishReason) -> bool:
        payload = SseEnd(tokens_out=tokens_out, decode_time_ms=decode_time_ms, finish_reason=finish_reason)
        return self._append("end", _encode(payload))

    def error(
        self, code: ErrorKind, message: str, *, retriable: bool, retry_after_ms: int | None = None
    ) -> bool:
        payload = SseError(
            code=code,
            message=message[:2048] or code.value,
            retriable=retriable,
            retry_after_ms=UNSET if retry_after_ms is None else retry_after_ms,
        )
        return self._append("error", _encode(payload))
