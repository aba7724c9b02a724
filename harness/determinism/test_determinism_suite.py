"""The determinism suite: same seed, same replica settings, same bytes, on real llama-server replicas.

The whole stack runs in-process: pool-managerd starts two single-slot llama-server replicas of one
pool on the generated tiny model, and orchestratord dispatches onto them. Every corpus seed runs
once on each replica, a handful run again on the same replica, and the report directory lands in
pytest's tmp dir. The runs happen once per module; each test checks one requirement on them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from harness.determinism._placement import cover_replicas
from harness.determinism._report import Identity, Mismatch, write_report
from harness.determinism._runs import Run, SeedRuns, TaskClient
from llorch_adapters import MOCK_ENGINE_VERSION, SAMPLER_PROFILE_VERSION
from llorch_provisioning import EngineInstall
from llorch_testkit import Stack, running_stack, stack_config

POOL_ID = "determinism"
MODEL_REF = "tiny-llama"
REPLICAS = 2
POOLS = (
    f"  - id: {POOL_ID}\n    replicas: {REPLICAS}\n    allow_cpu_inference: true\n"
    f"    ctx_max: 2048\n    model: {{ref: {MODEL_REF}}}\n"
)
ORCHESTRATORD = "  queue: {capacity: 256}\n"
SEEDS_FILE = Path(__file__).with_name("seeds.txt")
SEEDS_PER_HOLD = 8
MAX_ROUNDS = 4
RERUN_SEEDS = 8
READY_TIMEOUT_S = 60.0
# OC-TEST-7010 asks for at least half; 24 tokens at temperature 1 leave neighbours equal only by accident.
MIN_DIFFERING_FRACTION = 0.9


def load_seeds(path: Path) -> list[int]:
    """The corpus: one integer a line; `#` starts a comment."""
    lines = (line.partition("#")[0].strip() for line in path.read_text().splitlines())
    return [int(line) for line in lines if line]


@dataclass(frozen=True)
class SuiteRun:
    """Everything the tests check: the set's identity, every run, and what disagreed."""

    identity: Identity
    replicas: list[dict[str, object]]
    argvs: dict[str, list[str]]
    by_seed: dict[int, SeedRuns]
    mismatches: list[Mismatch]
    report_dir: Path

    @property
    def replica_ids(self) -> list[str]:
        return sorted(str(r["replica_id"]) for r in self.replicas)

    def reference(self, seed: int) -> Run:
        return self.by_seed[seed].first_on(self.replica_ids[0])

    def reruns(self) -> list[tuple[Run, Run]]:
        """(first run on a replica, a later run of the same seed on that replica)."""
        pairs = []
        for runs in self.by_seed.values():
            for run in runs.runs:
                first = runs.first_on(run.replica_id)
                if run is not first:
                    pairs.append((first, run))
        return pairs

    def neighbours_differing(self) -> float:
        texts = [runs.runs[0].text for runs in self.by_seed.values()]
        return sum(a != b for a, b in itertools.pairwise(texts)) / (len(texts) - 1)


