"""The data plane against the real llama-server: incremental streams, seeds, race-free cancel, slot release.

The whole stack runs: pool-managerd spawns and health-gates llama-server on the
generated tiny model; orchestratord follows its watch stream and dispatches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from llorch_adapters import (
    EngineProps,
    Finished,
    GenerationRequest,
    LlamaCppAdapter,
    SlotState,
    TokenDelta,
    WorkerAdapter,
)
from llorch_provisioning import EngineInstall
from llorch_testkit import Stack, parse_sse, running_stack, stack_config

POOL = "  - id: tiny\n    allow_cpu_inference: true\n    ctx_max: 2048\n    model: {ref: tiny-llama}\n"
LIMITS = "  admission: {max_tokens_limit: 2000}\n"
# Generous: on this loaded 2-core machine a thread was seen waiting ~1 s for the CPU.
CATCH_UP_S = 30.0
HELD_SEED = 4242
HELD_AFTER_TOKENS = 5


class HeldStream(WorkerAdapter):
    """The real llama.cpp adapter, except that the stream of a task with `HELD_SEED` stops after
    `HELD_AFTER_TOKENS` tokens until `release` is set (OC-CTRL-2021).

    Why: a check on arrival times cannot tell streaming from buffering here. On a loaded 2-core
    machine orchestratord's thread was measured off the CPU for up to ~1 s (using no CPU time),
    while llama-server wrote a whole 1500-token answer in 0.6-0.9 s; the frames then waited in the
    kernel's socket buffer and reached the subscriber together, though nothing in the product held
    them. Holding the engine's stream instead makes "the task is still generating" a fact, not a race.
    """

    engine = "llamacpp"

    def __init__(self) -> None:
        self.release = threading.Event()

    @contextlib.asynccontextmanager
    async def _real(self) -> AsyncIterator[LlamaCppAdapter]:
        # A client per call, opened and closed on orchestratord's own loop: a client shared across the
        # module would leave a transport open on that loop when it closes (uvloop then fails with EBUSY).
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None)) as client:
            yield LlamaCppAdapter(client)

    async def generate(
        self,
        endpoint: str,
        request: GenerationRequest,
        *,
        first_token_timeout_s: float,
        idle_timeout_s: float,
    ) -> AsyncGenerator[TokenDelta | Finished, None]:
        tokens = 0
        async with self._real() as real:
            stream = real.generate(
                endpoint, request, first_token_timeout_s=first_token_timeout_s, idle_timeout_s=idle_timeout_s
            )
            async with contextlib.aclosing(stream):
                async for item in stream:
                    yield item
                    tokens += isinstance(item, TokenDelta)
                    if request.seed == HELD_SEED and tokens == HELD_AFTER_TOKENS:
                        await asyncio.to_thread(self.release.wait)

    async def health(self, endpoint: str) -> bool:
        async with self._real() as real:
            return await real.health(endpoint)

    async def props(self, endpoint: str) -> EngineProps:
        async with self._real() as real:
            return await real.props(endpoint)

    async def slots(self, endpoint: str) -> SlotState:
        async with self._real() as real:
            return await real.slots(endpoint)

    async def count_tokens(self, endpoint: str, text: str) -> int | None:
        async with self._real() as real:
            return await real.count_tokens(endpoint, text)


@pytest.fixture(scope="module")
def held() -> HeldStream:
    return HeldStream()


@pytest.fixture(scope="module")
def stack(
    llamacpp: EngineInstall, tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory, held: HeldStream
) -> Iterator[Stack]:
    config = stack_config(POOL, orchestratord_yaml=LIMITS)
    runtime = tmp_path_factory.mktemp("run")
    with running_stack(
        config, llamacpp.binary_path, tiny_model_path, runtime, adapters={"llamacpp": held}
    ) as running:
        yield running


def submit(client: httpx.Client, **body: object) -> str:
    payload: dict[str, object] = {"model_ref": "tiny-llama", "prompt": "Once upon a time", "max_tokens": 32}
    payload.update(body)
    response = client.post("/v2/tasks", json=payload)
    assert response.status_code == 202, response.text
    return str(response.json()["task_id"])


def transcript(client: httpx.Client, task_id: str) -> list[tuple[str, dict[str, object]]]:
    text = client.get(f"/v2/tasks/{task_id}/events").text
    return [(e.event, json.loads(e.data)) for e in parse_sse(text)]


def engine_slot_busy(stack: Stack) -> bool:
    pools = httpx.get(f"{stack.pool_managerd}/v2/pools").json()
    endpoint = pools[0]["replicas"][0]["endpoint"]
    return any(slot["is_processing"] for slot in httpx.get(f"{endpoint}/slots").json())


def text_of(events: list[tuple[str, dict[str, object]]]) -> str:
    return "".join(str(data["t"]) for name, data in events if name == "token")


class Subscriber(threading.Thread):
    """Reads one task's SSE stream in a thread, keeping each event as it is parsed off the wire."""

    def __init__(self, url: str) -> None:
        super().__init__(name="sse-subscriber", daemon=True)
        self.url = url
        self.events: list[tuple[str, dict[str, object]]] = []
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.stream("GET", self.url, timeout=60) as response:
                name = ""
                for line in response.iter_lines():
                    if line.startswith("event: "):
                        name = line[7:]
                    elif line.startswith("data: "):
                        self.events.append((name, json.loads(line[6:])))
        except BaseException as exc:  # handed to the test, which re-raises it
            self.failure = exc

    def names(self) -> list[str]:
        return [name for name, _ in list(self.events)]


