"""The llama.cpp adapter against a byte-level fake of llama-server, for what the real one rarely does.

The real server covers the happy path, context errors, refusal and cancellation
(test_adapters_llamacpp.py); this fake covers the rest of the error mapping:
stalls, truncated and malformed streams, in-stream errors and other statuses.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager

import httpx
import pytest

from llorch_adapters import (
    SAMPLER_PROFILE_VERSION,
    AdapterError,
    Finished,
    GenerationRequest,
    LlamaCppAdapter,
    TokenDelta,
)
from llorch_contracts.api import ErrorKind

# Shapes of the `fake_engine` fixture (tests/conftest.py).
Responder = Callable[[asyncio.StreamWriter], Awaitable[None]]
FakeEngine = Callable[[Responder], AbstractAsyncContextManager[tuple[str, list[bytes]]]]

REQUEST = GenerationRequest(
    task_id="t-1", prompt="hi there", max_tokens=16, seed=42, temperature=0.5, top_p=0.9, top_k=20
)
TOKEN = b'data: {"index":0,"content":" stem","tokens":[20805],"stop":false,"tokens_predicted":1}\n\n'
FINAL = (
    b'data: {"index":0,"content":"","tokens":[],"stop":true,"stop_type":"eos","tokens_predicted":1,'
    b'"tokens_evaluated":3,"timings":{"prompt_n":3,"prompt_ms":1.2,"predicted_n":1,"predicted_ms":2.6}}\n\n'
)
SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"


def answer(*parts: bytes, then_sleep_s: float = 0.0) -> Responder:
    """A responder writing `parts` one write at a time, then optionally hanging before closing."""

    async def respond(writer: asyncio.StreamWriter) -> None:
        for part in parts:
            writer.write(part)
            await writer.drain()
        await asyncio.sleep(then_sleep_s)

    return respond


def error_answer(status: int, reason: str, body: Mapping[str, object] | str) -> Responder:
    payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    )
    return answer(head.encode(), payload)


async def collect(stream: AsyncIterator[TokenDelta | Finished], into: list[TokenDelta | Finished]) -> None:
    async for item in stream:
        into.append(item)


async def failure(
    client: httpx.AsyncClient, fake_engine: FakeEngine, respond: Responder, idle_timeout_s: float = 5.0
) -> tuple[AdapterError, list[TokenDelta | Finished]]:
    received: list[TokenDelta | Finished] = []
    async with fake_engine(respond) as (endpoint, _):
        stream = LlamaCppAdapter(client).generate(
            endpoint, REQUEST, first_token_timeout_s=5.0, idle_timeout_s=idle_timeout_s
        )
        with pytest.raises(AdapterError) as caught:
            await collect(stream, received)
    return caught.value, received


@pytest.mark.req("OC-ADAPT-5200")
async def test_fake_engine_receives_a_streaming_seeded_request_with_every_sampler(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    cold = GenerationRequest(
        task_id="t-2",
        prompt="hi there",
        max_tokens=16,
        seed=42,
        temperature=0.5,
        top_p=0.9,
        top_k=20,
        stop=("\n\n", "END"),
        cache_prompt=False,
    )
    async with fake_engine(answer(SSE_HEAD, TOKEN, FINAL)) as (endpoint, bodies):
        items = [
            item
            async for item in LlamaCppAdapter(client).generate(
                endpoint, cold, first_token_timeout_s=5.0, idle_timeout_s=5.0
            )
        ]
    sent = json.loads(bodies[0])
    assert {k: sent[k] for k in ("prompt", "n_predict", "seed", "temperature", "top_p", "top_k")} == {
        "prompt": "hi there",
        "n_predict": 16,
        "seed": 42,
        "temperature": 0.5,
        "top_p": 0.9,
        "top_k": 20,
    }
    assert (sent["stream"], sent["cache_prompt"], sent["stop"]) == (True, False, ["\n\n", "END"])
    # The rest of the sampler profile is explicit too, not left to engine defaults.
    assert {"min_p", "typical_p", "repeat_penalty", "presence_penalty", "frequency_penalty"} <= sent.keys()
    assert SAMPLER_PROFILE_VERSION
    delta, end = items
    assert delta == TokenDelta(" stem", 1)
    assert isinstance(end, Finished)
    assert (end.tokens_in, end.tokens_out, end.decode_time_ms, end.finish_reason) == (3, 1, 3, "stop")


async def test_fake_engine_frames_split_across_writes_are_reassembled(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    stream = (
        SSE_HEAD
        + b": ping\n\n"
        + TOKEN
        + TOKEN.replace(b'"tokens_predicted":1', b'"tokens_predicted":2')
        + FINAL
    )
    parts = [stream[i : i + 7] for i in range(0, len(stream), 7)]
    async with fake_engine(answer(*parts)) as (endpoint, _):
        items = [
            item
            async for item in LlamaCppAdapter(client).generate(
                endpoint, REQUEST, first_token_timeout_s=5.0, idle_timeout_s=5.0
            )
        ]
    assert items[:2] == [TokenDelta(" stem", 1), TokenDelta(" stem", 1)]
    assert isinstance(items[2], Finished)
    assert len(items) == 3


async def test_fake_engine_stalling_mid_stream_is_a_decode_timeout_after_the_first_token(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    error, received = await failure(
        client, fake_engine, answer(SSE_HEAD, TOKEN, then_sleep_s=3600), idle_timeout_s=0.2
    )
    assert received == [TokenDelta(" stem", 1)]
    assert error.kind is ErrorKind.DECODE_TIMEOUT
    assert (error.before_first_token, error.retriable) == (False, True)


async def test_fake_engine_pings_do_not_count_as_frames_for_the_idle_timeout(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    async def pinging(writer: asyncio.StreamWriter) -> None:
        writer.write(SSE_HEAD + TOKEN)
        while True:
            await asyncio.sleep(0.05)
            writer.write(b":\n\n")
            await writer.drain()

    error, _ = await failure(client, fake_engine, pinging, idle_timeout_s=0.3)
    assert error.kind is ErrorKind.DECODE_TIMEOUT


@pytest.mark.parametrize(
    ("name", "respond", "delivered"),
    [
        ("stream ends without final frame", answer(SSE_HEAD, TOKEN), 1),
        ("connection closed before any byte", answer(), 0),
        ("malformed frame", answer(SSE_HEAD, TOKEN, b"data: {not json\n\n"), 1),
        ("engine 500", error_answer(500, "Internal Server Error", {"error": {"type": "server_error"}}), 0),
        ("non-JSON 502", error_answer(502, "Bad Gateway", "<html>proxy</html>"), 0),
    ],
)  # fmt: skip
async def test_fake_engine_lost_or_broken_streams_are_worker_resets(
    client: httpx.AsyncClient, fake_engine: FakeEngine, name: str, respond: Responder, delivered: int
) -> None:
    error, received = await failure(client, fake_engine, respond)
    assert len(received) == delivered, name
    assert error.kind is ErrorKind.WORKER_RESET, name
    assert (error.before_first_token, error.retriable) == (delivered == 0, True), name


@pytest.mark.parametrize(
    ("status", "error_type", "kind"),
    [
        (400, "invalid_request_error", ErrorKind.INVALID_PARAMS),
        (400, "exceed_context_size_error", ErrorKind.INVALID_PARAMS),
        (429, "rate_limit", ErrorKind.REPLICA_EXHAUSTED),
        (503, "unavailable_error", ErrorKind.POOL_UNREADY),
        (401, "authentication_error", ErrorKind.INTERNAL),
    ],
)
async def test_fake_engine_error_statuses_map_to_kinds(
    client: httpx.AsyncClient, fake_engine: FakeEngine, status: int, error_type: str, kind: ErrorKind
) -> None:
    body = {"error": {"code": status, "message": "nope", "type": error_type}}
    error, received = await failure(client, fake_engine, error_answer(status, "Whatever", body))
    assert received == []
    assert error.kind is kind
    assert error.before_first_token is True
    assert error.retriable is (kind not in (ErrorKind.INVALID_PARAMS, ErrorKind.INTERNAL))
    assert error_type in error.message


async def test_fake_engine_error_frame_mid_stream_is_mapped_by_type(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    frame = b'data: {"error":{"code":500,"message":"decode failed","type":"server_error"}}\n\n'
    error, received = await failure(client, fake_engine, answer(SSE_HEAD, TOKEN, frame))
    assert received == [TokenDelta(" stem", 1)]
    assert error.kind is ErrorKind.WORKER_RESET
    assert error.before_first_token is False
    assert "decode failed" in error.message


@pytest.mark.req("OC-ADAPT-5106")
async def test_fake_engine_redirects_are_not_followed(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    async with fake_engine(answer(SSE_HEAD, TOKEN, FINAL)) as (elsewhere, elsewhere_bodies):
        redirect = f"HTTP/1.1 307 Temporary Redirect\r\nLocation: {elsewhere}/completion\r\n"
        redirect += "Content-Length: 0\r\nConnection: close\r\n\r\n"
        error, _ = await failure(client, fake_engine, answer(redirect.encode()))
        adapter = LlamaCppAdapter(client)
        async with fake_engine(answer(redirect.encode())) as (endpoint, _):
            healthy = await adapter.health(endpoint)
    assert error.kind is ErrorKind.INTERNAL
    assert healthy is False
    assert elsewhere_bodies == []


async def test_fake_engine_health_is_false_while_loading(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    loading = error_answer(503, "Service Unavailable", {"error": {"code": 503, "type": "unavailable_error"}})
    async with fake_engine(loading) as (endpoint, _):
        adapter = LlamaCppAdapter(client)
        assert await adapter.health(endpoint) is False
        with pytest.raises(AdapterError) as caught:
            await adapter.props(endpoint)
    assert caught.value.kind is ErrorKind.POOL_UNREADY


async def test_fake_engine_without_tokenize_reports_counting_unsupported(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    missing = error_answer(404, "Not Found", {"error": {"code": 404, "type": "not_found_error"}})
    async with fake_engine(missing) as (endpoint, _):
        assert await LlamaCppAdapter(client).count_tokens(endpoint, "hello") is None
