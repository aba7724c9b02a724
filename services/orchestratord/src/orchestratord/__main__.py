"""`python -m orchestratord [--config FILE]`: serve on the configured bind."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from llorch_config import ConfigError, load_config
from llorch_contracts.config import LogFormat
from llorch_http import configure_logging, read_build_info, serve

from ._app import create_app


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
    app = create_app(config, read_build_info(Path(__file__).parent))
    return serve(app, config.orchestratord.bind, config.auth.token_env)


if __name__ == "__main__":
    sys.exit(main())