@pytest.mark.req("OC-ADAPT-5201", "OC-CTRL-2021")
def test_tokens_arrive_while_the_engine_is_still_generating(stack: Stack, held: HeldStream) -> None:
    with httpx.Client(base_url=stack.orchestratord, timeout=30) as client:
        task_id = submit(client, max_tokens=1500, seed=HELD_SEED)
        subscriber = Subscriber(f"{stack.orchestratord}/v2/tasks/{task_id}/events")
        subscriber.start()
        try:
            # The engine's stream is held after its first tokens, so the task cannot end meanwhile: a
            # subscriber that does not get them within a generous bound is being held back by the relay.
            deadline = time.monotonic() + CATCH_UP_S
            while subscriber.names().count("token") < HELD_AFTER_TOKENS and subscriber.failure is None:
                assert time.monotonic() < deadline, f"tokens relayed but not delivered: {subscriber.names()}"
                time.sleep(0.01)
            status = client.get(f"/v2/tasks/{task_id}").json()
            assert (status["state"], status["tokens_out"]) == ("running", HELD_AFTER_TOKENS)
            assert "end" not in subscriber.names()
        finally:
            held.release.set()
            subscriber.join(timeout=60)
    if subscriber.failure is not None:
        raise subscriber.failure
    assert subscriber.events[-1][0] == "end"
    assert subscriber.events[-1][1]["tokens_out"] == 1500
    indices = [data["i"] for name, data in subscriber.events if name == "token"]
    assert indices == list(range(len(indices))), "every token once, in order"


@pytest.mark.req("OC-TEST-7001")
def test_same_seed_same_text_on_the_real_engine(stack: Stack) -> None:
    with httpx.Client(base_url=stack.orchestratord, timeout=30) as client:
        first = text_of(transcript(client, submit(client, seed=1234)))
        second = text_of(transcript(client, submit(client, seed=1234)))
        other = text_of(transcript(client, submit(client, seed=99)))
    assert first
    assert first == second
    assert first != other


@pytest.mark.req("ORCH-3026", "OC-CTRL-2012", "OC-ADAPT-5204")
def test_cancel_mid_stream_never_yields_a_later_token_and_frees_the_slot(stack: Stack) -> None:
    canceled_mid_stream = 0
    with httpx.Client(base_url=stack.orchestratord, timeout=30) as client:
        for round_no in range(15):
            task_id = submit(client, max_tokens=1500, seed=round_no)
            with client.stream("GET", f"/v2/tasks/{task_id}/events") as stream:
                seen = 0
                for line in stream.iter_lines():
                    seen += line.startswith("event: token")
                    if seen == 3 + round_no:
                        break
            acknowledged = client.post(f"/v2/tasks/{task_id}/cancel")
            assert acknowledged.status_code == 204
            after_ack = transcript(client, task_id)
            assert not engine_slot_busy(stack), "the engine slot is free once the cancel is acknowledged"
            time.sleep(0.02)
            assert transcript(client, task_id) == after_ack, "nothing is appended after the acknowledgement"
            names = [name for name, _ in after_ack]
            assert names[-1] == "end"
            if after_ack[-1][1]["finish_reason"] != "canceled":
                continue  # the engine finished first: a cancel of a finished task is a no-op
            canceled_mid_stream += 1
            assert "token" not in names[names.index("end") :]
            assert after_ack[-1][1]["tokens_out"] == names.count("token")
    assert canceled_mid_stream >= 10, "most rounds must cancel while the engine streams"


def test_context_overflow_is_refused_before_it_is_queued(stack: Stack) -> None:
    with httpx.Client(base_url=stack.orchestratord, timeout=30) as client:
        response = client.post(
            "/v2/tasks", json={"model_ref": "tiny-llama", "prompt": "x", "max_tokens": 1999, "ctx": 100000}
        )
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_PARAMS"
    assert "context" in response.json()["message"]


def test_metrics_count_real_tokens(stack: Stack) -> None:
    with httpx.Client(base_url=stack.orchestratord, timeout=30) as client:

        def tokens_out_total() -> float:
            lines = client.get("/metrics").text.splitlines()
            return sum(
                float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("tokens_out_total{")
            )

        before = tokens_out_total()
        events = transcript(client, submit(client, max_tokens=20, seed=5))
        after = tokens_out_total()
    assert after - before == events[-1][1]["tokens_out"]
