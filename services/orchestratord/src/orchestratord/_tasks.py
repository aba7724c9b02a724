"""The data plane over HTTP: admit, status, events (SSE), cancel (OC-CTRL-2001..2029)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Response, Stream
from litestar.status_codes import HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from llorch_contracts.api import (
    AdmissionResponse,
    ErrorKind,
    Preparation,
    QueueFullPolicy,
    TaskId,
    TaskRequest,
    TaskStatus,
    TaskStreams,
)
from llorch_core import AdmissionError
from llorch_dataplane import Orchestrator, Task, UnknownTaskError
from llorch_http import KEEPALIVE, SSE_HEADERS, ApiError, checked_id, correlation_id_of, identity_of

from ._bodies import decode_body
from ._model_gate import ModelGate

_decode_request = msgspec.json.Decoder(TaskRequest)


def parse_task_request(body: bytes) -> TaskRequest:
    """Decode the body, naming the offending field in the INVALID_PARAMS message (never a framework body)."""
    return decode_body(body, _decode_request)


def api_error(exc: AdmissionError) -> ApiError:
    policy = None if exc.policy_label is None else QueueFullPolicy(str(exc.policy_label))
    return ApiError(exc.kind, exc.message, retry_after_ms=exc.retry_after_ms, policy_label=policy)


def task_or_404(orchestrator: Orchestrator, task_id: str) -> Task:
    try:
        return orchestrator.get(checked_id(task_id, TaskId, "task_id"))
    except UnknownTaskError:
        raise ApiError(ErrorKind.NOT_FOUND, f"no task {task_id}") from None


def admission_response(task: Task) -> AdmissionResponse:
    position, predicted = task.last_wait or (0, 0)
    base = f"/v2/tasks/{task.task_id}"
    return AdmissionResponse(
        task_id=task.task_id,
        pool_id=task.pool_id,
        queue_position=position,
        predicted_start_ms=predicted,
        backoff_ms=0,
        streams=TaskStreams(
            sse=f"{base}/events", sse_verbose=f"{base}/events?verbose=true", cancel=f"{base}/cancel"
        ),
        preparation=Preparation(steps=[]),
    )


def resume_index(task: Task, last_event_id: str | None) -> int:
    """Id of the first frame to send: after `Last-Event-ID`, or 0 (OC-CTRL-2101)."""
    if last_event_id is None:
        return 0
    digits = last_event_id.isascii() and last_event_id.isdigit() and len(last_event_id) <= 19
    if not digits or int(last_event_id) >= task.log.next_id:
        raise ApiError(
            ErrorKind.INVALID_PARAMS, f"Last-Event-ID {last_event_id!r} was never sent for this task"
        )
    return int(last_event_id) + 1


async def event_stream(task: Task, start: int, verbose: bool, keepalive_s: float) -> AsyncIterator[bytes]:
    """The task's frames from `start`, flushed per batch as they are appended; keepalives while idle."""
    async for batch in task.log.follow(start, keepalive_s):
        if batch is None:
            yield KEEPALIVE
        elif len(batch) == 1:
            yield batch[0].verbose if verbose else batch[0].plain
        else:
            yield b"".join(f.verbose if verbose else f.plain for f in batch)


class TasksController(Controller):
    path = "/v2/tasks"

    @post("/", status_code=HTTP_202_ACCEPTED)
    async def create_task(
        self,
        request: Request[Any, Any, Any],
        orchestrator: NamedDependency[Orchestrator],
        models: NamedDependency[ModelGate],
    ) -> AdmissionResponse:
        task_request = parse_task_request(await request.body())
        models.check(task_request.model_ref)  # CAT-1031, CAT-1022
        try:
            task = orchestrator.admit(task_request, correlation_id_of(request.scope), identity_of(request))
        except AdmissionError as exc:
            raise api_error(exc) from exc
        await orchestrator.journaled()  # the 202 promises the task survives a crash (OC-CTRL-2120)
        return admission_response(task)

    @get("/{task_id:str}", sync_to_thread=False)
    def get_task(self, task_id: FromPath[str], orchestrator: NamedDependency[Orchestrator]) -> TaskStatus:
        return orchestrator.status(task_or_404(orchestrator, task_id).task_id)

    @get("/{task_id:str}/events", sync_to_thread=False)
    def stream_task_events(
        self,
        task_id: FromPath[str],
        request: Request[Any, Any, Any],
        orchestrator: NamedDependency[Orchestrator],
        keepalive_s: NamedDependency[float],
        verbose: FromQuery[bool] = False,
    ) -> Stream:
        task = task_or_404(orchestrator, task_id)
        start = resume_index(task, request.headers.get("last-event-id"))
        frames = event_stream(task, start, verbose, keepalive_s)
        return Stream(frames, media_type="text/event-stream", headers=SSE_HEADERS)

    @post("/{task_id:str}/cancel", status_code=HTTP_204_NO_CONTENT)
    async def cancel_task(
        self, task_id: FromPath[str], orchestrator: NamedDependency[Orchestrator]
    ) -> Response[None]:
        await orchestrator.cancel(task_or_404(orchestrator, task_id).task_id)
        return Response(None, status_code=HTTP_204_NO_CONTENT)
