"""Decode the YAML config into the generated `LlorchConfig`, with errors that name the key path.

A user reads `t.yaml: $.pools[0].enigne: unknown key (did you mean `engine`?)`
rather than a framework message.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import msgspec
import yaml

import llorch_contracts
from llorch_contracts.config import LlorchConfig

from ._explain import explain
from ._rules import check_rules, control_characters
from ._unsupported import not_supported_yet

DEFAULT_RESOURCE = "embedded-default.yaml"


class ConfigError(Exception):
    """The config file is unreadable or invalid; `path` is the offending key path (`$.pools[0].id`)."""

    def __init__(self, source: str, path: str, detail: str) -> None:
        super().__init__(f"{source}: {path}: {detail}")
        self.source = source
        self.path = path
        self.detail = detail


def parse_config(text: str, source: str = "<config>") -> LlorchConfig:
    """Validate config text (YAML) and return the typed, defaulted config."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(source, "$", f"not valid YAML: {exc}") from exc
    for path, detail in control_characters(raw):
        raise ConfigError(source, path, detail)
    try:
        config = msgspec.convert({} if raw is None else raw, LlorchConfig)
    except msgspec.ValidationError as exc:
        path, detail = explain(str(exc))
        raise ConfigError(source, path, detail) from exc
    for path, detail in check_rules(config):
        raise ConfigError(source, path, detail)
    for path, detail in not_supported_yet(config):  # OC-CONFIG-6111
        raise ConfigError(source, path, detail)
    return config


def load_config(path: Path | None = None) -> LlorchConfig:
    """Load a config file, or the embedded default (dev profile, one CPU pool) when `path` is None."""
    if path is None:
        return parse_config(default_config_text(), f"<embedded {DEFAULT_RESOURCE}>")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), "$", f"cannot read: {exc.strerror}") from exc
    return parse_config(text, str(path))


def default_config_text() -> str:
    """The embedded default config, as shipped."""
    return resources.files(llorch_contracts).joinpath(DEFAULT_RESOURCE).read_text(encoding="utf-8")
