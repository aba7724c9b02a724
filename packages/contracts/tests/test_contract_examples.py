"""Every example in contracts/openapi decodes with the generated Structs and validates with openapi-core.

The examples are the contract's promises to readers; if one drifts from its
schema (or the generated types drift from the schema) this fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from jsonschema_path import SchemaPath
from openapi_core.validation.schemas import oas31_schema_validators_factory

from llorch_contracts import api
from llorch_testkit import parse_sse

ROOT = Path(__file__).resolve().parents[3]
OPENAPI = ROOT / "contracts" / "openapi"
SERVICES = sorted(p for p in OPENAPI.glob("*.yaml") if p.name != "common.yaml")
METHODS = ("get", "put", "post", "delete", "patch")


@dataclass(frozen=True)
class Example:
    """One example value, where it sits in the document, and what it must satisfy."""

    where: str
    media_type: str
    raw_schema: dict[str, Any]
    root: SchemaPath
    schema_path: SchemaPath
    value: Any
    sse_raw: dict[str, Any]


def _media_examples(
    root: SchemaPath,
    spec: SchemaPath,
    raw: dict[str, Any],
    where: str,
    op: dict[str, Any] | None = None,
) -> Iterator[Example]:
    sse_raw = (op or {}).get("x-sse-events", {})
    for media_type, media in raw.get("content", {}).items():
        examples = media.get("examples") or {}
        assert examples, f"{where} {media_type}: no examples"
        schema_path = spec / "content" / media_type / "schema"
        for name, example in examples.items():
            label = f"{where} {media_type} [{name}]"
            yield Example(label, media_type, media["schema"], root, schema_path, example["value"], sse_raw)


def collect(path: Path) -> Iterator[Example]:
    raw_doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec = SchemaPath.from_file_path(str(path))
    for route, item in raw_doc["paths"].items():
        for method in METHODS:
            if method not in item:
                continue
            op = item[method]
            op_path = spec / "paths" / route / method
            where = f"{path.name} {method.upper()} {route}"
            if "requestBody" in op:
                yield from _media_examples(
                    spec, op_path / "requestBody", op["requestBody"], f"{where} request", op
                )
            for status, response in op["responses"].items():
                if "$ref" in response:
                    continue  # shared responses are walked from the components below
                at = op_path / "responses" / str(status)
                yield from _media_examples(spec, at, response, f"{where} {status}", op)
    for name, response in raw_doc.get("components", {}).get("responses", {}).items():
        at = spec / "components" / "responses" / name
        yield from _media_examples(spec, at, response, f"{path.name} #{name}")


ALL = [e for path in [*SERVICES, OPENAPI / "common.yaml"] if path.exists() for e in collect(path)]


def python_type(raw_schema: dict[str, Any]) -> Any:
    """The generated type for a schema that is a `$ref`, or an array of them."""
    if "$ref" in raw_schema:
        return getattr(api, raw_schema["$ref"].rsplit("/", 1)[1])
    if raw_schema.get("type") == "array":
        return list[python_type(raw_schema["items"])]  # type: ignore[misc]
    if raw_schema.get("type") == "string":
        return str
    raise AssertionError(f"body schemas must be $refs (convention for codegen), got {raw_schema}")


def validate(root: SchemaPath, schema_path: SchemaPath, value: Any) -> None:
    """Validate with openapi-core's OAS 3.1 schema validator (resolves cross-file `$ref`s)."""
    oas31_schema_validators_factory.create(root, schema_path).validate(value)


def _sse_path(example: Example, event_name: str) -> SchemaPath:
    """The schema of one SSE event's payload, from the operation's `x-sse-events` map."""
    ref = example.sse_raw[event_name]["$ref"]
    assert ref.startswith("#/"), f"x-sse-events refs must be document-local: {ref}"
    path = example.root
    for part in ref[2:].split("/"):
        path = path / part
    return path


def test_contracts_have_examples() -> None:
    assert SERVICES, "no OpenAPI service documents found"
    assert len(ALL) > 20


@pytest.mark.req("OC-CTRL-2140")
@pytest.mark.parametrize("example", ALL, ids=[e.where for e in ALL])
def test_example_matches_schema_and_generated_types(example: Example) -> None:
    if example.media_type == "text/event-stream":
        events = parse_sse(example.value)
        assert events, "SSE example has no events"
        assert example.sse_raw, "SSE operation lacks x-sse-events"
        ids = [int(e.id) for e in events if e.id is not None]
        assert len(ids) == len(events), "every event carries an id"
        assert ids == sorted(set(ids)), "ids increase (resumed or non-verbose streams may skip some)"
        for event in events:
            validate(example.root, _sse_path(example, event.event), json.loads(event.data))
            msgspec.json.decode(event.data, type=python_type(example.sse_raw[event.event]))
        return
    if example.media_type.startswith("text/"):
        assert isinstance(example.value, str)
        return
    validate(example.root, example.schema_path, example.value)
    msgspec.json.decode(json.dumps(example.value), type=python_type(example.raw_schema))
