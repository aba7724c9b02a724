"""The llama.cpp adapter: llama-server's native API, verified against a real server (OC-ADAPT-5001).

Generation always streams (OC-ADAPT-5200): llama-server cancels a streaming
task as soon as its connection closes, but runs a non-streaming one to the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TypeVar

import httpx
import msgspec

from llorch_contracts.api import ErrorKind

from ._llamacpp_wire import (
    Frame,
    TokenizeBody,
    completion_body,
    decode_frame,
    decode_props,
    decode_slots,
    decode_tokenized,
    encode,
    engine_error,
    http_error,
)
from ._protocol import (
    AdapterError,
    EngineProps,
    Finished,
    GenerationRequest,
    SlotState,
    TokenDelta,
    WorkerAdapter,
)
from ._sse import DataLineReader

_JSON = {"content-type": "application/json", "accept": "text/event-stream, application/json"}
_MAX_ERROR_BODY_BYTES = 64 * 1024
# Answers meaning "this build has no such endpoint" rather than a failure.
_UNSUPPORTED = (404, 501)
# Before a byte is sent the engine cannot have started work: safe to place elsewhere.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_T = TypeVar("_T")


class LlamaCppAdapter(WorkerAdapter):
    """Talks to llama-server replicas through one shared `httpx.AsyncClient`.

    Timeouts are bounded per request (OC-ADAPT-5105): `connect_timeout_s` for
    connecting, `read_timeout_s` for reads other than the token stream, whose
    pace the `generate` deadlines bound instead. Redirects are never followed
    (OC-ADAPT-5106) and a sent completion is never retried (OC-ADAPT-5105).
    """

    engine = "llamacpp"

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        connect_timeout_s: float = 2.0,
        read_timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._clock = clock
        self._read_timeout = httpx.Timeout(read_timeout_s, connect=connect_timeout_s)
        self._stream_timeout = httpx.Timeout(
            connect=connect_timeout_s, read=None, write=read_timeout_s, pool=connect_timeout_s
        )

    async def generate(
        self,
        endpoint: str,
        request: GenerationRequest,
        *,
        first_token_timeout_s: float,
        idle_timeout_s: float,
    ) -> AsyncGenerator[TokenDelta | Finished, None]:
        loop = asyncio.get_running_loop()
        started = self._clock()
        deadline = loop.time() + first_token_timeout_s
        delivered = False
        first_token_ms: int | None = None
        finished: Finished | None = None
        try:
            # The response closes when this block ends, however it ends: on `aclose()`
            # or cancellation that is what makes llama-server free the slot (OC-ADAPT-5204).
            async with contextlib.AsyncExitStack() as stack:
                async with asyncio.timeout_at(deadline):
                    response = await stack.enter_async_context(
                        self._client.stream(
                            "POST",
                            f"{endpoint.rstrip('/')}/completion",
                            content=completion_body(request),
                            headers=_JSON,
                            timeout=self._stream_timeout,
                            follow_redirects=False,
                        )
                    )
                    if response.status_code != 200:
                        body = await _read_bounded(response)
                        raise http_error(response.status_code, body, before_first_token=True)
                reader = DataLineReader(response.aiter_bytes())
                emitted = 0
                while finished is None:
                    data = await reader.next_data(deadline)
                    if data is None:
                        raise AdapterError(
                            ErrorKind.WORKER_RESET,
                            "engine stream ended without its final frame",
                            before_first_token=not delivered,
                        )
                    frame = decode_frame(data)
                    deadline = loop.time() + idle_timeout_s
                    if frame.error is not None:
                        raise engine_error(frame.error, 0, before_first_token=not delivered)
                    if frame.content:  # OC-ADAPT-5201
                        if first_token_ms is None:
                            first_token_ms = round((self._clock() - started) * 1000)
                        delivered = True
                        yield TokenDelta(frame.content, frame.tokens_predicted - emitted)
                        emitted = frame.tokens_predicted
                    if frame.stop:
                        finished = _finished(frame, first_token_ms)
        except TimeoutError:
            what = f"no frame for {idle_timeout_s}s" if delivered else f"no token in {first_token_timeout_s}s"
            raise AdapterError(ErrorKind.DECODE_TIMEOUT, what, before_first_token=not delivered) from None
        except _NOT_SENT as exc:
            raise AdapterError(
                ErrorKind.POOL_UNAVAILABLE, f"cannot reach engine: {exc!r}", before_first_token=True
            ) from exc
        except httpx.TransportError as exc:
            raise AdapterError(
                ErrorKind.WORKER_RESET, f"engine connection lost: {exc!r}", before_first_token=not delivered
            ) from exc
        except msgspec.DecodeError as exc:
            raise AdapterError(
                ErrorKind.WORKER_RESET, f"malformed engine frame: {exc}", before_first_token=not delivered
            ) from exc
        # Yielded after the connection is closed: a consumer that stops iterating at
        # `Finished` without closing the generator must not hold the connection.
        yield finished

    async def health(self, endpoint: str) -> bool:
        try:
            response = await self._get(endpoint, "/health")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def props(self, endpoint: str) -> EngineProps:
        props = _decoded(decode_props, _body(await _sent(self._get(endpoint, "/props"))))
        # n_ctx of the default settings is the per-slot context (OC-ADAPT-5206).
        return EngineProps(
            engine_version=f"llamacpp:{props.build_info}",
            ctx_max=props.default_generation_settings.n_ctx,
            slots_total=props.total_slots,
        )

    async def slots(self, endpoint: str) -> SlotState:
        slots = _decoded(decode_slots, _body(await _sent(self._get(endpoint, "/slots"))))
        return SlotState(total=len(slots), free=sum(1 for slot in slots if not slot.is_processing))

    async def count_tokens(self, endpoint: str, text: str) -> int | None:
        # add_special: count the BOS token the completion adds, so the result equals `tokens_in`.
        response = await _sent(
            self._client.post(
                f"{endpoint.rstrip('/')}/tokenize",
                content=encode(TokenizeBody(content=text, add_special=True)),
                headers=_JSON,
                timeout=self._read_timeout,
                follow_redirects=False,
            )
        )
        if response.status_code in _UNSUPPORTED:
            return None
        return len(_decoded(decode_tokenized, _body(response)).tokens)

    def _get(self, endpoint: str, path: str) -> Awaitable[httpx.Response]:
        return self._client.get(
            f"{endpoint.rstrip('/')}{path}", timeout=self._read_timeout, follow_redirects=False
        )


async def _sent(pending: Awaitable[httpx.Response]) -> httpx.Response:
    """The engine's answer; transport failures raise the mapped `AdapterError`."""
    try:
        return await pending
    except _NOT_SENT as exc:
        raise AdapterError(
            ErrorKind.POOL_UNAVAILABLE, f"cannot reach engine: {exc!r}", before_first_token=True
        ) from exc
    except httpx.TransportError as exc:
        raise AdapterError(
            ErrorKind.WORKER_RESET, f"engine connection lost: {exc!r}", before_first_token=True
        ) from exc


