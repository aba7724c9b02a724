"""The in-process mock engine: the same protocol as a real adapter, with scripted faults (OC-ADAPT-5600).

Like httpx's `MockTransport`, it needs no server: `endpoint` is any string
(`mock://pool/r0`) and only selects the script and the slot counter. Output is
a function of (seed, prompt) alone (OC-ADAPT-5602); faults come from the
constructor, never from the request (OC-ADAPT-5603).
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Literal

from llorch_contracts.api import ErrorKind

from ._protocol import (
    AdapterError,
    EngineProps,
    Finished,
    GenerationRequest,
    SlotState,
    TokenDelta,
    WorkerAdapter,
)

MOCK_ENGINE_VERSION = "mock-0.1.0"  # OC-ADAPT-5605: never mistaken for a real engine

# One word per token; the leading space makes the joined text read like llama-server's.
WORDS: tuple[str, ...] = (
    " alpha", " bravo", " charlie", " delta", " echo", " foxtrot", " golf", " hotel", " india",
    " juliet", " kilo", " lima", " mike", " november", " oscar", " papa", " quebec", " romeo",
    " sierra", " tango", " uniform", " victor", " whiskey", " xray", " yankee", " zulu", " amber",
    " basil", " cedar", " dune", " ember", " fern", " granite", " harbor", " iris", " jasper", " kelp",
    " lantern", " meadow", " nectar", " orchid", " pebble", " quartz", " river", " saffron",
    " thistle", " umber", " violet", " willow", " yarrow", " zephyr", " anchor", " beacon", " canyon",
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class MockScript:
    """How a mock replica behaves. Token positions count from 0; None disables a fault.

    - `first_token_delay_s`: wait before token 0 (prompt processing).
    - `token_delay_s`: wait before every later token.
    - `error_at_token`: an engine error of `error_kind` instead of token N.
    - `drop_at_token`: the connection drops instead of token N (`WORKER_RESET`).
    - `stall_after_token`: after N tokens the engine hangs without closing, so the
      caller's first-token (N = 0) or idle timeout fires (`DECODE_TIMEOUT`).
    - `eos_at_token`: the model ends with `stop` after N tokens.
    - `health`: `loading` answers like a 503 (`POOL_UNREADY`), `refused` like a
      closed port (`POOL_UNAVAILABLE`); `health()` is then False.
    - `fast`: no per-token waits; control goes back to the event loop only every
      `yield_every` tokens (benchmarks).
    """

    first_token_delay_s: float = 0.0
    token_delay_s: float = 0.0
    error_at_token: int | None = None
    error_kind: ErrorKind = ErrorKind.WORKER_RESET
    drop_at_token: int | None = None
    stall_after_token: int | None = None
    eos_at_token: int | None = None
    health: Literal["ready", "loading", "refused"] = "ready"
    slots_total: int = 1
    ctx_max: int = 4096
    fast: bool = False
    yield_every: int = 1024


def mock_tokens(text: str) -> int:
    """Tokens `text` costs as a mock prompt: one per word plus BOS, like `count_tokens` reports."""
    return len(text.split()) + 1


class MockAdapter(WorkerAdapter):
    """A scriptable fake engine; `active` counts generations that hold a slot right now.

    `script` is one `MockScript` for every endpoint or a function of the
    endpoint; it may be reassigned between calls to change faults.
    """

    engine = "mock"

    def __init__(
        self,
        script: MockScript | Callable[[str], MockScript] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.script = script if script is not None else MockScript()
        self._clock = clock
        self._active: Counter[str] = Counter()

    @property
    def active(self) -> int:
        """Generations in progress on all endpoints: 0 once every stream ended or was closed."""
        return sum(self._active.values())

    def active_on(self, endpoint: str) -> int:
        """Generations in progress on `endpoint`."""
        return self._active[endpoint]

    def script_for(self, endpoint: str) -> MockScript:
        """The script in force for `endpoint`."""
        return self.script if isinstance(self.script, MockScript) else self.script(endpoint)

    async def generate(
        self,
        endpoint: str,
        request: GenerationRequest,
        *,
        first_token_timeout_s: float,
        idle_timeout_s: float,
    ) -> AsyncGenerator[TokenDelta | Finished, None]:
        script = self.script_for(endpoint)
        _check_reachable(script)
        tokens_in = mock_tokens(request.prompt)
        if tokens_in > script.ctx_max:
            raise AdapterError(
                ErrorKind.INVALID_PARAMS,
                f"request ({tokens_in} tokens) exceeds the available context size ({script.ctx_max} tokens)",
                before_first_token=True,
            )
        started = self._clock()
        first_token_ms: int | None = None
        produced = 0
        finish_reason: Literal["stop", "length"] = "length"
        # str seeds are hashed with SHA-512: the same bytes on every run and machine (OC-ADAPT-5602).
        choose = random.Random(f"{request.seed}\x00{request.prompt}").choice
        faults = _fault_positions(script)
        eos_at, stops = script.eos_at_token, request.stop
        self._active[endpoint] += 1
        try:
            await _pause(script.first_token_delay_s, first_token_timeout_s, delivered=False)
            while produced < request.max_tokens:
                if produced in faults:
                    await _fault(script, produced, first_token_timeout_s, idle_timeout_s)
                if produced == eos_at:
                    finish_reason = "stop"
                    break
                word = choose(WORDS)
                if stops and any(stop in word for stop in stops):
                    finish_reason = "stop"
                    break
                if produced:
                    if not script.fast:
                        await _pause(script.token_delay_s, idle_timeout_s, delivered=True)
                    elif produced % script.yield_every == 0:
                        await asyncio.sleep(0)
                else:
                    first_token_ms = round((self._clock() - started) * 1000)
                produced += 1
                yield TokenDelta(word, 1)
        finally:
            # Runs on aclose() and cancellation too: the slot is free again (OC-ADAPT-5604).
            self._active[endpoint] -= 1
        decode_ms = round((self._clock() - started) * 1000) - (first_token_ms or 0)
        yield Finished(
            tokens_in=tokens_in,
            tokens_out=produced,
            decode_time_ms=decode_ms,
            first_token_ms=first_token_ms,
            finish_reason=finish_reason,
        )

    async def health(self, endpoint: str) -> bool:
        return self.script_for(endpoint).health == "ready"

    async def props(self, endpoint: str) -> EngineProps:
        script = self.script_for(endpoint)
        _check_reachable(script)
        return EngineProps(MOCK_ENGINE_VERSION, ctx_max=script.ctx_max, slots_total=script.slots_total)

    async def slots(self, endpoint: str) -> SlotState:
        script = self.script_for(endpoint)
        _check_reachable(script)
        return SlotState(script.slots_total, free=max(0, script.slots_total - self._active[endpoint]))

    async def count_tokens(self, endpoint: str, text: str) -> int | None:
        _check_reachable(self.script_for(endpoint))
        return mock_tokens(text)


def _check_reachable(script: MockScript) -> None:
    if script.health == "refused":
        raise AdapterError(
            ErrorKind.POOL_UNAVAILABLE, "mock engine refused the connection", before_first_token=True
        )
    if script.health == "loading":
        raise AdapterError(
            ErrorKind.POOL_UNREADY, "mock engine is loading the model", before_first_token=True
        )


def _fault_positions(script: MockScript) -> tuple[int | None, ...]:
    return (script.error_at_token, script.drop_at_token, script.stall_after_token)


async def _fault(
    script: MockScript, position: int, first_token_timeout_s: float, idle_timeout_s: float
) -> None:
    """Play the fault scripted at `position`; only a stall can return (it never does before a timeout)."""
    delivered = position > 0
    if position == script.error_at_token:
        raise AdapterError(
            script.error_kind, f"mock engine error at token {position}", before_first_token=not delivered
        )
    if position == script.drop_at_token:
        raise AdapterError(
            ErrorKind.WORKER_RESET,
            f"mock engine dropped the connection at token {position}",
            before_first_token=not delivered,
        )
    await _pause(math.inf, idle_timeout_s if delivered else first_token_timeout_s, delivered=delivered)


async def _pause(delay_s: float, timeout_s: float, *, delivered: bool) -> None:
    """Wait `delay_s`, or fail with `DECODE_TIMEOUT` once `timeout_s` passes first."""
    if delay_s > timeout_s:
        await asyncio.sleep(timeout_s)
        what = f"no frame for {timeout_s}s" if delivered else f"no token in {timeout_s}s"
        raise AdapterError(ErrorKind.DECODE_TIMEOUT, what, before_first_token=not delivered)
    await asyncio.sleep(delay_s)
