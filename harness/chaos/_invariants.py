"""The one invariant checker every chaos scenario ends with (ORCH-3442).

`check_invariants` returns a list of violations (empty when the stack kept its promises):
every admitted task has exactly one terminal event and nothing after it; event ids run 0..n
without a gap or repeat across reconnects; no task is stuck past the bound; engine slots are
free and queues empty; orchestratord's `/metrics` counters equal what the clients saw; its RSS
is back within bounds; and a fresh task still runs to `end`.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass

import httpx

from harness.chaos._recorder import TERMINAL, Recorder, TaskRecord
from harness.chaos._stack import ChaosStack, rss_kb

SETTLE_S = 20.0
# Generous on purpose: the allocator keeps freed arenas; a leak of per-task state over ~100 tasks
# still shows as far more than this.
RSS_GROWTH_LIMIT_KB = 64 * 1024
PROBE_TOKENS = 8


@dataclass(frozen=True)
class Expectations:
    """What a scenario allows: how long tasks may take to end, and which checks apply."""

    bound_s: float = 60.0
    metrics: bool = True
    rss_before_kb: int | None = None
    # OC-CTRL-2173: a restored task's ids jump past what it could have sent; one jump per restart.
    id_jumps: int = 0


def _jumps(ids: list[int | None]) -> int | None:
    """How many times ids skip forward; None when one is missing, repeated or goes back."""
    if not ids or ids[0] != 0 or any(i is None for i in ids):
        return None
    steps = [b - a for a, b in itertools.pairwise(ids)]  # type: ignore[operator]
    return None if any(step < 1 for step in steps) else sum(1 for step in steps if step > 1)


def check_stream(record: TaskRecord, id_jumps: int = 0) -> list[str]:
    """The per-task stream rules: one terminal event, last; ids consecutive from 0; started first."""
    problems: list[str] = []
    terminals = [e for e in record.events if e.name in TERMINAL]
    if not terminals:
        problems.append(f"no terminal event (stuck): {record.summary()}")
    elif len(terminals) > 1 or record.events[-1] is not terminals[0]:
        problems.append(f"events after or besides the terminal one: {record.summary()}")
    if record.closed_after_terminal is False:
        problems.append(f"stream stayed open after its terminal event: {record.summary()}")
    ids = [e.id for e in record.events]
    jumps = _jumps(ids)
    if jumps is None or jumps > id_jumps:
        problems.append(f"ids not consecutive from 0 across {record.connections} connection(s): {ids[:40]}")
    if record.events and record.events[0].name != "started":
        problems.append(f"first event is not `started`: {record.summary()}")
    token_indexes = [e.data.get("i") for e in record.events if e.name == "token"]
    if token_indexes != list(range(len(token_indexes))):
        problems.append(f"token.i not consecutive from 0: {token_indexes[:40]} in {record.task_id}")
    return problems


def _counter_sum(metrics: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def check_metrics(metrics: str, recorder: Recorder) -> list[str]:
    """orchestratord's counters against what the clients saw (names from contracts/metrics)."""
    admitted = recorder.admitted
    seen = {
        "tasks_enqueued_total": len(admitted),
        "tasks_canceled_total": sum(1 for r in admitted if r.outcome == "end:canceled"),
        "tokens_out_total": sum(r.tokens for r in admitted),
        "tasks_rejected_total{reason=ADMISSION_REJECT}": sum(
            1 for s in recorder.submissions if s.status == 429 and s.error_code == "ADMISSION_REJECT"
        ),
    }
    counted = {
        "tasks_enqueued_total": _counter_sum(metrics, "tasks_enqueued_total"),
        "tasks_canceled_total": _counter_sum(metrics, "tasks_canceled_total"),
        "tokens_out_total": _counter_sum(metrics, "tokens_out_total"),
        "tasks_rejected_total{reason=ADMISSION_REJECT}": _counter_sum(
            metrics, "tasks_rejected_total", reason="ADMISSION_REJECT"
        ),
    }
    return [
        f"/metrics {name} = {counted[name]:g}, clients saw {seen[name]}"
        for name in seen
        if counted[name] != seen[name]
    ]


def _slots_problems(stack: ChaosStack) -> list[str]:
    """Empty once orchestratord and every llama-server report all slots free and nothing queued."""
    try:
        orch = stack.orchestratord_pool()
        pool = stack.pool()
    except (httpx.TransportError, StopIteration) as exc:
        return [f"pool view unreadable: {exc!r}"]
    problems = []
    if not orch["ready"] or orch["slots_free"] != orch["slots_total"] or orch["queue_depth"] != 0:
        problems.append(
            f"orchestratord pool view: ready={orch['ready']} slots_free={orch['slots_free']}/"
            f"{orch['slots_total']} queue_depth={orch['queue_depth']}"
        )
    for replica in pool["replicas"]:
        try:
            slots = httpx.get(f"{replica['endpoint']}/slots", timeout=5).json()
        except (httpx.TransportError, ValueError) as exc:
            problems.append(f"{replica['replica_id']} /slots unreadable: {exc!r}")
            continue
        busy = [s["id"] for s in slots if s.get("is_processing")]
        if busy:
            problems.append(f"{replica['replica_id']} llama-server slots still processing: {busy}")
    return problems


async def _settled(stack: ChaosStack) -> list[str]:
    deadline = time.monotonic() + SETTLE_S
    while problems := await asyncio.to_thread(_slots_problems, stack):
        if time.monotonic() > deadline:
            return [f"not settled {SETTLE_S:.0f}s after the scenario: {p}" for p in problems]
        await asyncio.sleep(0.2)
    return []


async def check_invariants(stack: ChaosStack, recorder: Recorder, expect: Expectations) -> list[str]:
    """Every invariant, after the scenario; returns the violations (the scenario asserts it is empty)."""
    await recorder.wait_all(expect.bound_s)
    problems = [p for record in recorder.admitted for p in check_stream(record, expect.id_jumps)]
    problems += await _settled(stack)
    if expect.metrics:
        metrics = (await asyncio.to_thread(httpx.get, f"{stack.orchestratord_url}/metrics", timeout=5)).text
        problems += check_metrics(metrics, recorder)
    probe = await recorder.submit(max_tokens=PROBE_TOKENS, seed=7)
    if probe.record is None:
        problems.append(f"a fresh task was refused after the scenario: {probe.status} {probe.error_code}")
    else:
        await recorder.wait_all(expect.bound_s)
        if not probe.record.outcome.startswith("end:") or probe.record.outcome == "end:canceled":
            problems.append(f"a fresh task did not run after the scenario: {probe.record.summary()}")
    if expect.rss_before_kb is not None:
        after = rss_kb(stack.orchestratord.pid)
        if after > expect.rss_before_kb + RSS_GROWTH_LIMIT_KB:
            problems.append(
                f"orchestratord RSS {after} kB, was {expect.rss_before_kb} kB before the scenario"
            )
    return problems
