"""A pool's preparation steps as the verbose `prep` map of metrics events (OC-CTRL-2023)."""

from __future__ import annotations

from llorch_contracts.api import PoolStatus, PreparationProgress


def prep_of(pool: PoolStatus | None) -> dict[str, PreparationProgress] | None:
    """Progress per preparation step id while the pool prepares; None when there is nothing to report."""
    if pool is None or not pool.preparation.steps:
        return None
    return {
        step.id: PreparationProgress(
            status=step.status,
            pct=step.pct,
            phase=step.phase,
            bytes_done=step.bytes_done,
            bytes_total=step.bytes_total,
            human=step.description[:512],
        )
        for step in pool.preparation.steps
    }
