"""Contract gate: schemathesis fuzzes the live services against `contracts/openapi/` (ORCH-3414).

Each service runs for real under uvicorn (`llorch_testkit.serving`): orchestratord with one
in-process mock pool, pool-managerd with a preparer that fails hardware checks, so its pools end
Unready without any engine. Every generated request goes over a socket and every response is
checked for: no 5xx, a documented status, the documented content type and headers
(`X-Correlation-Id`, `Retry-After`, ...), and a body that matches the schema. SSE responses are
parsed and validated one event at a time: the frame by schemathesis, the JSON in its `data` by
`sse_payload_conformance` against the operation's `x-sse-events`.

Runs are deterministic (fixed seed, derandomized Hypothesis, no example database) and small
(examples, coverage and fuzzing phases; at most `MAX_EXAMPLES` fuzzed cases per operation).

Covered, because they are implemented:
- orchestratord: createTask, getTask, streamTaskEvents, cancelTask, listPools, getPoolHealth,
  getVersion, getCapabilities, getMetrics.
- pool-managerd: getManagerHealth, listPoolStatuses, getPoolStatus, watchPools, getGpuInventory,
  getManagerMetrics.

Excluded: purge (no pool-managerd operation for it exists yet); add an operationId here when its
operation is implemented.

The watch stream never ends on its own, so that operation reads at most `WATCH_EVENTS` events
(the snapshot, then changes) and gives up after `WATCH_TIMEOUT_S`; keepalive comments are not
events. Task streams end after `end`/`error` and are read whole.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from jsonschema_path import SchemaPath
from openapi_core.exceptions import OpenAPIError
from openapi_core.validation.schemas import oas31_schema_validators_factory
from schemathesis import Case, Config, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import orchestratord
import pool_managerd
from llorch_adapters import MockAdapter, MockScript
from llorch_config import parse_config
from llorch_pools.testing import StaticPreparer
from llorch_testkit import parse_sse, serving

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts" / "openapi"
# Named like the contracts' examples (pool `default`, model `tinyllama-q4`), so examples reach the 2xx paths.
MODEL_REF = "tinyllama-q4"
MOCK_POOL = f"pools:\n  - id: default\n    engine: {{kind: mock}}\n    model: {{ref: {MODEL_REF}}}\n"
MANAGED_POOL = f"pools:\n  - id: default\n    model: {{ref: {MODEL_REF}}}\n"
MAX_EXAMPLES = 50
WATCH_EVENTS = 2
WATCH_TIMEOUT_S = 2


@cache
def contract_document(title: str) -> SchemaPath:
    return SchemaPath.from_file_path(str(CONTRACTS / f"{title}.yaml"))


def sse_payload_conformance(ctx: Any, response: schemathesis.Response, case: Case) -> None:
    """Each SSE event's `data` against its `x-sse-events` schema.

    schemathesis validates the event frame (`schema`: id, event name, `data` as a string); the
    JSON inside `data` is described per event name by the operation's `x-sse-events` map.
    """
    content_type = (response.headers.get("content-type") or [""])[0]
    if not content_type.startswith("text/event-stream"):
        return
    payloads = case.operation.definition.raw.get("x-sse-events", {})
    root = contract_document(case.operation.schema.raw_schema["info"]["title"])
    for event in parse_sse(response.content.decode()):
        assert event.event in payloads, f"undocumented SSE event {event.event!r}"
        ref = payloads[event.event]["$ref"]
        schema = root
        for part in ref.removeprefix("#/").split("/"):
            schema = schema / part
        try:
            oas31_schema_validators_factory.create(root, schema).validate(json.loads(event.data))
        except (ValueError, OpenAPIError) as exc:
            raise AssertionError(f"SSE event {event.id} `{event.event}` violates {ref}: {exc}") from None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    sse_payload_conformance,
]
ORCHESTRATORD_OPERATIONS = [
    "createTask",
    "getTask",
    "streamTaskEvents",
    "cancelTask",
    "listPools",
    "getPoolHealth",
    "getVersion",
    "getCapabilities",
    "getMetrics",
    "getSession",
    "deleteSession",
    "drainPool",
    "reloadPool",
    "createCatalogModel",
    "listCatalogModels",
    "getCatalogModel",
    "deleteCatalogModel",
    "verifyCatalogModel",
    "setCatalogModelState",
    "createArtifact",
    "listArtifacts",
    "getArtifact",
]
POOL_MANAGERD_OPERATIONS = [
    "getManagerHealth",
    "listPoolStatuses",
    "getPoolStatus",
    "watchPools",
    "getGpuInventory",
    "getManagerMetrics",
]
_TASK_OPERATIONS = {"getTask", "streamTaskEvents", "cancelTask"}


def gate_config() -> Config:
    return Config.from_dict(
        {
            "seed": 3414,
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": False},
            },
            "request-timeout": 10,
            "operations": [
                {
                    "include-operation-id": "watchPools",
                    "max-stream-events": WATCH_EVENTS,
                    "request-timeout": WATCH_TIMEOUT_S,
                }
            ],
        }
    )


def load(service: str, operations: list[str]) -> Any:
    """The service's contract, restricted to `operations`.

    Restricted by exclusion: in schemathesis 4.32 `include()` on a loaded schema is OR-ed with the
    match-all filter the loader installs, so it selects nothing away; `exclude()` is applied first.
    """
    schema = schemathesis.openapi.from_path(CONTRACTS / f"{service}.yaml", config=gate_config())
    return schema.exclude(lambda ctx: schema.get_operation_id(ctx.operation) not in operations)


orchestratord_contract = load("orchestratord", ORCHESTRATORD_OPERATIONS)
pool_managerd_contract = load("pool-managerd", POOL_MANAGERD_OPERATIONS)


@pytest.fixture(scope="module")
def orchestratord_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    adapter = MockAdapter(MockScript())
    state_dir = tmp_path_factory.mktemp("orchestratord-state")
    app = orchestratord.create_app(parse_config(MOCK_POOL), adapters={"mock": adapter}, state_dir=state_dir)
    with serving(app) as url:
        yield url


@pytest.fixture(scope="module")
def known_task(orchestratord_url: str) -> str:
    """A finished task, so `getTask` and `streamTaskEvents` also reach their 200 answers."""
    with httpx.Client(base_url=orchestratord_url, timeout=10) as client:
        admitted = client.post("/v2/tasks", json={"model_ref": MODEL_REF, "prompt": "hi", "max_tokens": 4})
        assert admitted.status_code == 202, admitted.text
        task_id = str(admitted.json()["task_id"])
        deadline = time.monotonic() + 10
        while client.get(f"/v2/tasks/{task_id}").json()["state"] != "completed":
            assert time.monotonic() < deadline, "the mock task never completed"
            time.sleep(0.01)
    return task_id


@pytest.fixture(scope="module")
def pool_managerd_url() -> Iterator[str]:
    preparer = StaticPreparer(binary=None, model=Path("/nonexistent"), fail_hardware="no GPU in this test")
    app = pool_managerd.create_app(parse_config(MANAGED_POOL), preparer=preparer, environ={})
    with serving(app) as url:
        yield url


def aim_at_served_things(case: Case, task_id: str) -> None:
    """Point valid requests at things that exist, which random values almost never hit.

    Schema-valid task bodies ask for the served model (placement and the rest stay fuzzed), so
    admission is reached; every other well-formed task id becomes a real task, so both the 200 and
    the 404 answers are exercised. Schema-invalid cases are sent as generated.
    """
    if case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE:
        return
    operation_id = case.operation.schema.get_operation_id(case.operation)
    if operation_id == "createTask" and isinstance(case.body, dict):
        case.body = {**case.body, "model_ref": MODEL_REF}
    generated = (case.path_parameters or {}).get("task_id")
    if operation_id in _TASK_OPERATIONS and isinstance(generated, str) and generated[-1] in "02468aAcCeE":
        case.path_parameters = {**(case.path_parameters or {}), "task_id": task_id}


@pytest.mark.req("ORCH-3414", "OC-CTRL-2030")
@orchestratord_contract.parametrize()
def test_orchestratord_conforms_to_its_contract(case: Case, orchestratord_url: str, known_task: str) -> None:
    aim_at_served_things(case, known_task)
    case.call_and_validate(base_url=orchestratord_url, checks=CHECKS)


@pytest.mark.req("ORCH-3414", "OC-POOL-3165")
@pool_managerd_contract.parametrize()
def test_pool_managerd_conforms_to_its_contract(case: Case, pool_managerd_url: str) -> None:
    case.call_and_validate(base_url=pool_managerd_url, checks=CHECKS)
