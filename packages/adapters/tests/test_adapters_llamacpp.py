"""The llama.cpp adapter against a real llama-server running the generated tiny model."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, aclosing

import httpx
import pytest

from llorch_adapters import (
    AdapterError,
    EngineProps,
    Finished,
    GenerationRequest,
    LlamaCppAdapter,
    SlotState,
    TokenDelta,
)
from llorch_contracts.api import ErrorKind
from llorch_testkit import free_port

# Shapes of the `fake_engine` fixture (tests/conftest.py).
Responder = Callable[[asyncio.StreamWriter], Awaitable[None]]
FakeEngine = Callable[[Responder], AbstractAsyncContextManager[tuple[str, list[bytes]]]]

TIMEOUTS = {"first_token_timeout_s": 10.0, "idle_timeout_s": 5.0}
ATTEMPTS = 3


def request(
    prompt: str = "Once upon a time",
    *,
    max_tokens: int = 32,
    seed: int = 7,
    stop: tuple[str, ...] = (),
    cache_prompt: bool = True,
) -> GenerationRequest:
    return GenerationRequest(
        task_id="t-1",
        prompt=prompt,
        max_tokens=max_tokens,
        seed=seed,
        temperature=0.8,
        top_p=0.95,
        top_k=40,
        stop=stop,
        cache_prompt=cache_prompt,
    )


async def run(adapter: LlamaCppAdapter, endpoint: str, req: GenerationRequest) -> tuple[str, Finished]:
    items = [item async for item in adapter.generate(endpoint, req, **TIMEOUTS)]
    *deltas_or_end, end = items
    deltas = [d for d in deltas_or_end if isinstance(d, TokenDelta)]
    assert len(deltas) == len(deltas_or_end)
    assert isinstance(end, Finished)
    return "".join(d.text for d in deltas), end


async def drain(
    stream: AsyncIterator[TokenDelta | Finished], into: list[TokenDelta | Finished] | None = None
) -> None:
    """Consume `stream`, keeping its items in `into`."""
    async for item in stream:
        if into is not None:
            into.append(item)


async def processing(client: httpx.AsyncClient, endpoint: str) -> bool:
    slots = (await client.get(f"{endpoint}/slots")).json()
    return any(slot["is_processing"] for slot in slots)


async def decode_calls(client: httpx.AsyncClient, endpoint: str) -> int:
    metrics = (await client.get(f"{endpoint}/metrics")).text
    match = re.search(r"^llamacpp:n_decode_total (\d+)", metrics, re.MULTILINE)
    assert match is not None
    return int(match.group(1))


async def until_slot_free(client: httpx.AsyncClient, endpoint: str, within_s: float) -> float:
    """Seconds until `/slots` shows no slot processing; fails after `within_s`."""
    started = time.monotonic()
    while await processing(client, endpoint):
        assert time.monotonic() - started < within_s, "slot still processing"
        await asyncio.sleep(0.001)
    return time.monotonic() - started


@pytest.mark.req("OC-ADAPT-5101", "OC-ADAPT-5102", "OC-ADAPT-5201", "OC-ADAPT-5206")
async def test_deltas_arrive_while_the_engine_is_still_decoding(
    llama_server: str, client: httpx.AsyncClient
) -> None:
    adapter = LlamaCppAdapter(client)
    req = request(max_tokens=400, cache_prompt=False)
    # On a loaded machine the engine can outrun a starved test process, so the
    # "still decoding" observation gets a few tries; a buffering adapter never passes.
    seen_decoding = False
    for _ in range(ATTEMPTS):
        async with aclosing(adapter.generate(llama_server, req, **TIMEOUTS)) as stream:
            first = await anext(stream)
            assert isinstance(first, TokenDelta)
            assert first.text
            slots = await adapter.slots(llama_server)
            seen_decoding = await processing(client, llama_server) and slots == SlotState(total=1, free=0)
            rest = [item async for item in stream]
        if seen_decoding:
            break
    assert seen_decoding, "the first delta never arrived while the engine was still decoding"
    deltas = [first, *rest[:-1]]
    end = rest[-1]
    assert all(isinstance(d, TokenDelta) and d.text for d in deltas)
    assert isinstance(end, Finished)
    assert end.tokens_out == 400 == sum(d.engine_tokens for d in deltas if isinstance(d, TokenDelta))
    assert end.tokens_in == await adapter.count_tokens(llama_server, req.prompt)
    assert end.finish_reason == "length"
    assert end.first_token_ms is not None
    assert 0 <= end.first_token_ms < 10_000
    assert end.decode_time_ms > 0
    assert await adapter.slots(llama_server) == SlotState(total=1, free=1)


@pytest.mark.req("OC-ADAPT-5010")
async def test_same_seed_gives_same_text_and_another_seed_other_text(
    llama_server: str, client: httpx.AsyncClient
) -> None:
    adapter = LlamaCppAdapter(client)
    first, _ = await run(adapter, llama_server, request(seed=11))
    again, _ = await run(adapter, llama_server, request(seed=11))
    other, _ = await run(adapter, llama_server, request(seed=12))
    assert first
    assert first == again
    assert other != first


@pytest.mark.req("OC-ADAPT-5202")
async def test_limit_ends_with_length_and_a_stop_word_with_stop(
    llama_server: str, client: httpx.AsyncClient
) -> None:
    adapter = LlamaCppAdapter(client)
    deltas = [
        item.text
        async for item in adapter.generate(llama_server, request(max_tokens=8), **TIMEOUTS)
        if isinstance(item, TokenDelta)
    ]
    full = "".join(deltas)
    stop_word = deltas[3]
    text, end = await run(adapter, llama_server, request(max_tokens=8, stop=(stop_word,)))
    assert end.finish_reason == "stop"
    assert text == full[: full.index(stop_word)]
    _, end = await run(adapter, llama_server, request(max_tokens=8))
    assert end.finish_reason == "length"
    assert end.tokens_out == 8


@pytest.mark.req("OC-ADAPT-5206")
async def test_props_slots_health_and_token_counts(llama_server: str, client: httpx.AsyncClient) -> None:
    adapter = LlamaCppAdapter(client)
    props = await adapter.props(llama_server)
    assert props.engine_version.startswith("llamacpp:")
    assert props == EngineProps(props.engine_version, ctx_max=512, slots_total=1)
    assert await adapter.slots(llama_server) == SlotState(total=1, free=1)
    assert await adapter.health(llama_server) is True
    raw = (await client.post(f"{llama_server}/tokenize", json={"content": "hello world"})).json()["tokens"]
    assert await adapter.count_tokens(llama_server, "hello world") == len(raw) + 1  # plus BOS


async def test_prompt_over_the_context_is_invalid_params_before_any_token(
    llama_server: str, client: httpx.AsyncClient
) -> None:
    adapter = LlamaCppAdapter(client)
    received: list[TokenDelta | Finished] = []
    with pytest.raises(AdapterError) as caught:
        await drain(adapter.generate(llama_server, request("hello " * 800), **TIMEOUTS), received)
    assert received == []
    error = caught.value
    assert error.kind is ErrorKind.INVALID_PARAMS
    assert (error.before_first_token, error.retriable) == (True, False)
    assert "context size" in error.message


async def test_aclose_after_five_deltas_frees_the_slot_and_stops_decoding(
    llama_server: str, client: httpx.AsyncClient
) -> None:
    adapter = LlamaCppAdapter(client)
    max_tokens = 480
    decoded = max_tokens
    # Retried for the same reason as above: a starved test process may read token 5
    # only after the engine already finished all 480.
    for _ in range(ATTEMPTS):
        decoded_before = await decode_calls(client, llama_server)
        stream = adapter.generate(llama_server, request(max_tokens=max_tokens), **TIMEOUTS)
        for _ in range(5):
            assert isinstance(await anext(stream), TokenDelta)
        await stream.aclose()
        assert await until_slot_free(client, llama_server, within_s=1.0) < 1.0
        decoded = await decode_calls(client, llama_server) - decoded_before
        if decoded < max_tokens // 2:
            break
    # The engine stopped soon after the close instead of decoding all 480 tokens.
    assert decoded < max_tokens // 2
    text, _ = await run(adapter, llama_server, request(max_tokens=4))
    assert text


async def test_cancelling_the_consuming_task_frees_the_slot(
    llama_server: str, client: httpx.AsyncClient
) -> None:
    adapter = LlamaCppAdapter(client)
    five = asyncio.Event()

    async def consume() -> None:
        count = 0
        async for _ in adapter.generate(llama_server, request(max_tokens=480), **TIMEOUTS):
            count += 1
            if count == 5:
                five.set()

    task = asyncio.create_task(consume())
    await five.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await until_slot_free(client, llama_server, within_s=1.0) < 1.0


async def test_connection_refused_is_pool_unavailable(client: httpx.AsyncClient) -> None:
    adapter = LlamaCppAdapter(client)
    endpoint = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(AdapterError) as caught:
        await drain(adapter.generate(endpoint, request(), **TIMEOUTS))
    assert caught.value.kind is ErrorKind.POOL_UNAVAILABLE
    assert (caught.value.before_first_token, caught.value.retriable) == (True, True)
    assert await adapter.health(endpoint) is False
    with pytest.raises(AdapterError) as props_error:
        await adapter.props(endpoint)
    assert props_error.value.kind is ErrorKind.POOL_UNAVAILABLE


async def test_an_engine_that_never_answers_is_a_decode_timeout(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    async def silent(_writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(3600)  # accepted, request read, never answered

    adapter = LlamaCppAdapter(client)
    async with fake_engine(silent) as (endpoint, _):
        started = time.monotonic()
        with pytest.raises(AdapterError) as caught:
            await drain(adapter.generate(endpoint, request(), first_token_timeout_s=0.2, idle_timeout_s=5.0))
        elapsed = time.monotonic() - started
    assert 0.2 <= elapsed < 2.0
    assert caught.value.kind is ErrorKind.DECODE_TIMEOUT
    assert (caught.value.before_first_token, caught.value.retriable) == (True, True)
