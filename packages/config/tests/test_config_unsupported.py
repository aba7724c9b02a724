"""Keys nothing implements yet are refused at load, naming the key path and the issue (OC-CONFIG-6111)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llorch_config import NOT_SUPPORTED_YET, ConfigError, Unsupported, parse_config

SCHEMA = Path(__file__).resolve().parents[3] / "contracts" / "config" / "llorch-config.schema.json"
POOL = "profile: dev\npools:\n  - id: a\n    allow_cpu_inference: true\n"
SOURCE = POOL + "    engine:\n      provisioning:\n        source:\n"

# One config per refused entry, and the concrete key path it must be refused at.
SAMPLES: dict[str, tuple[str, str]] = {
    "$.pool_managerd.vram_headroom_bytes": (
        POOL + "pool_managerd:\n  vram_headroom_bytes: 1073741824\n",
        "$.pool_managerd.vram_headroom_bytes",
    ),
    "$.pools[].tensor_split": (
        "pools:\n  - id: a\n    devices: [0]\n  - id: b\n    devices: [0, 1]\n    tensor_split: [2, 1]\n",
        "$.pools[1].tensor_split",
    ),
    "$.pools[].preload": (POOL + "    preload: false\n", "$.pools[0].preload"),
    "$.pools[].engine.provisioning.source.cmake_flags": (
        SOURCE + "          cmake_flags: ['-DGGML_CUDA=ON']\n",
        "$.pools[0].engine.provisioning.source.cmake_flags",
    ),
    "$.pools[].engine.provisioning.source.git": (
        SOURCE + "          git: {repo: 'https://github.com/ggml-org/llama.cpp', ref: b1234}\n",
        "$.pools[0].engine.provisioning.source.git",
    ),
    "$.pools[].engine.provisioning.mode": (
        POOL + "    engine:\n      provisioning:\n        mode: container\n"
        "        container: {image: ghcr.io/ggml-org/llama.cpp, tag: server}\n",
        "$.pools[0].engine.provisioning.mode",
    ),
    "$.pools[].engine.kind": (
        "pools:\n  - id: a\n    devices: [0]\n    engine:\n      kind: vllm\n"
        "      provisioning: {mode: external, external: {url: 'http://127.0.0.1:8000'}}\n",
        "$.pools[0].engine.kind",
    ),
    "$.pools[].engine.version": (
        POOL + "    engine: {version: b4500}\n",
        "$.pools[0].engine.version",
    ),
}

# The same keys at their defaults, spelled out: a default is never refused.
DEFAULTS = (
    POOL
    + "    preload: true\n    engine:\n      provisioning:\n        mode: source\n"
    + "        source: {cmake_flags: []}\npool_managerd:\n  vram_headroom_bytes: 536870912\n"
)


def test_every_refused_entry_has_a_sample() -> None:
    assert sorted(SAMPLES) == sorted(entry.path for entry in NOT_SUPPORTED_YET)


@pytest.mark.req("OC-CONFIG-6111")
@pytest.mark.parametrize("entry", NOT_SUPPORTED_YET, ids=[e.path for e in NOT_SUPPORTED_YET])
def test_refused_key_fails_the_load_naming_path_and_issue(entry: Unsupported) -> None:
    path = entry.path
    text, expected = SAMPLES[path]
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "t.yaml")
    assert caught.value.path == expected
    assert caught.value.detail.startswith("not supported yet (")
    issue = entry.issue
    assert (f"see issue {issue}" if issue is not None else "no issue plans it yet") in caught.value.detail
    assert f"t.yaml: {expected}: not supported yet" in str(caught.value)


@pytest.mark.req("OC-CONFIG-6111")
def test_defaults_spelled_out_are_not_refused() -> None:
    pool = parse_config(DEFAULTS).pools[0]
    assert pool.preload is True
    assert pool.engine.provisioning.source.cmake_flags == []


@pytest.mark.req("OC-CONFIG-6111")
def test_other_provisioning_modes_are_not_refused() -> None:
    text = (
        POOL
        + "    engine:\n      provisioning:\n        mode: external\n        external: {url: 'http://127.0.0.1:1'}\n"
    )
    assert str(parse_config(text).pools[0].engine.provisioning.mode) == "external"


def _schema_descriptions() -> dict[str, str]:
    """Schema path (`$.pools[].preload`) -> description, by walking the schema's properties."""
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    defs = schema["$defs"]
    found: dict[str, str] = {}

    def walk(node: dict[str, object], path: str) -> None:
        ref = node.get("$ref")
        if isinstance(ref, str):
            walk(defs[ref.rsplit("/", 1)[1]], path)
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in node.get(key, []):  # type: ignore[attr-defined]
                walk(sub, path)
        items = node.get("items")
        if isinstance(items, dict):
            walk(items, path + "[]")
        properties = node.get("properties")
        if isinstance(properties, dict):
            for name, sub in properties.items():
                found.setdefault(f"{path}.{name}", str(sub.get("description", "")))
                walk(sub, f"{path}.{name}")

    walk(schema, "$")
    return found


@pytest.mark.req("OC-CONFIG-6111")
@pytest.mark.parametrize("entry", NOT_SUPPORTED_YET, ids=[e.path for e in NOT_SUPPORTED_YET])
def test_the_schema_says_the_key_is_not_supported_yet(entry: Unsupported) -> None:
    path = entry.path
    description = _schema_descriptions()[path]
    assert "not supported yet" in description.lower()
    issue = entry.issue
    assert (f"see issue {issue}" if issue is not None else "no issue plans it yet") in description
