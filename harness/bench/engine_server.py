"""The "engine called directly" baseline: the mock engine behind the thinnest SSE server we can write.

A bare ASGI app (no framework) that runs one `MockAdapter.generate` per
`POST /generate` and streams its tokens as the same SSE `token` and `end`
frames orchestratord sends. Served by the same uvicorn stack, it costs one
HTTP hop and the engine's own work, so orchestratord's TTFT minus this one's is
what orchestratord adds: Litestar, admission, queue, dispatch and relay.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from llorch_adapters import GenerationRequest, MockAdapter, TokenDelta
from llorch_contracts.api import FinishReason, SseEnd, SseToken

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

FIRST_TOKEN_TIMEOUT_S = 30.0
IDLE_TIMEOUT_S = 30.0
_encode = msgspec.json.Encoder().encode


class GenerateBody(msgspec.Struct, kw_only=True, frozen=True):
    prompt: str
    max_tokens: int
    seed: int = 0


_decode = msgspec.json.Decoder(GenerateBody).decode


def create_engine_app(adapter: MockAdapter) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """An ASGI app: `POST /generate {prompt, max_tokens, seed}` streams `token` frames, then `end`."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] != "POST" or scope["path"] != "/generate":
            await send({"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        await stream_generation(adapter, _decode(body), send)

    return app


async def stream_generation(adapter: MockAdapter, body: GenerateBody, send: Send) -> None:
    """Generate in one task; the sender writes whatever frames are ready each time it runs."""
    request = GenerationRequest(
        task_id="direct", prompt=body.prompt, max_tokens=body.max_tokens, seed=body.seed,
        temperature=0.8, top_p=0.95, top_k=40,
    )  # fmt: skip
    frames: list[bytes] = []
    ready = asyncio.Event()

    async def produce() -> None:
        index = 0
        try:
            async for item in adapter.generate(
                "mock://direct/r0",
                request,
                first_token_timeout_s=FIRST_TOKEN_TIMEOUT_S,
                idle_timeout_s=IDLE_TIMEOUT_S,
            ):
                if isinstance(item, TokenDelta):
                    data = _encode(SseToken(t=item.text, i=index))
                    frames.append(b"id: %d\nevent: token\ndata: %s\n\n" % (index, data))
                    index += 1
                else:
                    reason = FinishReason.length if item.finish_reason == "length" else FinishReason.stop
                    end = SseEnd(
                        tokens_out=item.tokens_out, decode_time_ms=item.decode_time_ms, finish_reason=reason
                    )
                    frames.append(b"id: %d\nevent: end\ndata: %s\n\n" % (index, _encode(end)))
                ready.set()
        finally:
            ready.set()

    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
        }
    )
    producer = asyncio.create_task(produce())
    try:
        while True:
            if not frames:
                if producer.done():
                    break
                await ready.wait()
                ready.clear()
                continue
            batch = b"".join(frames)
            frames.clear()
            await send({"type": "http.response.body", "body": batch, "more_body": True})
        producer.result()
    finally:
        producer.cancel()
    await send({"type": "http.response.body", "body": b"", "more_body": False})
