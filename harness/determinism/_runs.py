"""Runs through the public API only: `POST /v2/tasks` in, the task's SSE stream out (OC-TEST-7011).

Every task is pinned to the pool under test. The replica a run landed on is read from the
stream's `metrics` event, so no other endpoint is needed to tell the two replicas apart.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx

from llorch_testkit import parse_sse

PROMPT = "Once upon a time"
MAX_TOKENS = 24
# Above zero (OC-TEST-7010): the sampler draws from the seeded RNG, so the seed decides the text.
TEMPERATURE = 1.0


@dataclass(frozen=True)
class Run:
    """One finished task as its stream told it."""

    seed: int
    task_id: str
    pool_id: str
    replica_id: str
    engine_version: str
    text: str
    tokens_out: int
    finish_reason: str
    decode_time_ms: int
    elapsed_ms: float  # from submission until the stream was read to its end, queueing included

    def output(self) -> tuple[str, int, str]:
        """What must match across runs of one seed (OC-TEST-7001)."""
        return self.text, self.tokens_out, self.finish_reason


@dataclass
class SeedRuns:
    """Every run of one seed, in the order they were submitted."""

    seed: int
    runs: list[Run] = field(default_factory=list)

    def replicas(self) -> set[str]:
        return {run.replica_id for run in self.runs}

    def first_on(self, replica_id: str) -> Run:
        return next(run for run in self.runs if run.replica_id == replica_id)


class TaskClient:
    """Submits the suite's request for a seed and reads the run back from its stream."""

    def __init__(self, client: httpx.Client, *, model_ref: str, pool_id: str) -> None:
        self.client = client
        self.model_ref = model_ref
        self.pool_id = pool_id

    def submit(self, seed: int, *, max_tokens: int = MAX_TOKENS) -> str:
        body = {
            "model_ref": self.model_ref,
            "prompt": PROMPT,
            "max_tokens": max_tokens,
            "seed": seed,
            "determinism": "strict",
            "sampling": {"temperature": TEMPERATURE},
            "placement": {"mode": "pin", "pin_pool_id": self.pool_id},
        }
        response = self.client.post("/v2/tasks", json=body)
        assert response.status_code == 202, response.text
        return str(response.json()["task_id"])

    def cancel(self, task_id: str) -> None:
        response = self.client.post(f"/v2/tasks/{task_id}/cancel")
        assert response.status_code == 204, response.text

    def read(self, seed: int, task_id: str, submitted_at: float) -> Run:
        events = [(e.event, json.loads(e.data)) for e in parse_sse(self.read_stream(task_id))]
        name, end = events[-1]
        assert name == "end", f"seed {seed}: task {task_id} ended with {name}: {end}"
        # A task retried after a replica failure has one placement frame per attempt; the last one ran it.
        placed = [data for name, data in events if name == "metrics" and "replica_id" in data][-1]
        return Run(
            seed=seed,
            task_id=task_id,
            pool_id=placed["pool_id"],
            replica_id=placed["replica_id"],
            engine_version=placed["engine_version"],
            text="".join(data["t"] for name, data in events if name == "token"),
            tokens_out=end["tokens_out"],
            finish_reason=end["finish_reason"],
            decode_time_ms=end["decode_time_ms"],
            elapsed_ms=round((time.monotonic() - submitted_at) * 1000, 1),
        )

    def read_stream(self, task_id: str) -> str:
        response = self.client.get(f"/v2/tasks/{task_id}/events")
        assert response.status_code == 200, response.text
        return response.text

    def run_wave(self, seeds: Iterable[int], by_seed: dict[int, SeedRuns]) -> None:
        """Submit one task per seed at once, then read them all: the pool runs them as slots free up."""
        submitted = [(seed, self.submit(seed), time.monotonic()) for seed in seeds]
        for seed, task_id, submitted_at in submitted:
            by_seed[seed].runs.append(self.read(seed, task_id, submitted_at))
