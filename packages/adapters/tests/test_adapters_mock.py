"""The in-process mock adapter: determinism, every scripted fault, fast mode and cancellation."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator

import pytest

from llorch_adapters import (
    MOCK_ENGINE_VERSION,
    AdapterError,
    EngineProps,
    Finished,
    GenerationRequest,
    MockAdapter,
    MockScript,
    SlotState,
    TokenDelta,
    WorkerAdapter,
    mock_tokens,
)
from llorch_contracts.api import ErrorKind

ENDPOINT = "mock://pool/r0"
TIMEOUTS = {"first_token_timeout_s": 5.0, "idle_timeout_s": 5.0}


def request(prompt: str = "tell me a story", *, seed: int = 1, max_tokens: int = 12) -> GenerationRequest:
    return GenerationRequest(
        task_id="t-1", prompt=prompt, max_tokens=max_tokens, seed=seed, temperature=0.7, top_p=1.0, top_k=0
    )


async def drain(stream: AsyncIterator[TokenDelta | Finished], into: list[TokenDelta | Finished]) -> None:
    async for item in stream:
        into.append(item)


async def run(
    adapter: MockAdapter, req: GenerationRequest, **timeouts: float
) -> tuple[list[TokenDelta | Finished], AdapterError | None]:
    received: list[TokenDelta | Finished] = []
    try:
        await drain(adapter.generate(ENDPOINT, req, **(TIMEOUTS | timeouts)), received)
    except AdapterError as exc:
        return received, exc
    return received, None


def text_of(items: list[TokenDelta | Finished]) -> str:
    return "".join(item.text for item in items if isinstance(item, TokenDelta))


@pytest.mark.req("OC-ADAPT-5600", "OC-ADAPT-5101", "OC-ADAPT-5605")
async def test_mock_speaks_the_adapter_protocol_and_names_itself_mock() -> None:
    adapter = MockAdapter()
    assert isinstance(adapter, WorkerAdapter)
    items, error = await run(adapter, request(max_tokens=5))
    assert error is None
    *deltas, end = items
    assert [type(d) for d in deltas] == [TokenDelta] * 5
    assert isinstance(end, Finished)
    assert (end.tokens_in, end.tokens_out, end.finish_reason) == (mock_tokens("tell me a story"), 5, "length")
    assert end.first_token_ms is not None
    props = await adapter.props(ENDPOINT)
    assert props == EngineProps(MOCK_ENGINE_VERSION, ctx_max=4096, slots_total=1)
    assert props.engine_version.startswith("mock-")
    assert adapter.engine == "mock"
    assert await adapter.health(ENDPOINT) is True
    assert await adapter.count_tokens(ENDPOINT, "two words") == 3


@pytest.mark.req("OC-ADAPT-5602")
async def test_mock_output_is_a_function_of_seed_and_prompt() -> None:
    adapter = MockAdapter()
    first = text_of((await run(adapter, request(seed=3)))[0])
    assert first == text_of((await run(MockAdapter(), request(seed=3)))[0])
    assert first != text_of((await run(adapter, request(seed=4)))[0])
    assert first != text_of((await run(adapter, request("another prompt", seed=3)))[0])
    assert len(first.split()) == 12


@pytest.mark.parametrize(("position", "delivered"), [(0, 0), (3, 3)])
async def test_mock_error_at_token_n(position: int, delivered: int) -> None:
    adapter = MockAdapter(MockScript(error_at_token=position))
    items, error = await run(adapter, request())
    assert error is not None
    assert len(items) == delivered
    assert (error.kind, error.retriable, error.before_first_token) == (
        ErrorKind.WORKER_RESET,
        True,
        position == 0,
    )
    adapter.script = MockScript(error_at_token=2, error_kind=ErrorKind.INVALID_PARAMS)
    _, error = await run(adapter, request())
    assert error is not None
    assert (error.kind, error.retriable) == (ErrorKind.INVALID_PARAMS, False)
    assert adapter.active == 0


@pytest.mark.parametrize("position", [0, 4])
async def test_mock_dropped_connection_is_a_worker_reset(position: int) -> None:
    items, error = await run(MockAdapter(MockScript(drop_at_token=position)), request())
    assert error is not None
    assert len(items) == position
    assert error.kind is ErrorKind.WORKER_RESET
    assert error.before_first_token is (position == 0)
    assert "dropped" in error.message


async def test_mock_stall_trips_the_first_token_or_the_idle_timeout() -> None:
    adapter = MockAdapter(MockScript(stall_after_token=0))
    started = time.monotonic()
    items, error = await run(adapter, request(), first_token_timeout_s=0.05)
    assert 0.05 <= time.monotonic() - started < 1.0
    assert error is not None
    assert (items, error.kind, error.before_first_token) == ([], ErrorKind.DECODE_TIMEOUT, True)

    adapter.script = MockScript(stall_after_token=2)
    items, error = await run(adapter, request(), idle_timeout_s=0.05)
    assert error is not None
    assert (len(items), error.kind, error.before_first_token) == (2, ErrorKind.DECODE_TIMEOUT, False)
    assert adapter.active == 0


async def test_mock_latencies_are_applied_and_bounded_by_the_timeouts() -> None:
    adapter = MockAdapter(MockScript(first_token_delay_s=0.05, token_delay_s=0.01))
    started = time.monotonic()
    items, error = await run(adapter, request(max_tokens=6))
    elapsed = time.monotonic() - started
    assert error is None
    assert elapsed >= 0.05 + 5 * 0.01
    end = items[-1]
    assert isinstance(end, Finished)
    assert end.first_token_ms is not None
    assert end.first_token_ms >= 50
    assert end.decode_time_ms >= 50

    _, error = await run(adapter, request(), first_token_timeout_s=0.02)
    assert error is not None
    assert (error.kind, error.before_first_token) == (ErrorKind.DECODE_TIMEOUT, True)
    _, error = await run(adapter, request(), idle_timeout_s=0.005)
    assert error is not None
    assert (error.kind, error.before_first_token) == (ErrorKind.DECODE_TIMEOUT, False)


async def test_mock_eos_and_stop_words_finish_with_stop() -> None:
    items, _ = await run(MockAdapter(MockScript(eos_at_token=3)), request())
    assert isinstance(items[-1], Finished)
    assert (len(items), items[-1].finish_reason, items[-1].tokens_out) == (4, "stop", 3)

    full = text_of((await run(MockAdapter(), request(max_tokens=40)))[0])
    stop_word = full.split()[5]
    stopped = dataclasses.replace(request(max_tokens=40), stop=(stop_word,))
    items, _ = await run(MockAdapter(), stopped)
    end = items[-1]
    assert isinstance(end, Finished)
    assert end.finish_reason == "stop"
    assert stop_word not in text_of(items)
    assert full.startswith(text_of(items))


async def test_mock_health_states_and_slots_from_the_script() -> None:
    adapter = MockAdapter(
        lambda endpoint: MockScript(health="refused" if endpoint.endswith("r1") else "loading")
    )
    assert await adapter.health("mock://pool/r0") is False
    for endpoint, kind in (
        ("mock://pool/r1", ErrorKind.POOL_UNAVAILABLE),
        ("mock://pool/r0", ErrorKind.POOL_UNREADY),
    ):
        for call in (adapter.props(endpoint), adapter.slots(endpoint)):
            with pytest.raises(AdapterError) as caught:
                await call
            assert caught.value.kind is kind
        with pytest.raises(AdapterError) as caught:
            await anext(adapter.generate(endpoint, request(), **TIMEOUTS))
        assert (caught.value.kind, caught.value.before_first_token) == (kind, True)

    adapter.script = MockScript(slots_total=4)
    assert await adapter.slots(ENDPOINT) == SlotState(total=4, free=4)
    assert (await adapter.props(ENDPOINT)).slots_total == 4


async def test_mock_prompt_over_the_context_is_invalid_params() -> None:
    items, error = await run(MockAdapter(MockScript(ctx_max=8)), request("word " * 8))
    assert error is not None
    assert (items, error.kind, error.before_first_token) == ([], ErrorKind.INVALID_PARAMS, True)


async def test_mock_fast_mode_emits_every_token_and_still_lets_other_tasks_run() -> None:
    adapter = MockAdapter(MockScript(fast=True, yield_every=1000))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    background = asyncio.create_task(ticker())
    try:
        items, error = await run(adapter, request(max_tokens=100_000))
    finally:
        background.cancel()
    assert error is None
    assert len(items) == 100_001
    assert sum(item.engine_tokens for item in items if isinstance(item, TokenDelta)) == 100_000
    assert isinstance(items[-1], Finished)
    assert items[-1].tokens_out == 100_000
    assert ticks >= 99  # one turn of the loop per 1000 tokens


async def test_mock_aclose_and_task_cancel_release_the_slot() -> None:
    adapter = MockAdapter(MockScript(slots_total=2, token_delay_s=0.001))
    stream = adapter.generate(ENDPOINT, request(max_tokens=1000), **TIMEOUTS)
    for _ in range(5):
        assert isinstance(await anext(stream), TokenDelta)
    assert (adapter.active, adapter.active_on(ENDPOINT)) == (1, 1)
    assert await adapter.slots(ENDPOINT) == SlotState(total=2, free=1)
    await stream.aclose()
    assert adapter.active == 0
    assert await adapter.slots(ENDPOINT) == SlotState(total=2, free=2)

    produced = 0
    five = asyncio.Event()

    async def consume() -> None:
        nonlocal produced
        async for _ in adapter.generate(ENDPOINT, request(max_tokens=1000), **TIMEOUTS):
            produced += 1
            if produced == 5:
                five.set()

    task = asyncio.create_task(consume())
    await five.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert adapter.active == 0
    stopped_at = produced
    await asyncio.sleep(0.02)
    assert produced == stopped_at < 1000
