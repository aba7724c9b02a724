"""Data-plane settings, read once from the config (house style: nothing else reads it)."""

from __future__ import annotations

from dataclasses import dataclass

from msgspec import UNSET

from llorch_contracts.api import QueueFullPolicy
from llorch_contracts.config import LlorchConfig, PoolConfig


@dataclass(frozen=True, kw_only=True)
class QueueSettings:
    capacity: int
    policy: QueueFullPolicy


@dataclass(frozen=True, kw_only=True)
class DataPlaneSettings:
    """Limits and timings of admission, dispatch and streaming."""

    queues: dict[str, QueueSettings]
    batch_aging_s: float
    max_tokens_limit: int
    max_prompt_bytes: int
    first_token_timeout_s: float
    idle_timeout_s: float
    wall_timeout_s: float
    keepalive_s: float
    metrics_interval_s: float
    retain_s: float
    max_events_per_task: int
    retain_max_tasks: int
    retain_max_bytes: int
    pool_unavailable_s: float

    @classmethod
    def from_config(cls, config: LlorchConfig) -> DataPlaneSettings:
        orch = config.orchestratord
        return cls(
            queues={pool.id: _queue(config, pool) for pool in config.pools},
            batch_aging_s=orch.admission.batch_aging_ms / 1000,
            max_tokens_limit=orch.admission.max_tokens_limit,
            max_prompt_bytes=orch.admission.max_prompt_bytes,
            first_token_timeout_s=orch.timeouts.first_token_ms / 1000,
            idle_timeout_s=orch.timeouts.idle_ms / 1000,
            wall_timeout_s=orch.timeouts.wall_ms / 1000,
            keepalive_s=orch.sse.keepalive_ms / 1000,
            metrics_interval_s=orch.sse.metrics_interval_ms / 1000,
            retain_s=orch.sse.retain_ms / 1000,
            max_events_per_task=orch.sse.max_events_per_task,
            retain_max_tasks=orch.sse.retain_max_tasks,
            retain_max_bytes=orch.sse.retain_max_bytes,
            pool_unavailable_s=orch.timeouts.pool_unavailable_ms / 1000,
        )


def _queue(config: LlorchConfig, pool: PoolConfig) -> QueueSettings:
    """The pool's queue override, falling back to `orchestratord.queue` key by key."""
    base = config.orchestratord.queue
    override = pool.queue
    capacity = base.capacity if override is UNSET or override.capacity is UNSET else override.capacity
    policy = base.full_policy if override is UNSET or override.full_policy is UNSET else override.full_policy
    return QueueSettings(capacity=capacity, policy=QueueFullPolicy(str(policy)))
