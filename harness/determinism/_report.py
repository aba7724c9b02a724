"""The determinism identity of a replica set and the report directory of a run (OC-TEST-7014)."""

from __future__ import annotations

import difflib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ._runs import Run, SeedRuns


@dataclass(frozen=True)
class Identity:
    """What must be equal on every replica of a set for a seed to mean the same bytes (OC-TEST-7002)."""

    engine: str
    engine_version: str
    model_digest: str
    sampler_profile_version: str
    device_mask: str

    @property
    def hardware(self) -> str:
        """`cpu` or `gpu`: every run says which it ran on."""
        return "cpu" if self.device_mask == "cpu" else "gpu"


@dataclass(frozen=True)
class Mismatch:
    """Two runs of one seed that should have been identical."""

    seed: int
    kind: str  # "replicas" or "rerun"
    left: Run
    right: Run

    def diff(self) -> str:
        left = [f"{field}: {value!r}\n" for field, value in asdict(self.left).items()]
        right = [f"{field}: {value!r}\n" for field, value in asdict(self.right).items()]
        return "".join(difflib.unified_diff(left, right, self.left.task_id, self.right.task_id))


def write_report(
    directory: Path,
    *,
    identity: Identity,
    by_seed: dict[int, SeedRuns],
    mismatches: list[Mismatch],
    summary: dict[str, Any],
) -> Path:
    """`report.json` (configuration, every run per seed with its timings, summary) and a diff per mismatch."""
    directory.mkdir(parents=True, exist_ok=True)
    report = {
        "config": {**asdict(identity), "hardware": identity.hardware, "seeds": list(by_seed)},
        "seeds": [
            {"seed": seed, "runs": [asdict(run) for run in runs.runs]} for seed, runs in by_seed.items()
        ],
        "summary": summary,
    }
    (directory / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    for number, mismatch in enumerate(mismatches):
        (directory / f"mismatch-{number:03d}-seed-{mismatch.seed}-{mismatch.kind}.diff").write_text(
            mismatch.diff()
        )
    return directory
