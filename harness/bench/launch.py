"""Server side of the benchmark, run as its own process: `launch.py {orchestratord,engine} --port P`.

Each server gets a process (and GIL) of its own, apart from the measuring
client. Both use the fast mock engine and the same uvicorn settings as
production (`llorch_http.serve`: uvloop and httptools when installed);
orchestratord logs as `python -m orchestratord` does.
"""

from __future__ import annotations

import argparse
import cProfile
import signal
import sys
import tempfile
from pathlib import Path

import uvicorn

# A mock pool whose context and limits allow one very long stream.
CONFIG_YAML = """\
pools:
  - id: bench
    engine: {{kind: mock}}
    model: {{ref: mock-model}}
    ctx_max: {ctx}
orchestratord:
  admission: {{max_tokens_limit: {limit}}}
  sse: {{max_events_per_task: {events}}}
logging: {{level: {log_level}}}
"""


def orchestratord_app(max_tokens_limit: int, log_level: str, journal: bool = True) -> object:
    from llorch_adapters import MockAdapter, MockScript
    from llorch_config import parse_config
    from llorch_contracts.config import LogFormat
    from llorch_http import configure_logging
    from orchestratord import create_app

    yaml = CONFIG_YAML.format(
        ctx=max_tokens_limit + 1, limit=max_tokens_limit, events=max_tokens_limit + 64, log_level=log_level
    )
    config = parse_config(yaml)
    # As `python -m orchestratord` does: narrated JSON lines to stderr (here a temporary file).
    json_lines = config.logging.format == LogFormat.json
    configure_logging("orchestratord", json_lines=json_lines, level=str(config.logging.level))
    # Catalog and artifacts of a benchmark run go to a throwaway directory, never the user's state.
    state_dir = Path(tempfile.mkdtemp(prefix="llorch-bench-"))
    adapters = {"mock": MockAdapter(MockScript(fast=True))}
    return create_app(config, adapters=adapters, state_dir=state_dir, journal=journal)


def engine_app() -> object:
    from engine_server import create_engine_app

    from llorch_adapters import MockAdapter, MockScript

    return create_engine_app(MockAdapter(MockScript(fast=True)))


def _exit_quietly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="launch.py")
    parser.add_argument("server", choices=["orchestratord", "engine"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-tokens-limit", type=int, default=1_000_000)
    parser.add_argument(
        "--log-level", default="info", help="orchestratord's logging.level (production: info)"
    )
    parser.add_argument(
        "--no-journal", action="store_true", help="orchestratord without its admission journal (a baseline)"
    )
    parser.add_argument("--profile", type=Path, help="write cProfile stats of the serving loop here on exit")
    args = parser.parse_args(argv)
    app = (
        orchestratord_app(args.max_tokens_limit, args.log_level, journal=not args.no_journal)
        if args.server == "orchestratord"
        else engine_app()
    )
    # The same settings as llorch_http.serve; SIGTERM shuts down gracefully, so the profile gets written.
    config = uvicorn.Config(
        app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False, lifespan="on"
    )
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        # uvicorn re-raises SIGTERM after its graceful shutdown; exit normally then, so the stats get written.
        signal.signal(signal.SIGTERM, _exit_quietly)
        profiler.enable()
    try:
        uvicorn.Server(config).run()
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
