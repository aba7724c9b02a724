"""Load and validate llama-orch's single YAML config (contracts/config/).

Decoded once at start-up into the generated `LlorchConfig` and passed down;
nothing else reads the file. Errors name the offending key path.
"""

from ._bind import auth_token, bind_host_port, bind_refusal, is_loopback
from ._explain import value_type
from ._load import ConfigError, default_config_text, load_config, parse_config
from ._unsupported import NOT_SUPPORTED_YET, Unsupported

__all__ = [
    "NOT_SUPPORTED_YET",
    "ConfigError",
    "Unsupported",
    "auth_token",
    "bind_host_port",
    "bind_refusal",
    "default_config_text",
    "is_loopback",
    "load_config",
    "parse_config",
    "value_type",
]
