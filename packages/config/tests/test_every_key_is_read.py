"""Every config key does something (OC-CONFIG-6110): a typed walk from the schema to the code that reads it.

How the check works, and why it is not satisfied by accident:

1. The leaf keys come from the contract itself: the test walks
   `contracts/config/llorch-config.schema.json` (through `$ref`s, `anyOf` and arrays) and checks that the
   generated `llorch_contracts.config.LlorchConfig` has exactly the same leaves. Each leaf then maps to
   one (generated Struct class, attribute) pair, e.g. `$.pools[].preload` -> `PoolConfig.preload`.
2. The readers come from mypy, not from grepping names. mypy type-checks all hand-written code under
   `packages/*/src` and `services/*/src` with `export_types`, and the test collects every attribute
   access `x.name` whose receiver `x` has the type of a generated config Struct (or a union holding one,
   such as `SourceProvisioning | UnsetType`). A read of `.id` on an `Any`, on an API struct, or on
   anything else with a field of the same name does not count; nor do reads in the generated package, in
   the loader (`llorch_config`: validating a key is not using it), in `llorch_testkit` or in a package's
   `testing` module (test support). `test_the_reader_counts_only_typed_reads` runs the same collector on
   a small module to show it tells a typed read from an untyped one.
3. A leaf with no reader passes only when the loader refuses it as "not supported yet"
   (`llorch_config.NOT_SUPPORTED_YET`, each entry tested to refuse in test_config_unsupported.py), or
   when its whole effect is a load-time rule (`LOAD_TIME_EFFECT`, one entry, tested to change what loads).

Limits, said plainly: a read is necessary, not sufficient. Code that reads a key and then does nothing
useful with it passes (that is what the refusal of `preload: false` is for; `_manager.py` reads
`preload` but nothing starts a stopped pool). Reads through `getattr(obj, "name")` or
`msgspec.structs.asdict` are not seen and would make a key look unread (a false failure, never a false pass).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec.inspect as mi
import pytest
from mypy import build
from mypy.modulefinder import BuildSource
from mypy.options import Options
from mypy.traverser import NameAndMemberCollector
from mypy.types import Instance, UnionType, get_proper_type

from llorch_config import NOT_SUPPORTED_YET, ConfigError, parse_config, value_type
from llorch_contracts.config import LlorchConfig

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = ROOT / "contracts" / "config" / "llorch-config.schema.json"
GENERATED = "llorch_contracts.config."
NOT_CONSUMERS = ("llorch_contracts", "llorch_config", "llorch_testkit")

# Keys whose whole effect is a load-time rule, so the loader is their reader. Keep this short: each
# entry says what the rule does. `test_load_time_keys_change_what_loads` proves each one matters.
LOAD_TIME_EFFECT: dict[str, str] = {
    "$.catalog.trust_policy": "`strict` refuses a config whose fetched models lack `model.sha256` (CAT-1025)",
}

Read = tuple[str, str]  # (generated Struct class name, attribute)


def schema_leaves() -> set[str]:
    """Leaf key paths of the JSON Schema, `[]` marking an array of objects (`$.pools[].id`)."""
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    defs = schema["$defs"]
    leaves: set[str] = set()

    def walk(node: dict[str, Any], path: str) -> None:
        if "$ref" in node:
            walk(defs[node["$ref"].rsplit("/", 1)[1]], path)
            return
        branches = [b for key in ("anyOf", "oneOf", "allOf") for b in node.get(key, [])]
        for branch in branches:
            walk(branch, path)
        items = node.get("items")
        if node.get("type") == "object" and "properties" in node:
            for name, sub in node["properties"].items():
                walk(sub, f"{path}.{name}")
        elif isinstance(items, dict) and ("$ref" in items or "properties" in items):
            walk(items, f"{path}[]")
        elif not branches:
            leaves.add(path.removesuffix("[]"))  # an array of scalars is one key

    walk(schema, "$")
    return leaves


def struct_leaves() -> dict[str, Read]:
    """Leaf key path -> the generated (Struct class, attribute) that holds it."""
    leaves: dict[str, Read] = {}

    def walk(struct: mi.StructType, path: str) -> None:
        for field in struct.fields:
            at = f"{path}.{field.encode_name}"
            node = value_type(field.type)
            if isinstance(node, mi.ListType) and isinstance(value_type(node.item_type), mi.StructType):
                item = value_type(node.item_type)
                assert isinstance(item, mi.StructType)
                walk(item, f"{at}[]")
            elif isinstance(node, mi.StructType):
                walk(node, at)
            else:
                leaves[at] = (struct.cls.__name__, field.name)

    root = mi.type_info(LlorchConfig)
    assert isinstance(root, mi.StructType)
    walk(root, "$")
    return leaves


def _sources(roots: Iterable[Path]) -> list[BuildSource]:
    sources = []
    for root in roots:
        for file in sorted(root.rglob("*.py")):
            parts = list(file.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            sources.append(BuildSource(str(file), ".".join(parts)))
    return sources


def config_reads(sources: list[BuildSource]) -> dict[Read, set[str]]:
    """(Struct class, attribute) -> the consumer modules that read it, from mypy's inferred types."""
    options = Options()
    options.python_version = (3, 11)
    options.incremental = False  # types are exported only for modules mypy checks in this run
    options.export_types = True
    options.preserve_asts = True
    result = build.build(sources, options)
    reads: dict[Read, set[str]] = {}
    for source in sources:
        module = source.module
        if module.split(".")[0] in NOT_CONSUMERS or module.split(".")[-1] == "testing":
            continue
        tree = result.graph[module].tree
        assert tree is not None, f"mypy kept no tree for {module}"
        collector = NameAndMemberCollector()
        tree.accept(collector)
        for expr in collector.member_exprs:
            receiver = result.types.get(expr.expr)
            if receiver is None:
                continue
            proper = get_proper_type(receiver)
            members = proper.items if isinstance(proper, UnionType) else [proper]
            for option in [get_proper_type(t) for t in members]:
                if isinstance(option, Instance) and option.type.fullname.startswith(GENERATED):
                    reads.setdefault((option.type.name, expr.name), set()).add(module)
    return reads


