"""HTTP plumbing shared by orchestratord and pool-managerd.

One error envelope for every failure, one correlation id on every response.
"""

from ._app import create_service_app
from ._auth import AuthPolicy, fingerprint, identity_of
from ._background import FATAL_EXIT_CODE, FatalExit, background_loops
from ._bodies import MAX_BODY_BYTES, MAX_JSON_DEPTH, nests_deeper_than
from ._correlation import add_correlation_header, correlation_id_of
from ._errors import STATUS_BY_KIND, ApiError, error_response, exception_handlers
from ._ids import checked_id
from ._logging import JsonLines, configure_logging, redact
from ._meta import BuildInfo, api_version, contract_document, read_build_info
from ._serve import serve
from ._sse import KEEPALIVE, SSE_HEADERS, sse_event

__all__ = [
    "FATAL_EXIT_CODE",
    "KEEPALIVE",
    "MAX_BODY_BYTES",
    "MAX_JSON_DEPTH",
    "SSE_HEADERS",
    "STATUS_BY_KIND",
    "ApiError",
    "AuthPolicy",
    "BuildInfo",
    "FatalExit",
    "JsonLines",
    "add_correlation_header",
    "api_version",
    "background_loops",
    "checked_id",
    "configure_logging",
    "contract_document",
    "correlation_id_of",
    "create_service_app",
    "error_response",
    "exception_handlers",
    "fingerprint",
    "identity_of",
    "nests_deeper_than",
    "read_build_info",
    "redact",
    "serve",
    "sse_event",
]
