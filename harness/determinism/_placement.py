"""Steer runs onto one replica of a set by keeping every other replica busy.

A client can pin a pool but not a replica, and a 24-token run ends in a few milliseconds, so two
copies submitted together often both land on whichever replica frees first. Here long
"holding" tasks occupy the other replicas' single slots while the seeds run; orchestratord then
has only the wanted replica to dispatch onto. Where a run landed is still read from its stream
and checked by the caller, so a hold that ended early costs a retry, never a wrong pairing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from llorch_testkit import parse_sse

from ._runs import SeedRuns, TaskClient

# Prompt plus this stays inside the pool's context; at a few thousand tokens/s it holds a replica
# for a few hundred milliseconds, long enough for a wave of short runs even on a loaded machine.
HOLD_TOKENS = 2000
HOLD_SEED = 7


def placement(tasks: TaskClient, task_id: str) -> str:
    """The replica a task was dispatched to, read from its stream as soon as it is placed."""
    seen = ""
    with tasks.client.stream("GET", f"/v2/tasks/{task_id}/events") as stream:
        for line in stream.iter_lines():
            seen += line + "\n"
            if line:
                continue
            for event in parse_sse(seen):
                if event.event == "metrics" and '"replica_id"' in event.data:
                    return str(json.loads(event.data)["replica_id"])
                if event.event in {"end", "error"}:
                    raise AssertionError(f"holding task {task_id} ended before it was placed: {event}")
    raise AssertionError(f"holding task {task_id}: stream closed before placement")


@contextmanager
def holding_all_but(tasks: TaskClient, free_replica: str, replica_ids: set[str]) -> Iterator[None]:
    """Occupy every replica except `free_replica` for the duration of the block."""
    held: dict[str, str] = {}
    try:
        # Each holding task takes a free slot; at most one lands on `free_replica` before the others fill.
        for _ in range(len(replica_ids) + 1):
            if set(held) >= replica_ids - {free_replica}:
                break
            task_id = tasks.submit(HOLD_SEED, max_tokens=HOLD_TOKENS)
            held[placement(tasks, task_id)] = task_id
        if free_replica in held:
            tasks.cancel(held.pop(free_replica))
        yield
    finally:
        for task_id in held.values():
            tasks.cancel(task_id)


def cover_replicas(
    tasks: TaskClient,
    seeds: Sequence[int],
    replica_ids: set[str],
    *,
    seeds_per_hold: int,
    max_rounds: int,
) -> dict[int, SeedRuns]:
    """Run every seed until it has a run on every replica of the set, at most `max_rounds` times over.

    Each round steers, replica by replica, the seeds still missing there onto it in small waves.
    """
    by_seed = {seed: SeedRuns(seed) for seed in seeds}
    for _ in range(max_rounds):
        for replica_id in sorted(replica_ids):
            missing = [seed for seed in seeds if replica_id not in by_seed[seed].replicas()]
            for start in range(0, len(missing), seeds_per_hold):
                with holding_all_but(tasks, replica_id, replica_ids):
                    tasks.run_wave(missing[start : start + seeds_per_hold], by_seed)
        if all(runs.replicas() == replica_ids for runs in by_seed.values()):
            break
    return by_seed
