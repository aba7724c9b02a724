"""`python -m pool_managerd [--config FILE]`: serve on the configured bind."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from llorch_config import ConfigError, load_config
from llorch_http import serve

from ._app import create_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pool-managerd")
    parser.add_argument("--config", type=Path, help="YAML config (default: the embedded dev default)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"pool-managerd: config error: {exc}", file=sys.stderr)
        return 2
    return serve(create_app(config), config.pool_managerd.bind, config.auth.token_env)


if __name__ == "__main__":
    sys.exit(main())
