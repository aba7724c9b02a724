"""Turn msgspec's validation messages into key paths a user can act on.

msgspec reports an unknown or missing key at its parent (`... - at $.pools[0]`)
and a bad pattern as a bare regex; we name the key itself, suggest the closest
valid key for a typo (OC-CONFIG-6001), and add the key's schema description.
"""

from __future__ import annotations

import difflib
import re

import msgspec.inspect as mi

from llorch_contracts.config import LlorchConfig

_AT = re.compile(r"^(?P<detail>.*?) - at `(?P<path>\$[^`]*)`$")
_KEYED = re.compile(r"^Object (?P<what>contains unknown|missing required) field `(?P<key>[^`]+)`$")
_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[([0-9]+)\]")


def value_type(node: mi.Type) -> mi.Type:
    """Strip Annotated metadata and `| None` to reach the value's own type (msgspec already drops UNSET)."""
    while True:
        if isinstance(node, mi.Metadata):
            node = node.type
        elif isinstance(node, mi.UnionType):
            options = [t for t in node.types if not isinstance(t, mi.NoneType)]
            if len(options) != 1:
                return node
            node = options[0]
        else:
            return node


def _node_at(path: str) -> tuple[mi.Type | None, str | None]:
    """The type found at a `$.a[0].b` path, and the description of the last key (if any)."""
    node: mi.Type = mi.type_info(LlorchConfig)
    description = None
    for name, index in _STEP.findall(path.removeprefix("$")):
        node = value_type(node)
        if index:
            if not isinstance(node, mi.ListType):
                return None, None
            node = node.item_type
            continue
        if not isinstance(node, mi.StructType):
            return None, None
        found = next((f for f in node.fields if f.encode_name == name), None)
        if found is None:
            return None, None
        node = found.type
        extra = node.extra_json_schema if isinstance(node, mi.Metadata) else None
        description = (extra or {}).get("description")
    return node, description


def _suggestion(parent_path: str, key: str) -> str:
    node, _ = _node_at(parent_path)
    node = value_type(node) if node is not None else None
    if not isinstance(node, mi.StructType):
        return ""
    close = difflib.get_close_matches(key, [f.encode_name for f in node.fields], n=1, cutoff=0.6)
    return f" (did you mean `{close[0]}`?)" if close else ""


def explain(message: str) -> tuple[str, str]:
    """(key path, human detail) for one msgspec validation message."""
    path, detail = "$", message
    if located := _AT.match(message):
        path, detail = located.group("path"), located.group("detail")
    if keyed := _KEYED.match(detail):
        key = keyed.group("key")
        if keyed.group("what") == "contains unknown":
            return f"{path}.{key}", f"unknown key{_suggestion(path, key)}"
        return f"{path}.{key}", "required key is missing"
    _, description = _node_at(path)
    return path, f"{detail} ({description})" if description else detail
