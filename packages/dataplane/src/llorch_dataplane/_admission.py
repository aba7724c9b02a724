"""Checks a request must pass before it may be queued (OC-CORE-1125: validation, then guardrails)."""

from __future__ import annotations

from msgspec import UNSET

from llorch_contracts.api import ErrorKind, PoolStatus, ReplicaState, TaskRequest, Workload
from llorch_core import AdmissionError

from ._settings import DataPlaneSettings


def _invalid(message: str) -> AdmissionError:
    return AdmissionError(ErrorKind.INVALID_PARAMS, message)


def check_request(request: TaskRequest, settings: DataPlaneSettings) -> None:
    """What the contract's types cannot say: served workloads and configured limits."""
    if request.workload != Workload.completion:
        raise _invalid(f"workload: {request.workload} is not served yet; only completion is")
    if not request.prompt:
        raise _invalid("prompt: must not be empty")
    if len(request.prompt.encode()) > settings.max_prompt_bytes:
        raise _invalid(
            f"prompt: longer than orchestratord.admission.max_prompt_bytes ({settings.max_prompt_bytes})"
        )
    if request.max_tokens > settings.max_tokens_limit:
        raise _invalid(f"max_tokens: {request.max_tokens} is above the limit of {settings.max_tokens_limit}")


def context_limit(pool: PoolStatus | None) -> int | None:
    """The per-request context the pool's Ready replicas report (OC-CORE-1015), None when none is Ready."""
    if pool is None:
        return None
    limits = [r.ctx_max for r in pool.replicas if r.state == ReplicaState.ready]
    return min(limits) if limits else None


def guard_context(request: TaskRequest, pool: PoolStatus | None) -> None:
    """Refuse what cannot fit in the engine's context before it is queued (OC-CORE-1020/1021)."""
    limit = context_limit(pool)
    if limit is None:
        return
    if request.ctx is not UNSET and request.ctx > limit:
        raise _invalid(f"ctx: {request.ctx} is above the pool's context of {limit} tokens")
    if request.max_tokens >= limit:
        raise _invalid(f"max_tokens: {request.max_tokens} does not fit the pool's context of {limit} tokens")
