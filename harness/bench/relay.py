"""Throughput: tokens per second one subscriber receives, against the mock engine's own rate.

- `in_process_rate`: `MockAdapter.generate` drained in this process, no HTTP:
  the most the engine can emit.
- `stream_rate`: one long task over HTTP, counted frame by frame by the lean
  client, from sending the request to reading the `end` event. Run against orchestratord
  (the relay under test) and against the bare engine server (the HTTP ceiling
  of this client and uvicorn). Server and client CPU time are sampled around
  each run, so "who was the bottleneck" is part of the result.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from procs import cpu_seconds
from sse_client import Connection, ProtocolError, tally_stream

from llorch_adapters import GenerationRequest, MockAdapter, MockScript, TokenDelta

PROMPT = "Relay benchmark: count the tokens."


@dataclass(frozen=True, slots=True)
class StreamRun:
    tokens: int
    first_token_s: float  # request sent to the first token frame read
    total_s: float  # request sent to the end frame read
    client_cpu_s: float
    server_cpu_s: float | None

    @property
    def tokens_per_s(self) -> float:
        # Over the whole request: conservative by the (sub-millisecond) time to first token.
        return self.tokens / self.total_s


async def in_process_rate(max_tokens: int) -> float:
    """Tokens/s of the fast mock engine drained directly (no HTTP, no orchestratord)."""
    adapter = MockAdapter(MockScript(fast=True))
    request = GenerationRequest(
        task_id="bench", prompt=PROMPT, max_tokens=max_tokens, seed=7, temperature=0.8, top_p=0.95, top_k=40
    )
    tokens = 0
    started = time.perf_counter()
    async for item in adapter.generate(
        "mock://bench/r0", request, first_token_timeout_s=30, idle_timeout_s=30
    ):
        if isinstance(item, TokenDelta):
            tokens += 1
    elapsed = time.perf_counter() - started
    if tokens != max_tokens:
        raise RuntimeError(f"mock engine produced {tokens} tokens, expected {max_tokens}")
    return tokens / elapsed


async def stream_rate(base_url: str, server_pid: int, max_tokens: int, *, via: str) -> StreamRun:
    """One task of `max_tokens` tokens through `via` ("orchestratord" or "engine"), timed at the client."""
    body = json.dumps(
        {"model_ref": "mock-model", "prompt": PROMPT, "max_tokens": max_tokens, "seed": 7}
    ).encode()
    connection = await Connection.open(base_url)
    try:
        server_cpu = cpu_seconds(server_pid)
        client_cpu = time.process_time()
        posted = time.perf_counter()
        if via == "orchestratord":
            admitted = await connection.request("POST", "/v2/tasks", body)
            answer = await admitted.read()
            if admitted.status != 202:
                raise ProtocolError(f"POST /v2/tasks answered {admitted.status}: {answer!r}")
            events = await connection.request("GET", f"/v2/tasks/{json.loads(answer)['task_id']}/events")
        else:
            events = await connection.request("POST", "/generate", body)
        tally = await tally_stream(events)
        ended = time.perf_counter()
        client_cpu = time.process_time() - client_cpu
        server_cpu_after = cpu_seconds(server_pid)
    finally:
        await connection.close()
    if tally.tokens != max_tokens or not (tally.terminal or b"").startswith(b"event: end"):
        raise ProtocolError(f"{via}: {tally.tokens} of {max_tokens} tokens, last frame {tally.terminal!r}")
    assert tally.first_token_at is not None
    return StreamRun(
        tokens=tally.tokens,
        first_token_s=tally.first_token_at - posted,
        total_s=ended - posted,
        client_cpu_s=client_cpu,
        server_cpu_s=None
        if server_cpu is None or server_cpu_after is None
        else server_cpu_after - server_cpu,
    )
