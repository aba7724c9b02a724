"""The `llorch` command."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from llorch_config import ConfigError
from llorch_provisioning import default_cache_root

from ._models import run_make_tiny, seed_arg
from ._submit import DEFAULT_URL, run_submit
from ._up import run_up


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llorch", description="llama-orch command line")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run pool-managerd and orchestratord until Ctrl-C")
    up.add_argument("--config", type=Path, help="YAML config (default: the embedded dev default)")
    models = sub.add_parser("models", help="manage model files").add_subparsers(
        dest="models_command", required=True
    )
    tiny = models.add_parser("make-tiny", help="write (or reuse) the deterministic tiny test model")
    tiny.add_argument("--seed", type=seed_arg, default=0, help="weights seed (default 0)")
    tiny.add_argument("--out", type=Path, help="also place the model here (default: only the cache)")
    tiny.add_argument(
        "--cache-dir",
        type=Path,
        help="cache root (default: $XDG_CACHE_HOME/llama-orch, else ~/.cache/llama-orch)",
    )
    submit = sub.add_parser("submit", help="enqueue a completion and stream its tokens (Ctrl-C cancels)")
    submit.add_argument("prompt")
    submit.add_argument("--model", default="gen:tiny-llama", help="model_ref (default: gen:tiny-llama)")
    submit.add_argument("--max-tokens", type=int, default=64)
    submit.add_argument("--seed", type=int)
    submit.add_argument("--priority", choices=["interactive", "batch"], default="interactive")
    submit.add_argument("--url", default=DEFAULT_URL, help=f"orchestratord (default {DEFAULT_URL})")
    submit.add_argument("--token-env", default="LLORCH_API_TOKEN", help="variable holding the bearer token")
    args = parser.parse_args(argv)
    try:
        if args.command == "submit":
            body = {"model_ref": args.model, "prompt": args.prompt, "max_tokens": args.max_tokens}
            body |= {"priority": args.priority} | ({"seed": args.seed} if args.seed is not None else {})
            return run_submit(args.url, body, token=os.environ.get(args.token_env))
        if args.command == "up":
            return run_up(args.config)
        if args.command == "models" and args.models_command == "make-tiny":
            cache_root = args.cache_dir or default_cache_root(os.environ)
            return run_make_tiny(seed=args.seed, out=args.out, cache_root=cache_root)
    except ConfigError as exc:
        print(f"llorch: config error: {exc}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
