"""`python -m orchestratord [--config FILE]`: serve on the configured bind."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from llorch_config import ConfigError, auth_token, load_config
from llorch_contracts.config import LogFormat
from llorch_http import AuthPolicy, configure_logging, read_build_info, serve
from llorch_store import StoreError

from ._app import EXEMPT, create_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="orchestratord")
    parser.add_argument("--config", type=Path, help="YAML config (default: the embedded dev default)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"orchestratord: config error: {exc}", file=sys.stderr)
        return 2
    logging_config = config.logging
    configure_logging(
        "orchestratord", json_lines=logging_config.format == LogFormat.json, level=str(logging_config.level)
    )
    token = auth_token(config.auth.token_env, os.environ)
    auth = AuthPolicy.from_config(config.auth, token, exempt=EXEMPT)
    try:
        app = create_app(config, read_build_info(Path(__file__).parent), auth=auth)
    except StoreError as exc:
        print(f"orchestratord: cannot open its state: {exc}", file=sys.stderr)
        return 2
    return serve(app, config.orchestratord.bind, auth=auth, token_env=config.auth.token_env)


if __name__ == "__main__":
    sys.exit(main())
