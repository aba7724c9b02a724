"""Every task's transcript becomes a `transcript` artifact when it ends (OC-CTRL-2067, CAT-1060..1063).

`ended` runs on the event loop and must not block: it copies what the transcript
needs (the task's fields and its immutable frames) and schedules the encoding,
hashing and atomic write in a worker thread. Pending writes are bounded; the
lifespan waits for them at shutdown, so tasks ended on the way out still get
their transcript. A failed write is logged and counted and never changes the
task's outcome.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import msgspec

from llorch_adapters import SAMPLER_PROFILE_VERSION
from llorch_contracts.api import ArtifactCreate, ArtifactKind, ArtifactRef, TaskRequest
from llorch_dataplane import Frame, NullObserver, PoolView, Task
from llorch_store import ArtifactStore

MAX_PENDING_WRITES = 256
SHUTDOWN_WAIT_S = 10.0
SAMPLER_PROFILES = {"llamacpp": SAMPLER_PROFILE_VERSION}
_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:=/-]{0,63}$")
log = logging.getLogger("llorch.transcripts")


@dataclass(frozen=True, kw_only=True)
class _Ended:
    """What a transcript needs from a task, copied on the event loop when it ended."""

    task_id: str
    outcome: str
    request: TaskRequest
    header: dict[str, Any]
    frames: list[Frame]


def transcript(ended: _Ended) -> ArtifactCreate:
    """The transcript: parameters, provenance, timings, counts and events; never the prompt (CAT-1062)."""
    parameters = msgspec.to_builtins(ended.request)
    prompt = parameters.pop("prompt").encode("utf-8")
    content = {
        **ended.header,
        "parameters": parameters,
        "prompt_sha256": hashlib.sha256(prompt).hexdigest(),
        "prompt_bytes": len(prompt),
        # The stream exactly as subscribers got it: id, event and data of every event. One string,
        # because re-decoding a long stream event by event would cost more than the relay itself.
        "events_sse": b"".join(frame.plain for frame in ended.frames).decode("utf-8"),
    }
    tags = [f"task:{ended.task_id}", f"pool:{ended.header['pool_id']}", f"outcome:{ended.outcome}"]
    if ended.header["session_id"] is not None:
        tags.append(f"session:{ended.header['session_id']}")
    return ArtifactCreate(
        kind=ArtifactKind.transcript,
        content=content,
        tags=[tag for tag in tags if _TAG.match(tag)],
        metadata={"task_id": ended.task_id},
    )


class TranscriptWriter(NullObserver):
    """A DataPlaneObserver that writes each ended task's transcript and records its id on the task."""

    def __init__(
        self, artifacts: ArtifactStore, view: PoolView, *, max_pending: int = MAX_PENDING_WRITES
    ) -> None:
        self.artifacts = artifacts
        self.view = view
        self.max_pending = max_pending
        self.pending: set[asyncio.Task[None]] = set()
        self.failures = 0

    def ended(self, task: Task) -> None:
        if len(self.pending) >= self.max_pending:
            self._failed(task.task_id, f"{len(self.pending)} transcript writes are already pending")
            return
        job = asyncio.get_running_loop().create_task(self._write(task, self._copy(task)))
        self.pending.add(job)
        job.add_done_callback(self.pending.discard)

    def _copy(self, task: Task) -> _Ended:
        pool = self.view.get(task.pool_id)
        session = task.request.session_id
        header = {
            "task_id": task.task_id,
            "state": task.state.value,
            "seed": task.seed,
            "engine": task.engine,
            "engine_version": task.engine_version,
            "model_ref": task.request.model_ref,
            "model_digest": pool.model_digest if pool is not None else None,
            "sampler_profile_version": SAMPLER_PROFILES.get(task.engine),
            "pool_id": task.pool_id,
            "replica_id": task.replica_id,
            "session_id": session if isinstance(session, str) else None,
            "finish_reason": None if task.finish_reason is None else task.finish_reason.value,
            "error": None if task.error is None else msgspec.to_builtins(task.error),
            "timings": {
                "admitted_ms": task.admitted_ms,
                "started_ms": task.started_ms,
                "first_token_ms": task.first_token_ms,
                "ended_ms": task.ended_ms,
                "decode_time_ms": task.decode_time_ms,
            },
            "tokens_in": task.tokens_in,
            "tokens_out": task.events.tokens,
        }
        outcome = task.state.value if task.terminal else "failed"
        return _Ended(
            task_id=task.task_id,
            outcome=outcome,
            request=task.request,
            header=header,
            frames=task.log.frames(0),
        )

    async def _write(self, task: Task, ended: _Ended) -> None:
        try:
            ref = await anyio.to_thread.run_sync(self._store, ended)
        except Exception as exc:  # a transcript never changes the task's outcome (CAT-1063)
            self._failed(task.task_id, repr(exc))
            return
        task.transcript_artifact_id = ref.id

    def _store(self, ended: _Ended) -> ArtifactRef:
        return self.artifacts.put(transcript(ended))

    def _failed(self, task_id: str, why: str) -> None:
        self.failures += 1
        log.error("could not store the transcript of task %s: %s", task_id, why)

    async def drain(self, timeout_s: float = SHUTDOWN_WAIT_S) -> None:
        """Wait for pending writes (at shutdown)."""
        if self.pending:
            await asyncio.wait(set(self.pending), timeout=timeout_s)

    @asynccontextmanager
    async def running(self, _: object) -> AsyncIterator[None]:
        """A lifespan hook: on the way out, let pending transcripts reach the disk."""
        try:
            yield
        finally:
            await self.drain()
