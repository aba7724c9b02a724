"""`python -m pool_managerd [--config FILE]`: serve on the configured bind."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from llorch_config import ConfigError, auth_token, load_config
from llorch_contracts.config import LogFormat
from llorch_http import AuthPolicy, configure_logging, serve
from llorch_pools import HostPreparer

from ._app import EXEMPT, create_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pool-managerd")
    parser.add_argument("--config", type=Path, help="YAML config (default: the embedded dev default)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"pool-managerd: config error: {exc}", file=sys.stderr)
        return 2
    json_lines = config.logging.format == LogFormat.json
    configure_logging("pool-managerd", json_lines=json_lines, level=str(config.logging.level))
    # Relative model paths are relative to the config file (or the working directory without one).
    base_dir = args.config.resolve().parent if args.config else Path.cwd()
    cache_root = Path(config.pool_managerd.cache_dir).expanduser()
    preparer = HostPreparer(config, cache_root=cache_root, base_dir=base_dir)
    auth = AuthPolicy.from_config(config.auth, auth_token(config.auth.token_env, os.environ), exempt=EXEMPT)
    app = create_app(config, preparer=preparer, environ=dict(os.environ), auth=auth, base_dir=base_dir)
    return serve(app, config.pool_managerd.bind, auth=auth, token_env=config.auth.token_env)


if __name__ == "__main__":
    sys.exit(main())