@pytest.fixture(scope="module")
def stack(
    llamacpp: EngineInstall, tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    config = stack_config(POOLS, orchestratord_yaml=ORCHESTRATORD)
    with running_stack(
        config, llamacpp.binary_path, tiny_model_path, tmp_path_factory.mktemp("run")
    ) as running:
        yield running


def ready_replicas(stack: Stack) -> list[dict[str, object]]:
    """The pool's replicas as pool-managerd reports them, once all of them are Ready.

    The stack is up when the pool can take work, which one Ready replica is enough for; the suite
    needs the whole set, in pool-managerd and in orchestratord's view of it.
    """
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        pools = httpx.get(f"{stack.pool_managerd}/v2/pools", timeout=10).json()
        replicas: list[dict[str, object]] = next(p for p in pools if p["pool_id"] == POOL_ID)["replicas"]
        seen = httpx.get(f"{stack.orchestratord}/v2/pools", timeout=10).json()
        slots = next(p for p in seen if p["pool_id"] == POOL_ID)["slots_total"]
        if len(replicas) == REPLICAS and slots == REPLICAS and all(r["state"] == "ready" for r in replicas):
            return replicas
        assert time.monotonic() < deadline, f"replicas not all ready after {READY_TIMEOUT_S}s: {replicas}"
        time.sleep(0.05)


def replica_set(stack: Stack) -> tuple[list[dict[str, object]], dict[str, list[str]]]:
    """The pool's Ready replicas, and each one's engine command line."""
    replicas = ready_replicas(stack)
    argvs = {
        str(r["replica_id"]): Path(f"/proc/{r['pid']}/cmdline").read_bytes().decode().split("\0")[:-1]
        for r in replicas
    }
    return replicas, argvs


def compare(by_seed: dict[int, SeedRuns], replica_ids: list[str]) -> list[Mismatch]:
    """Every run against the seed's first run on the first replica, and against its own replica's first."""
    mismatches = []
    for seed, runs in by_seed.items():
        if runs.replicas() != set(replica_ids):
            continue  # reported as uncovered, not as a mismatch
        reference = runs.first_on(replica_ids[0])
        for replica_id in replica_ids[1:]:
            other = runs.first_on(replica_id)
            if other.output() != reference.output():
                mismatches.append(Mismatch(seed, "replicas", reference, other))
        for run in runs.runs:
            first = runs.first_on(run.replica_id)
            if run is not first and run.output() != first.output():
                mismatches.append(Mismatch(seed, "rerun", first, run))
    return mismatches


@pytest.fixture(scope="module")
def suite(stack: Stack, tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    replicas, argvs = replica_set(stack)
    first = replicas[0]
    identity = Identity(
        engine=str(first["engine"]),
        engine_version=str(first["engine_version"]),
        model_digest=str(first["model_digest"]),
        sampler_profile_version=SAMPLER_PROFILE_VERSION,
        device_mask=str(first["device_mask"]),
    )
    replica_ids = sorted(str(r["replica_id"]) for r in replicas)
    seeds = load_seeds(SEEDS_FILE)
    with httpx.Client(base_url=stack.orchestratord, timeout=60) as client:
        tasks = TaskClient(client, model_ref=MODEL_REF, pool_id=POOL_ID)
        by_seed = cover_replicas(
            tasks, seeds, set(replica_ids), seeds_per_hold=SEEDS_PER_HOLD, max_rounds=MAX_ROUNDS
        )
        # Every seed already ran on both replicas, so a further run is a rerun on one of them.
        tasks.run_wave(seeds[:RERUN_SEEDS], by_seed)
    mismatches = compare(by_seed, replica_ids)
    run = SuiteRun(identity, replicas, argvs, by_seed, mismatches, tmp_path_factory.mktemp("determinism"))
    summary = {
        "seeds": len(seeds),
        "runs": sum(len(r.runs) for r in by_seed.values()),
        "uncovered_seeds": [s for s, r in by_seed.items() if r.replicas() != set(replica_ids)],
        "mismatches": len(mismatches),
        "reruns": len(run.reruns()),
        "neighbours_differing": round(run.neighbours_differing(), 3),
        "model_file_sha256": hashlib.sha256(tiny_model_path.read_bytes()).hexdigest(),
    }
    write_report(run.report_dir, identity=identity, by_seed=by_seed, mismatches=mismatches, summary=summary)
    print(
        f"determinism: {summary['seeds']} seeds, {summary['runs']} runs on {replica_ids} "
        f"({identity.engine_version}, {identity.device_mask}), {len(mismatches)} mismatches, "
        f"{summary['neighbours_differing']:.0%} of neighbours differ; report in {run.report_dir}"
    )
    return run


@pytest.mark.req("OC-TEST-7003")
def test_the_seed_corpus_is_a_committed_file_of_at_least_64_distinct_seeds() -> None:
    seeds = load_seeds(SEEDS_FILE)
    assert len(seeds) >= 64
    assert len(set(seeds)) == len(seeds)
    assert all(0 <= seed < 2**32 - 1 for seed in seeds), "2**32-1 is llama.cpp's 'random seed'"


@pytest.mark.req("OC-TEST-7002", "OC-TEST-7012")
def test_the_replicas_run_the_real_engine_single_slot_with_one_identity(suite: SuiteRun) -> None:
    replicas = suite.replicas
    assert len(replicas) == REPLICAS
    assert suite.identity.engine == "llamacpp"
    assert suite.identity.engine_version.startswith("llamacpp:")
    assert suite.identity.engine_version != MOCK_ENGINE_VERSION
    for replica_id, argv in suite.argvs.items():
        assert Path(argv[0]).name == "llama-server", replica_id
        assert argv[argv.index("--parallel") + 1] == "1", replica_id
        assert "--no-cont-batching" in argv, replica_id
    assert all(r["slots_total"] == 1 for r in replicas)
    for field in ("engine", "engine_version", "model_digest", "device_mask"):
        assert len({r[field] for r in replicas}) == 1, field
    # What the orchestrator ran on, as each task's stream reports it, is the same identity.
    ran_on = {run.engine_version for runs in suite.by_seed.values() for run in runs.runs}
    assert ran_on == {suite.identity.engine_version}


@pytest.mark.req("OC-TEST-7001", "OC-TEST-7011")
def test_every_seed_gives_the_same_bytes_on_both_replicas(suite: SuiteRun) -> None:
    uncovered = [s for s, runs in suite.by_seed.items() if runs.replicas() != set(suite.replica_ids)]
    assert not uncovered, f"seeds that never ran on every replica in {MAX_ROUNDS} rounds: {uncovered}"
    across = [m for m in suite.mismatches if m.kind == "replicas"]
    assert not across, f"{len(across)} seeds differ across replicas; diffs in {suite.report_dir}"
    for runs in suite.by_seed.values():
        reference = suite.reference(runs.seed)
        assert reference.text, f"seed {runs.seed} generated nothing"
        assert reference.tokens_out > 0
    # Every task was pinned to the pool under test and read back through its stream only.
    assert {run.pool_id for runs in suite.by_seed.values() for run in runs.runs} == {POOL_ID}


@pytest.mark.req("OC-TEST-7010")
def test_a_rerun_on_one_replica_repeats_and_the_seed_changes_the_text(suite: SuiteRun) -> None:
    reruns = suite.reruns()
    assert len({first.seed for first, _ in reruns}) >= RERUN_SEEDS
    repeated = [m for m in suite.mismatches if m.kind == "rerun"]
    assert not repeated, f"{len(repeated)} reruns differ on their replica; diffs in {suite.report_dir}"
    assert suite.neighbours_differing() >= MIN_DIFFERING_FRACTION, "the seed does not reach the engine"


@pytest.mark.req("OC-TEST-7014")
def test_the_run_writes_its_report_directory(suite: SuiteRun) -> None:
    report = json.loads((suite.report_dir / "report.json").read_text())
    assert report["config"] == {
        "engine": "llamacpp",
        "engine_version": suite.identity.engine_version,
        "model_digest": suite.identity.model_digest,
        "sampler_profile_version": SAMPLER_PROFILE_VERSION,
        "device_mask": suite.identity.device_mask,
        "hardware": "cpu",
        "seeds": load_seeds(SEEDS_FILE),
    }
    assert [entry["seed"] for entry in report["seeds"]] == load_seeds(SEEDS_FILE)
    runs = [run for entry in report["seeds"] for run in entry["runs"]]
    timings = [(run["decode_time_ms"], run["elapsed_ms"]) for run in runs]
    assert len(timings) == sum(len(runs.runs) for runs in suite.by_seed.values())
    assert all(decode >= 0 and elapsed > 0 for decode, elapsed in timings)
    assert report["summary"]["mismatches"] == len(suite.mismatches)
    diffs = sorted(suite.report_dir.glob("mismatch-*.diff"))
    assert len(diffs) == len(suite.mismatches)
