"""Relay benchmarks for orchestratord: `python3 xtask.py bench [options]`.

Requirement: with the mock engine emitting as fast as it can, one
orchestratord process relays at least 20,000 tokens/s to a subscriber, and
adds under 2 ms (p50) to the time to first token compared with calling the
engine directly. See relay.py and ttft.py for what is measured and how.

Prints a table, writes JSON (default harness/bench/results/latest.json) and
exits 0 whether or not the targets are met; a non-zero exit means the
benchmark itself broke.
"""

from __future__ import annotations

import argparse
import asyncio
import pstats
import statistics
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from procs import server_process
from relay import StreamRun, in_process_rate, stream_rate
from report import machine_facts, now_iso, table, write_json
from ttft import measure_ttft

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TARGET_TOKENS_PER_S = 20_000
TARGET_OVERHEAD_P50_MS = 2.0
PROFILE_TOP = 40
WARMUP_TOKENS = 2048


def _loop_factory() -> tuple[Callable[[], asyncio.AbstractEventLoop] | None, str]:
    try:
        import uvloop
    except ImportError:
        return None, "asyncio"
    return uvloop.new_event_loop, "uvloop"


def _median_or_none(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _stream_stats(runs: list[StreamRun]) -> dict[str, Any]:
    return {
        "tokens_per_s_median": statistics.median(r.tokens_per_s for r in runs),
        "first_token_ms_median": statistics.median(r.first_token_s * 1000 for r in runs),
        "client_cpu_share_median": statistics.median(r.client_cpu_s / r.total_s for r in runs),
        "client_cpu_us_per_token_median": statistics.median(r.client_cpu_s / r.tokens * 1e6 for r in runs),
        "server_cpu_share_median": _median_or_none(
            [None if r.server_cpu_s is None else r.server_cpu_s / r.total_s for r in runs]
        ),
        "server_cpu_us_per_token_median": _median_or_none(
            [None if r.server_cpu_s is None else r.server_cpu_s / r.tokens * 1e6 for r in runs]
        ),
        "runs": [asdict(r) | {"tokens_per_s": r.tokens_per_s} for r in runs],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    loop_factory, loop_name = _loop_factory()
    profile_path = args.output.parent / "orchestratord.prof"
    limit = max(args.tokens, WARMUP_TOKENS)
    orch_extra = ["--max-tokens-limit", str(limit), "--log-level", args.log_level]
    bare_extra = ["--no-journal", *orch_extra]
    if args.profile:
        profile_path.parent.mkdir(parents=True, exist_ok=True)
        orch_extra += ["--profile", str(profile_path)]
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        mock_rates = [runner.run(in_process_rate(args.tokens)) for _ in range(args.runs)]
        with (
            server_process("engine") as engine,
            server_process("orchestratord", *orch_extra) as orch,
            server_process("orchestratord", *bare_extra) as bare,
        ):
            # Warm both servers (imports, first-request paths) before anything is timed.
            runner.run(stream_rate(engine.base_url, engine.pid, WARMUP_TOKENS, via="engine"))
            runner.run(stream_rate(orch.base_url, orch.pid, WARMUP_TOKENS, via="orchestratord"))
            engine_runs: list[StreamRun] = []
            orch_runs: list[StreamRun] = []
            for _ in range(args.runs):
                engine_runs.append(
                    runner.run(stream_rate(engine.base_url, engine.pid, args.tokens, via="engine"))
                )
                orch_runs.append(
                    runner.run(stream_rate(orch.base_url, orch.pid, args.tokens, via="orchestratord"))
                )
            ttft = runner.run(
                measure_ttft(
                    orch.base_url,
                    engine.base_url,
                    args.ttft_samples,
                    args.ttft_warmup,
                    args.ttft_tokens,
                    no_journal_url=bare.base_url,
                )
            )
    mock = {"tokens_per_s_median": statistics.median(mock_rates), "runs": mock_rates}
    engine_http, orchestratord = _stream_stats(engine_runs), _stream_stats(orch_runs)
    relayed = orchestratord["tokens_per_s_median"]
    return {
        "schema": 1,
        "when": now_iso(),
        "machine": machine_facts(ROOT, loop_name),
        "params": {
            "tokens": args.tokens,
            "runs": args.runs,
            "ttft_samples": args.ttft_samples,
            "ttft_warmup": args.ttft_warmup,
            "ttft_max_tokens": args.ttft_tokens,
            "profiled": args.profile,
            "orchestratord_log_level": args.log_level,
        },
        "throughput": {
            "mock_in_process": mock,
            "engine_http": engine_http,
            "orchestratord": orchestratord,
            "ratio_vs_in_process": relayed / mock["tokens_per_s_median"],
            "ratio_vs_engine_http": relayed / engine_http["tokens_per_s_median"],
            "target_tokens_per_s": TARGET_TOKENS_PER_S,
            "pass": relayed >= TARGET_TOKENS_PER_S,
        },
        "ttft": asdict(ttft)
        | {
            "overhead_p50_ms": ttft.overhead_p50_ms,
            "target_overhead_p50_ms": TARGET_OVERHEAD_P50_MS,
            "pass": ttft.overhead_p50_ms < TARGET_OVERHEAD_P50_MS,
        },
        "profile": str(profile_path) if args.profile else None,
    }


def _at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}")
        return value

    return parse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="xtask.py bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=_at_least(1), default=100_000, help="tokens in each throughput task")
    parser.add_argument(
        "--runs", type=_at_least(1), default=5, help="throughput runs per path (the median is reported)"
    )
    parser.add_argument("--ttft-samples", type=_at_least(2), default=200, help="timed tasks per path")
    parser.add_argument("--ttft-warmup", type=_at_least(0), default=20, help="untimed tasks per path first")
    parser.add_argument("--ttft-tokens", type=_at_least(1), default=8, help="max_tokens of each TTFT task")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error", "critical"],
        help="orchestratord's logging.level (default as shipped)",
    )
    parser.add_argument("--output", type=Path, default=HERE / "results" / "latest.json")
    parser.add_argument(
        "--profile", action="store_true", help="run orchestratord under cProfile and print its top"
    )
    args = parser.parse_args(argv)
    result = run(args)
    write_json(args.output, result)
    print(table(result))
    print(f"\nresults: {args.output}")
    if args.profile:
        print(f"\norchestratord profile ({result['profile']}), top {PROFILE_TOP} by own time:")
        pstats.Stats(result["profile"], stream=sys.stdout).sort_stats("tottime").print_stats(PROFILE_TOP)
    return 0


if __name__ == "__main__":
    sys.exit(main())
