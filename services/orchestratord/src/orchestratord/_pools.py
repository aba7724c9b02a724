"""Pools whose engine runs inside orchestratord: the mock engine (OC-ADAPT-5600)."""

from __future__ import annotations

from llorch_contracts.api import EngineKind, PoolState, PoolStatus, Preparation, ReplicaState, ReplicaStatus
from llorch_contracts.config import EngineKind as ConfigEngineKind
from llorch_contracts.config import PoolConfig

MOCK_VERSION = "mock:1"


def is_local(pool: PoolConfig) -> bool:
    return pool.engine.kind == ConfigEngineKind.mock


def mock_pool_status(pool: PoolConfig) -> PoolStatus:
    """A Ready pool of in-process mock replicas, `mock://<pool>/r<i>`."""
    replicas = [
        ReplicaStatus(
            replica_id=f"{pool.id}-r{index}",
            endpoint=f"mock://{pool.id}/r{index}",
            engine=EngineKind.mock,
            engine_version=MOCK_VERSION,
            model_ref=pool.model.ref,
            model_digest=None,
            ctx_max=pool.ctx_max,
            slots_total=pool.slots_per_replica,
            slots_free=pool.slots_per_replica,
            device_mask="cpu",
            state=ReplicaState.ready,
            last_error=None,
            restarts=0,
        )
        for index in range(pool.replicas)
    ]
    return PoolStatus(
        pool_id=pool.id,
        engine=EngineKind.mock,
        model_ref=pool.model.ref,
        model_digest=None,
        live=True,
        ready=True,
        draining=False,
        state=PoolState.ready,
        last_error=None,
        preparation=Preparation(steps=[]),
        replicas=replicas,
    )
