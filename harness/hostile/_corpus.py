"""The hostile request corpus (issue 8): requests that must each get a typed 4xx envelope.

Each case names the service (`orchestratord` or `pool-managerd`), the request, and the statuses
the contract documents for it. `{task_id}` in a path is replaced by a task that exists, so the
header and resume checks behind the task lookup are reached. Bodies are bytes, sent as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

ORCH = "orchestratord"
POOL = "pool-managerd"
JSON: Mapping[str, str | bytes] = {"content-type": "application/json"}
MAX_BODY_BYTES = 20 * 1024 * 1024
VALID = b"<a body the operation accepts>"


@dataclass(frozen=True)
class Hostile:
    """One hostile request and the statuses it may get (all 4xx)."""

    name: str
    service: str
    method: str
    path: str
    body: bytes | None = None
    headers: Mapping[str, str | bytes] = field(default_factory=lambda: JSON)
    statuses: frozenset[int] = frozenset({400})


def _nested(depth: int, leaf: bytes = b"1") -> bytes:
    """`depth` objects inside each other: {"a":{"a":...leaf...}}."""
    return b'{"a":' * depth + leaf + b"}" * depth


DRAIN = b'{"deadline_ms":1000}'
RELOAD = b'{"new_model_ref":"hf:org/repo/m.gguf"}'


def _task(fields: bytes) -> bytes:
    return b'{"model_ref":"tinyllama-q4","max_tokens":4,' + fields + b"}"


def _artifact(content: bytes) -> bytes:
    return b'{"kind":"plan","content":' + content + b"}"


_BODY_CASES: list[tuple[str, bytes | None, Mapping[str, str | bytes]]] = [
    ("empty body", b"", JSON),
    ("no body and no content type", None, {}),
    # `VALID` stands for a body the operation accepts: only the label is wrong (OC-CTRL-2176).
    ("text/plain", VALID, {"content-type": "text/plain"}),
    ("no content type", VALID, {}),
    ("charset latin-1", VALID, {"content-type": "application/json; charset=latin-1"}),
    ("form encoded", VALID, {"content-type": "application/x-www-form-urlencoded"}),
    ("invalid UTF-8 bare", b"\xff\xfe\xfd", JSON),
    ("invalid UTF-8 in a string", b'{"x":"\xc3\x28"}', JSON),
    ("lone surrogate escape", b'{"x":"\\ud800"}', JSON),
    ("null", b"null", JSON),
    ("array", b"[]", JSON),
    ("string", b'"drain"', JSON),
    ("truncated", b'{"deadline_ms":', JSON),
    ("trailing garbage", b'{"deadline_ms":0} x', JSON),
    ("NaN", b'{"deadline_ms":NaN}', JSON),
    ("Infinity", b'{"deadline_ms":Infinity}', JSON),
    ("huge exponent", b'{"deadline_ms":1e400}', JSON),
    ("huge integer", b'{"deadline_ms":' + b"9" * 5000 + b"}", JSON),
    ("negative", b'{"deadline_ms":-1}', JSON),
    ("wrong type", b'{"deadline_ms":"soon"}', JSON),
    ("unknown field", b'{"deadline_ms":0,"extra":true}', JSON),
    ("nesting 65", _nested(65), JSON),
    ("nesting 992", _nested(992), JSON),
    ("nesting 100000 arrays", b"[" * 100_000 + b"]" * 100_000, JSON),
    ("unclosed nesting", b"[" * 100_000, JSON),
    ("over 20 MiB", b'{"x":"' + b"a" * MAX_BODY_BYTES + b'"}', JSON),
]


def _body_cases(service: str, path: str, valid: bytes) -> list[Hostile]:
    return [
        Hostile(
            f"{service} {path} {name}", service, "POST", path, valid if body is VALID else body, dict(headers)
        )
        for name, body, headers in _BODY_CASES
    ]


_TASKS: list[tuple[str, bytes]] = [
    ("prompt invalid UTF-8", _task(b'"prompt":"\xff\xfe"')),
    ("prompt lone surrogate", _task(b'"prompt":"\\udfff"')),
    ("max_tokens huge", _task(b'"prompt":"x","max_tokens":' + b"1" * 400)),
    ("max_tokens float", _task(b'"prompt":"x","max_tokens":4.5')),
    ("seed NaN", _task(b'"prompt":"x","seed":NaN')),
    ("temperature Infinity", _task(b'"prompt":"x","sampling":{"temperature":Infinity}')),
    ("task_id path traversal", _task(b'"prompt":"x","task_id":"../../etc/passwd"')),
    ("task_id control characters", _task(b'"prompt":"x","task_id":"a\\u0000b"')),
    ("session_id huge", _task(b'"prompt":"x","session_id":"' + b"s" * 5000 + b'"')),
    ("model_ref with newline", b'{"model_ref":"tiny\\nllama","prompt":"x","max_tokens":4}'),
    ("stop nested 70 deep", _task(b'"prompt":"x","sampling":{"stop":' + b"[" * 70 + b"]" * 70 + b"}")),
    ("unknown engine", _task(b'"prompt":"x","engine":"vllm; rm -rf"')),
]

_ARTIFACTS: list[tuple[str, bytes]] = [
    ("content nested 992", _artifact(_nested(991))),
    ("content nested 64 (65 with the envelope)", _artifact(_nested(64))),
    ("content is an array", _artifact(b"[1,2]")),
    ("unknown kind", b'{"kind":"../plan","content":{}}'),
    ("parent not an id", b'{"kind":"plan","content":{},"parent":"../../x"}'),
    (
        "metadata too many keys",
        _artifact(b"{}")[:-1] + b',"metadata":{' + b",".join(b'"k%d":"v"' % i for i in range(65)) + b"}}",
    ),
]

#: Bodies each operation accepts when labelled `application/json` (the content-type cases send
#: these with other labels). orchestratord's drain and reload refuse the mock pool whatever the body.
ACCEPTED: list[tuple[str, str, bytes]] = [
    (ORCH, "/v2/tasks", _task(b'"prompt":"x"')),
    (ORCH, "/v2/artifacts", _artifact(b"{}")),
    (ORCH, "/v2/catalog/models", b'{"id":"accepted","ref":"hf:org/repo/m.gguf"}'),
    (POOL, "/v2/pools/default/drain", DRAIN),
    (POOL, "/v2/pools/default/reload", RELOAD),
]

_EVENTS = "/v2/tasks/{task_id}/events"
_TEXT: Mapping[str, str | bytes] = {"content-type": "text/plain"}
_MISSING = frozenset({400, 404})


def _get(
    name: str,
    service: str,
    path: str,
    statuses: set[int] | None = None,
    headers: Mapping[str, str | bytes] | None = None,
) -> Hostile:
    return Hostile(name, service, "GET", path, None, headers or {}, frozenset(statuses or {400}))


CORPUS: list[Hostile] = [
    *_body_cases(ORCH, "/v2/tasks", ACCEPTED[0][2]),
    *(Hostile(f"{ORCH} tasks {name}", ORCH, "POST", "/v2/tasks", body) for name, body in _TASKS),
    *_body_cases(ORCH, "/v2/artifacts", ACCEPTED[1][2]),
    *(Hostile(f"{ORCH} artifacts {name}", ORCH, "POST", "/v2/artifacts", body) for name, body in _ARTIFACTS),
    *_body_cases(ORCH, "/v2/catalog/models", ACCEPTED[2][2]),
    *_body_cases(ORCH, "/v2/pools/default/drain", DRAIN),
    *_body_cases(ORCH, "/v2/pools/default/reload", RELOAD),
    *_body_cases(POOL, "/v2/pools/default/drain", DRAIN),
    *_body_cases(POOL, "/v2/pools/default/reload", RELOAD),
    # Files that are not models: refused before anything opens them (CAT-1080, OC-POOL-3180).
    *(
        Hostile(f"catalog {ref}", ORCH, "POST", "/v2/catalog/models", b'{"id":"m","ref":"%s"}' % ref.encode())
        for ref in ("file:/proc/self/mem", "../../etc/passwd", "file:/", "file:/dev/zero")
    ),
    *(
        Hostile(
            f"reload {ref}",
            POOL,
            "POST",
            "/v2/pools/default/reload",
            b'{"new_model_ref":"%s"}' % ref.encode(),
        )
        for ref in ("file:/proc/self/mem", "file:/etc/shadow", "file:/dev/zero")
    ),
    # Identifiers in paths, queries and headers.
    _get("task id too long", ORCH, "/v2/tasks/" + "a" * 5000, {400, 404}),
    _get("task id with NUL", ORCH, "/v2/tasks/a%00b", {400, 404}),
    Hostile("cancel unknown task", ORCH, "POST", "/v2/tasks/%2e%2e/cancel", None, {}, frozenset({400, 404})),
    _get("session id traversal", ORCH, "/v2/sessions/..%2f..%2fetc", {400, 404}),
    _get("artifact id not hex", ORCH, "/v2/artifacts/zz"),
    Hostile("catalog verify bad id", ORCH, "POST", "/v2/catalog/models/..%2fx/verify", None, {}, _MISSING),
    _get("artifacts limit huge", ORCH, "/v2/artifacts?limit=" + "9" * 400),
    _get("artifacts limit text", ORCH, "/v2/artifacts?limit=ten"),
    _get("artifacts kind NUL", ORCH, "/v2/artifacts?kind=%00"),
    _get("pool health bad id", ORCH, "/v2/pools/%00/health", {400, 404}),
    _get("resume non-ASCII digits", ORCH, _EVENTS, headers={"last-event-id": "١٢٣".encode()}),
    _get("resume 5000 digits", ORCH, _EVENTS, headers={"last-event-id": "9" * 5000}),
    _get("resume negative", ORCH, _EVENTS, headers={"last-event-id": "-1"}),
    Hostile("text/plain on cancel", ORCH, "POST", "/v2/tasks/{task_id}/cancel", b"stop", dict(_TEXT)),
    _get("pool id NUL", POOL, "/v2/pools/%00", {400, 404}),
    Hostile("drain unknown pool", POOL, "POST", "/v2/pools/nope/drain", DRAIN, JSON, frozenset({404})),
    Hostile("text/plain body on a GET", POOL, "GET", "/v2/pools", b"x", dict(_TEXT)),
]
