"""Machine facts, the human-readable table and the JSON result file."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("uvicorn", "uvloop", "httptools", "litestar", "msgspec")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _git(root: Path) -> dict[str, Any]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


def machine_facts(root: Path, client_loop: str) -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "packages": {name: _version(name) for name in PACKAGES},
        "uvloop": _version("uvloop") is not None,
        "httptools": _version("httptools") is not None,
        "client_event_loop": client_loop,
        "git": _git(root),
    }


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_json(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")


def _verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def table(result: dict[str, Any]) -> str:
    """The result as aligned text, one block per requirement."""
    m, tp, tt = result["machine"], result["throughput"], result["ttft"]
    lines = [
        f"llama-orch relay benchmark  {result['when']}  git {(m['git']['commit'] or '?')[:10]}"
        + (" (dirty)" if m["git"]["dirty"] else ""),
        f"machine: {m['cpu_count']} CPUs ({m['cpu_model']}), Python {m['python']}, "
        f"uvloop={m['uvloop']} httptools={m['httptools']}, client loop {m['client_event_loop']}",
    ]
    if result["params"]["profiled"]:
        lines.append("NOTE: orchestratord ran under cProfile; its numbers are inflated by the profiler.")
    params = result["params"]
    lines += [
        "",
        f"Throughput: one task of {params['tokens']:,} tokens, median of {params['runs']} runs",
        f"  {'path':<34}{'tokens/s':>12}{'srv CPU':>9}{'srv us/tok':>11}{'cli CPU':>9}{'cli us/tok':>11}",
    ]
    rows = [
        ("mock engine in-process (no HTTP)", tp["mock_in_process"], None),
        ("engine SSE server (HTTP ceiling)", tp["engine_http"], tp["engine_http"]),
        ("orchestratord relay", tp["orchestratord"], tp["orchestratord"]),
    ]
    for name, stats, cpu in rows:
        row = f"  {name:<34}{stats['tokens_per_s_median']:>12,.0f}"
        if cpu is not None:
            row += (
                f"{_pct(cpu['server_cpu_share_median']):>9}{_num(cpu['server_cpu_us_per_token_median']):>11}"
                f"{_pct(cpu['client_cpu_share_median']):>9}{_num(cpu['client_cpu_us_per_token_median']):>11}"
            )
        lines.append(row)
    lines += [
        f"  orchestratord / in-process mock: {tp['ratio_vs_in_process']:.2f}; "
        f"orchestratord / engine server: {tp['ratio_vs_engine_http']:.2f}",
        f"  target >= {tp['target_tokens_per_s']:,} tokens/s relayed: {_verdict(tp['pass'])}",
        "",
        f"Time to first token: {tt['samples']} sequential tasks per path, max_tokens={tt['max_tokens']} (ms)",
        f"  {'path':<44}{'p50':>8}{'p90':>8}{'p99':>8}{'min':>8}",
    ]
    for name, key in (
        ("engine directly (bare SSE server)", "direct"),
        ("orchestratord (POST + GET events)", "orchestratord"),
        ("  of which POST -> 202", "orchestratord_post"),
        ("  of which GET events -> first token", "orchestratord_events"),
        ("per-pair overhead (orchestratord - direct)", "paired_overhead"),
        ("orchestratord without the journal", "orchestratord_no_journal"),
        ("per-pair journal cost (with - without)", "paired_journal_cost"),
    ):
        p = tt[key]
        lines.append(
            f"  {name:<44}{p['p50_ms']:>8.3f}{p['p90_ms']:>8.3f}{p['p99_ms']:>8.3f}{p['min_ms']:>8.3f}"
        )
    lines += [
        f"  overhead p50 (orchestratord p50 - direct p50): {tt['overhead_p50_ms']:.3f} ms",
        f"  target < {tt['target_overhead_p50_ms']} ms: {_verdict(tt['pass'])}",
    ]
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