@pytest.fixture(scope="module")
def reads() -> dict[Read, set[str]]:
    roots = [*ROOT.glob("packages/*/src"), *ROOT.glob("services/*/src")]
    return config_reads(_sources(roots))


def _refused(path: str) -> bool:
    """On the refusal list as a whole key (a value-only refusal, like `mode: container`, excuses nothing)."""
    return any(not e.values and (path == e.path or path.startswith(f"{e.path}.")) for e in NOT_SUPPORTED_YET)


@pytest.mark.req("OC-CONFIG-6110")
def test_the_generated_types_have_exactly_the_schema_leaves() -> None:
    assert set(struct_leaves()) == schema_leaves()


@pytest.mark.req("OC-CONFIG-6110")
def test_every_leaf_key_is_read_or_refused(reads: dict[Read, set[str]]) -> None:
    unread = [
        f"{path} ({cls}.{attr})"
        for path, (cls, attr) in sorted(struct_leaves().items())
        if (cls, attr) not in reads and not _refused(path) and path not in LOAD_TIME_EFFECT
    ]
    assert not unread, (
        "config keys that no hand-written code reads: read them where they take effect, or refuse them "
        "in llorch_config._unsupported.NOT_SUPPORTED_YET (and say so in the schema):\n  "
        + "\n  ".join(unread)
    )


@pytest.mark.req("OC-CONFIG-6110")
def test_the_reader_counts_only_typed_reads(tmp_path: Path) -> None:
    probe = tmp_path / "probe_consumer.py"
    probe.write_text(
        "from typing import Any\n"
        "from llorch_contracts.config import LlorchConfig, PoolConfig, SourceProvisioning\n"
        "from msgspec import UNSET\n"
        "def typed(config: LlorchConfig, src: SourceProvisioning) -> object:\n"
        "    pool: PoolConfig = config.pools[0]\n"
        "    return (pool.ctx_max, config.pool_managerd.supervision.stable_run_ms,\n"
        "            src.git.ref if src.git is not UNSET else None)\n"
        "def untyped(pool: Any) -> object:\n"
        "    return pool.tensor_split\n",
        encoding="utf-8",
    )
    found = config_reads([BuildSource(str(probe), "probe_consumer")])
    assert ("PoolConfig", "ctx_max") in found
    assert ("SupervisionConfig", "stable_run_ms") in found
    assert ("GitSource", "ref") in found, "a read through a narrowed `X | UnsetType` counts"
    assert ("PoolConfig", "tensor_split") not in found, "a read on Any does not count"
    assert all(cls != "Any" for cls, _ in found)


@pytest.mark.req("OC-CONFIG-6110")
def test_load_time_keys_change_what_loads() -> None:
    assert sorted(LOAD_TIME_EFFECT) == ["$.catalog.trust_policy"], "add a check below for each new entry"
    pools = "pools:\n  - id: a\n    devices: [0]\n    model: {ref: 'hf:org/repo/m.gguf'}\n"
    parse_config(pools + "catalog: {trust_policy: warn}\n")
    with pytest.raises(ConfigError) as caught:
        parse_config(pools + "catalog: {trust_policy: strict}\n")
    assert caught.value.path == "$.pools[0].model.sha256"
