"""One admitted task: its request, where it runs, its state and its event log."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field

import msgspec

from llorch_contracts.api import (
    ErrorEnvelope,
    FinishReason,
    Priority,
    SseError,
    TaskRequest,
    TaskState,
    TaskStatus,
    TaskTimestamps,
)

from ._events import DEFAULT_MAX_EVENTS, TaskEvents
from ._tasklog import TaskLog

TERMINAL_STATES = frozenset({TaskState.completed, TaskState.failed, TaskState.canceled})


@dataclass(eq=False, kw_only=True)
class Task:
    """Mutable record of one task; only the event loop touches it."""

    task_id: str
    request: TaskRequest
    pool_id: str
    engine: str
    priority: Priority
    seed: int
    expected_tokens: int
    correlation_id: str
    identity: str
    admitted_at: float
    admitted_ms: int
    deadline_at: float | None
    log: TaskLog = field(default_factory=TaskLog)
    max_events: int = DEFAULT_MAX_EVENTS
    state: TaskState = TaskState.queued
    replica_id: str | None = None
    engine_version: str | None = None
    started_ms: int | None = None
    first_token_ms: int | None = None
    ended_ms: int | None = None
    ended_at: float | None = None
    tokens_in: int = 0
    decode_time_ms: int = 0
    finish_reason: FinishReason | None = None
    error: ErrorEnvelope | None = None
    runner: asyncio.Task[None] | None = None
    retried: bool = False
    last_wait: tuple[int, int] | None = None
    admitted_wait: tuple[int, int] = (0, 0)
    first_token_latency_ms: float | None = None
    transcript_artifact_id: str | None = None
    #: A digest of the request as admitted, kept only for a client-chosen task_id: a retried POST
    #: is compared with it after the prompt was dropped (OC-CTRL-2113, OC-CTRL-2187).
    request_digest: bytes | None = None

    def drop_prompt(self) -> None:
        """A finished task keeps what its status and resume need, not its prompt (OC-CTRL-2187)."""
        self.request = msgspec.structs.replace(self.request, prompt="")

    def __post_init__(self) -> None:
        self.events = TaskEvents(self.log, self.max_events, on_overflow=self._overflowed)

    def _overflowed(self, error: SseError) -> None:
        """The log's bound ended the task (OC-CORE-1166): it failed, whatever was running."""
        self.state = TaskState.failed
        self.error = ErrorEnvelope(code=error.code, message=error.message, retriable=error.retriable)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    def status(self, queue_position: int | None, predicted_start_ms: int | None) -> TaskStatus:
        """The contract's TaskStatus; position and prediction only while queued."""
        queued = self.state == TaskState.queued
        session = self.request.session_id
        return TaskStatus(
            task_id=self.task_id,
            state=self.state,
            pool_id=self.pool_id,
            replica_id=self.replica_id,
            model_ref=self.request.model_ref,
            priority=self.priority,
            session_id=None if not isinstance(session, str) else session,
            queue_position=queue_position if queued else None,
            predicted_start_ms=predicted_start_ms if queued else None,
            tokens_out=self.events.tokens,
            finish_reason=self.finish_reason,
            error=self.error,
            transcript_artifact_id=self.transcript_artifact_id,
            timestamps=TaskTimestamps(
                admitted_ms=self.admitted_ms,
                started_ms=self.started_ms,
                first_token_ms=self.first_token_ms,
                ended_ms=self.ended_ms,
            ),
        )


def request_digest(request: TaskRequest) -> bytes:
    """What identifies a request body for idempotent retries, without keeping the body."""
    return hashlib.blake2b(_encode_request(request), digest_size=16).digest()


_encode_request = msgspec.json.Encoder().encode
