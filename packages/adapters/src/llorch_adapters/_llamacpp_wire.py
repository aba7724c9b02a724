"""llama-server's wire shapes, the request body we send, and how its errors map to `ErrorKind`.

Only the fields the adapter reads are declared; msgspec skips the rest of a
frame (the final frame's large `generation_settings`) without building it.
"""

from __future__ import annotations

import msgspec

from llorch_contracts.api import ErrorKind

from ._protocol import AdapterError, GenerationRequest

# OC-ADAPT-5107: every sampling parameter goes out explicitly, so a llama-server
# upgrade that changes a default cannot change our results silently. Values are
# llama-server's defaults as of this profile version.
SAMPLER_PROFILE_VERSION = "llamacpp-sampler-v1"
MAX_ERROR_MESSAGE_CHARS = 500


class CompletionBody(msgspec.Struct, kw_only=True):
    """`POST /completion` body (OC-ADAPT-5200)."""

    prompt: str
    n_predict: int
    seed: int
    temperature: float
    top_p: float
    top_k: int
    stop: tuple[str, ...]
    cache_prompt: bool
    stream: bool = True
    min_p: float = 0.05
    typical_p: float = 1.0
    top_n_sigma: float = -1.0
    repeat_penalty: float = 1.0
    repeat_last_n: int = 64
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    dry_multiplier: float = 0.0
    xtc_probability: float = 0.0
    mirostat: int = 0
    n_probs: int = 0


class EngineErrorBody(msgspec.Struct):
    """The `error` object of an HTTP error body or an in-stream error frame."""

    code: int = 0
    message: str = ""
    type: str = ""


class Timings(msgspec.Struct):
    predicted_ms: float = 0.0


class Frame(msgspec.Struct):
    """One streamed `data:` frame; `error` is set instead of the rest on an in-stream error."""

    content: str = ""
    stop: bool = False
    stop_type: str = ""
    tokens_predicted: int = 0
    tokens_evaluated: int = 0
    timings: Timings | None = None
    error: EngineErrorBody | None = None


class ErrorEnvelope(msgspec.Struct):
    error: EngineErrorBody


class Props(msgspec.Struct):
    class Settings(msgspec.Struct):
        n_ctx: int = 0

    build_info: str = "unknown"
    total_slots: int = 0
    default_generation_settings: Settings = msgspec.field(default_factory=Settings)


class Slot(msgspec.Struct):
    is_processing: bool = False


class Tokenized(msgspec.Struct):
    tokens: list[int]


class TokenizeBody(msgspec.Struct):
    content: str
    add_special: bool = True


encode = msgspec.json.Encoder().encode
decode_frame = msgspec.json.Decoder(Frame).decode
decode_error = msgspec.json.Decoder(ErrorEnvelope).decode
decode_props = msgspec.json.Decoder(Props).decode
decode_slots = msgspec.json.Decoder(list[Slot]).decode
decode_tokenized = msgspec.json.Decoder(Tokenized).decode

_INVALID_TYPES = frozenset({"invalid_request_error", "exceed_context_size_error", "not_supported_error"})


def completion_body(request: GenerationRequest) -> bytes:
    """The encoded `/completion` body for `request`: streaming, seeded, every sampler explicit."""
    return encode(
        CompletionBody(
            prompt=request.prompt,
            n_predict=request.max_tokens,
            seed=request.seed,
            temperature=request.temperature,
            top_p=request.top_p,
            top_k=request.top_k,
            stop=request.stop,
            cache_prompt=request.cache_prompt,
        )
    )


def error_kind(status: int, error_type: str) -> ErrorKind:
    """Map an engine status and error `type` to a kind (the table in the package docstring)."""
    if error_type in _INVALID_TYPES or status in (400, 404, 413, 422):
        return ErrorKind.INVALID_PARAMS
    if status == 429:
        return ErrorKind.REPLICA_EXHAUSTED
    if status == 503 or error_type == "unavailable_error":
        return ErrorKind.POOL_UNREADY
    if status >= 500:
        return ErrorKind.WORKER_RESET
    return ErrorKind.INTERNAL


def engine_error(error: EngineErrorBody, status: int, *, before_first_token: bool) -> AdapterError:
    """The `AdapterError` for an engine error object, from an error body or an in-stream frame."""
    status = status or error.code
    message = f"engine answered {status} {error.type}: {error.message[:MAX_ERROR_MESSAGE_CHARS]}"
    return AdapterError(error_kind(status, error.type), message, before_first_token=before_first_token)


def http_error(status: int, body: bytes, *, before_first_token: bool) -> AdapterError:
    """The `AdapterError` for a non-200 answer, whether or not its body is llama-server's JSON."""
    try:
        error = decode_error(body).error
    except msgspec.DecodeError:  # ValidationError included
        text = body[:MAX_ERROR_MESSAGE_CHARS].decode("utf-8", "replace")
        error = EngineErrorBody(code=status, message=text)
    return engine_error(error, status, before_first_token=before_first_token)
