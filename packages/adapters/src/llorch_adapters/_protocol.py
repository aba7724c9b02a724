"""The one protocol through which orchestratord talks to engines (OC-ADAPT-5100, OC-ADAPT-5101).

Every method is async. `generate` is an async generator: it yields `TokenDelta`s
as the engine produces them and then exactly one `Finished`, or raises one
`AdapterError`, and nothing after either. Closing it (`aclose()`, leaving an
`aclosing` block, cancelling the consuming task) closes the engine connection
at once, which is how a request is cancelled and the engine's slot freed.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import ClassVar, Literal

import msgspec

from llorch_contracts.api import ErrorKind

__all__ = [
    "AdapterError",
    "EngineProps",
    "Finished",
    "GenerationRequest",
    "SlotState",
    "TokenDelta",
    "WorkerAdapter",
]

# Kinds a caller may retry on another replica (OC-ADAPT-5103); `before_first_token`
# tells it whether a retry would be invisible to the client.
_RETRIABLE = frozenset(
    {
        ErrorKind.WORKER_RESET,
        ErrorKind.DECODE_TIMEOUT,
        ErrorKind.POOL_UNAVAILABLE,
        ErrorKind.POOL_UNREADY,
        ErrorKind.REPLICA_EXHAUSTED,
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerationRequest:
    """One completion to run on one replica; every sampling parameter is explicit (OC-ADAPT-5107)."""

    task_id: str
    prompt: str
    max_tokens: int
    seed: int
    temperature: float
    top_p: float
    top_k: int
    stop: tuple[str, ...] = ()
    # False for a `cold` KV hint (OC-ADAPT-5200).
    cache_prompt: bool = True


class TokenDelta(msgspec.Struct, frozen=True):
    """Text the engine produced, and how many engine tokens it spans (a Struct: cheap on the hot path)."""

    text: str
    engine_tokens: int


class Finished(msgspec.Struct, frozen=True, kw_only=True):
    """The end of a successful generation: the last item a `generate` stream yields."""

    tokens_in: int
    tokens_out: int
    decode_time_ms: int
    first_token_ms: int | None
    finish_reason: Literal["stop", "length"]


class AdapterError(Exception):
    """A typed engine failure; raised by `generate` instead of `Finished` (OC-ADAPT-5101)."""

    def __init__(
        self, kind: ErrorKind, message: str, *, before_first_token: bool, retriable: bool | None = None
    ) -> None:
        super().__init__(f"{kind.value}: {message}")
        self.kind = kind
        self.message = message
        # True when no TokenDelta was yielded, so a retry elsewhere cannot duplicate output.
        self.before_first_token = before_first_token
        self.retriable = kind in _RETRIABLE if retriable is None else retriable


@dataclass(frozen=True, slots=True)
class EngineProps:
    """What a running engine reports about itself."""

    engine_version: str
    ctx_max: int
    slots_total: int


@dataclass(frozen=True, slots=True)
class SlotState:
    """Slots of one replica right now; `free` excludes slots that are decoding."""

    total: int
    free: int


class WorkerAdapter(abc.ABC):
    """Base class of every engine adapter; adapters share one injected `httpx.AsyncClient`.

    `endpoint` is the replica's base URL from the pool view (OC-ADAPT-5106); the
    mock accepts any string.
    """

    engine: ClassVar[str]

    @abc.abstractmethod
    def generate(
        self,
        endpoint: str,
        request: GenerationRequest,
        *,
        first_token_timeout_s: float,
        idle_timeout_s: float,
    ) -> AsyncGenerator[TokenDelta | Finished, None]:
        """Stream the completion: deltas as parsed, then one `Finished`; failures raise `AdapterError`.

        `first_token_timeout_s` bounds the time from the call to the first engine
        frame, `idle_timeout_s` the gap between later frames; either one passing
        raises `DECODE_TIMEOUT`. Implementations are `async def ... yield`.
        """

    @abc.abstractmethod
    async def health(self, endpoint: str) -> bool:
        """True when the engine answers and is ready to serve; never raises."""

    @abc.abstractmethod
    async def props(self, endpoint: str) -> EngineProps:
        """Engine version, per-slot context and slot count; raises `AdapterError`."""

    @abc.abstractmethod
    async def slots(self, endpoint: str) -> SlotState:
        """Total and free slots as the engine itself reports them; raises `AdapterError`."""

    @abc.abstractmethod
    async def count_tokens(self, endpoint: str, text: str) -> int | None:
        """Tokens `text` costs as a prompt (special tokens included), or None when unsupported."""
