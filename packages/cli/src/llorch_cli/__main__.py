"""The `llorch` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from llorch_config import ConfigError

from ._up import run_up


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llorch", description="llama-orch command line")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run pool-managerd and orchestratord until Ctrl-C")
    up.add_argument("--config", type=Path, help="YAML config (default: the embedded dev default)")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            return run_up(args.config)
    except ConfigError as exc:
        print(f"llorch: config error: {exc}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