def _body(response: httpx.Response) -> bytes:
    """The body of a 200 answer; any other status raises the mapped `AdapterError`."""
    if response.status_code != 200:
        raise http_error(response.status_code, response.content, before_first_token=True)
    return response.content


def _finished(frame: Frame, first_token_ms: int | None) -> Finished:
    """The end of a generation from llama-server's final frame (OC-ADAPT-5201, OC-ADAPT-5202)."""
    return Finished(
        tokens_in=frame.tokens_evaluated,
        tokens_out=frame.tokens_predicted,
        decode_time_ms=round(frame.timings.predicted_ms) if frame.timings else 0,
        first_token_ms=first_token_ms,
        finish_reason="length" if frame.stop_type == "limit" else "stop",
    )


def _decoded(decode: Callable[[bytes], _T], body: bytes) -> _T:
    try:
        return decode(body)
    except msgspec.DecodeError as exc:
        raise AdapterError(
            ErrorKind.INTERNAL, f"unexpected engine answer: {exc}", before_first_token=True
        ) from exc


async def _read_bounded(response: httpx.Response) -> bytes:
    """At most `_MAX_ERROR_BODY_BYTES` of an error body: enough for the message, never a whole stream."""
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) >= _MAX_ERROR_BODY_BYTES:
            break
    return bytes(body[:_MAX_ERROR_BODY_BYTES])
