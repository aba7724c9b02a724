"""Keys and values the schema accepts but nothing implements yet, refused at load (OC-CONFIG-6111).

A key that validates and is then ignored lies to the user (a `tensor_split` that splits nothing).
Until the issue that implements one lands, setting it to anything but its default fails the load
with the key path, "not supported yet" and that issue. `NOT_SUPPORTED_YET` is also the list the
schema walk test (OC-CONFIG-6110) accepts in place of a reader: removing an entry without adding
the code that reads the key makes that test fail.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
from msgspec import UNSET

from llorch_contracts.config import LlorchConfig

Problem = tuple[str, str]
_STEP = re.compile(r"\.([a-z_]+)(\[\])?")


@dataclass(frozen=True, slots=True)
class Unsupported:
    """One refused key: `path` in schema form (`$.pools[].tensor_split`).

    With `values` empty the key is refused whenever it differs from its schema default (an
    optional key: whenever it is present); otherwise only those values are refused.
    """

    path: str
    reason: str
    issue: int | None
    values: tuple[str, ...] = ()

    def message(self) -> str:
        where = f"see issue {self.issue}" if self.issue is not None else "no issue plans it yet"
        return f"not supported yet ({where}): {self.reason}"


NOT_SUPPORTED_YET: tuple[Unsupported, ...] = (
    Unsupported(
        "$.pool_managerd.vram_headroom_bytes",
        "nothing measures VRAM before a load yet; remove the key",
        12,
    ),
    Unsupported(
        "$.pools[].tensor_split",
        "replicas are not split across devices yet; remove the key",
        12,
    ),
    Unsupported(
        "$.pools[].preload",
        "nothing starts a pool on first demand yet, so `preload: false` would leave it stopped for good; "
        "remove the key",
        12,
    ),
    Unsupported(
        "$.pools[].engine.provisioning.source.cmake_flags",
        "llama.cpp is built with its default (CPU) options only; remove `cmake_flags`",
        12,
    ),
    Unsupported(
        "$.pools[].engine.provisioning.source.git",
        "llama.cpp is built only from the pinned sdist; remove `git` (the sdist is the default)",
        None,
    ),
    Unsupported(
        "$.pools[].engine.provisioning.mode",
        "pool-managerd cannot start or supervise a container yet; use source, binary, package or external",
        None,
        values=("container",),
    ),
    Unsupported(
        "$.pools[].engine.kind",
        "orchestratord has adapters for llamacpp and mock engines only",
        11,
        values=("vllm", "tgi", "triton", "openai"),
    ),
    Unsupported(
        "$.pools[].engine.version",
        "nothing compares the version a replica reports with this pin yet; remove the key",
        None,
    ),
)


def _default_of(parent: msgspec.Struct, name: str) -> Any:
    field = next(f for f in msgspec.structs.fields(parent) if f.name == name)
    if field.default_factory is not msgspec.NODEFAULT:
        return field.default_factory()
    return field.default


def _refused(entry: Unsupported, parent: msgspec.Struct, name: str) -> bool:
    value = getattr(parent, name)
    if entry.values:
        return str(value) in entry.values
    return bool(value != _default_of(parent, name))


def _visit(node: Any, steps: list[tuple[str, str]], at: str, entry: Unsupported) -> Iterator[str]:
    name, many = steps[0]
    if node is UNSET or not isinstance(node, msgspec.Struct):
        return  # an absent optional section holds no key to refuse
    if len(steps) == 1:
        if _refused(entry, node, name):
            yield f"{at}.{name}"
        return
    child = getattr(node, name)
    if many:
        for index, item in enumerate(child):
            yield from _visit(item, steps[1:], f"{at}.{name}[{index}]", entry)
    else:
        yield from _visit(child, steps[1:], f"{at}.{name}", entry)


def not_supported_yet(config: LlorchConfig) -> Iterator[Problem]:
    """Every refused key the config sets, as `(key path, message)`."""
    for entry in NOT_SUPPORTED_YET:
        steps = _STEP.findall(entry.path.removeprefix("$"))
        for path in _visit(config, steps, "$", entry):
            yield path, entry.message()
