"""Worker adapters: one async protocol for every engine (OC-ADAPT-5100), one module per engine.

`LlamaCppAdapter` speaks llama-server's native API; `MockAdapter` is the
scriptable in-process fake that ships with the package (OC-ADAPT-5600).

How failures map to `AdapterError.kind` (OC-ADAPT-5103; the same for every adapter):

| failure                                                             | kind              | retriable |
|---------------------------------------------------------------------|-------------------|-----------|
| connection refused, connect or pool timeout (nothing was sent)      | POOL_UNAVAILABLE  | yes       |
| connection lost, stream ended without its final frame               | WORKER_RESET      | yes       |
| malformed frame, engine 5xx other than 503                          | WORKER_RESET      | yes       |
| engine 503 or `unavailable_error` (model still loading)             | POOL_UNREADY      | yes       |
| engine 429                                                          | REPLICA_EXHAUSTED | yes       |
| engine 400/404/413/422, `invalid_request_error`,                    | INVALID_PARAMS    | no        |
| `exceed_context_size_error`, `not_supported_error`                  |                   |           |
| no frame before the first-token or the idle deadline                | DECODE_TIMEOUT    | yes       |
| any other status (3xx, 401, 403), unreadable props/slots/tokenize   | INTERNAL          | no        |

`before_first_token` is True when no `TokenDelta` was yielded before the error.
"""

from ._llamacpp import LlamaCppAdapter
from ._llamacpp_wire import SAMPLER_PROFILE_VERSION
from ._mock import MOCK_ENGINE_VERSION, MockAdapter, MockScript, mock_tokens
from ._protocol import (
    AdapterError,
    EngineProps,
    Finished,
    GenerationRequest,
    SlotState,
    TokenDelta,
    WorkerAdapter,
)

__all__ = [
    "MOCK_ENGINE_VERSION",
    "SAMPLER_PROFILE_VERSION",
    "AdapterError",
    "EngineProps",
    "Finished",
    "GenerationRequest",
    "LlamaCppAdapter",
    "MockAdapter",
    "MockScript",
    "SlotState",
    "TokenDelta",
    "WorkerAdapter",
    "mock_tokens",
]
