"""Pure placement: which pool takes a task, and which replica of that pool runs it next."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence

import msgspec
from msgspec import UNSET

from llorch_contracts.api import (
    EngineKind,
    Placement,
    PlacementMode,
    PoolState,
    PoolStatus,
    ReplicaState,
    ReplicaStatus,
    Workload,
)

from ._errors import InvalidParamsError, PoolUnavailableError, PoolUnreadyError

_PREPARING = frozenset({PoolState.provisioning, PoolState.loading})
_CLOSED = frozenset({PoolState.draining, PoolState.stopped})


def free_vram_bytes(replica: ReplicaStatus) -> int | None:
    """A replica's free VRAM, or None when the pool view cannot tell (OC-CORE-1014: never guessed)."""
    if replica.vram_total_bytes is UNSET or replica.vram_used_bytes is UNSET:
        return None
    return max(0, replica.vram_total_bytes - replica.vram_used_bytes)


def _vram_key(free: int | None) -> tuple[int, int]:
    # OC-CORE-1017: most free VRAM first, unknown after every known value.
    return (1, 0) if free is None else (0, -free)


def choose_replica(
    pool: PoolStatus, active_by_replica: Mapping[str, int], preferred_replica: str | None = None
) -> ReplicaStatus | None:
    """The replica that should run the pool's next task, or None when none can take one now.

    Eligible replicas are Ready in a pool that is not draining (OC-CORE-1010) and have a free slot,
    `slots_total − active > 0`, with `active` the tasks this orchestrator runs there (OC-CORE-1117).
    The session's previous replica comes first when eligible (OC-CORE-1013; the caller passes None once it
    restarted); otherwise the order is (free VRAM desc, unknown last; active asc; replica_id asc)
    (OC-CORE-1012, OC-CORE-1017).
    """
    if pool.draining or pool.state in _CLOSED:
        return None
    eligible = [
        r
        for r in pool.replicas
        if r.state is ReplicaState.ready and r.slots_total - active_by_replica.get(r.replica_id, 0) > 0
    ]
    for replica in eligible:
        if replica.replica_id == preferred_replica:
            return replica
    if not eligible:
        return None
    return min(
        eligible,
        key=lambda r: (_vram_key(free_vram_bytes(r)), active_by_replica.get(r.replica_id, 0), r.replica_id),
    )


def _ctx_max(pool: PoolStatus) -> int | None:
    # OC-CORE-1015: only a loaded (Ready) replica's ctx_max is what the engine reports; before that the
    # pool's context is unknown and must not exclude it (OC-CORE-1014).
    reported = [r.ctx_max for r in pool.replicas if r.state is ReplicaState.ready]
    return max(reported) if reported else None


def _best_free_vram(pool: PoolStatus) -> int | None:
    known = [
        v for r in pool.replicas if r.state is ReplicaState.ready if (v := free_vram_bytes(r)) is not None
    ]
    return max(known) if known else None


def _names(pools: Collection[PoolStatus]) -> str:
    return ", ".join(sorted(p.pool_id for p in pools))


class _Fit(msgspec.Struct, frozen=True, kw_only=True):
    """The request's static needs of a pool (OC-CORE-1016, OC-CORE-1020): no state change meets them."""

    model_ref: str
    engine: EngineKind | None
    ctx: int | None
    workload: Workload | None
    workloads_by_pool: Mapping[str, Collection[Workload]] | None
    served_refs_by_pool: Mapping[str, Collection[str]]

    def serves(self, pool: PoolStatus) -> bool:
        return self.model_ref == pool.model_ref or self.model_ref in self.served_refs_by_pool.get(
            pool.pool_id, ()
        )

    def served_refs(self, pool: PoolStatus) -> list[str]:
        return sorted({pool.model_ref, *self.served_refs_by_pool.get(pool.pool_id, ())})

    def mismatch(self, pool: PoolStatus) -> str | None:
        """Why the pool cannot take the request whatever its state, or None when it can."""
        if self.engine is not None and pool.engine is not self.engine:
            return f"pool {pool.pool_id} runs engine {pool.engine.value}, not {self.engine.value}"
        if (
            self.workload is not None
            and self.workloads_by_pool is not None
            and self.workload not in self.workloads_by_pool.get(pool.pool_id, ())
        ):
            return f"pool {pool.pool_id} does not support workload {self.workload.value}"
        pool_ctx = _ctx_max(pool)
        if self.ctx is not None and pool_ctx is not None and self.ctx > pool_ctx:
            return f"pool {pool.pool_id} offers a context of {pool_ctx}, less than the requested {self.ctx}"
        return None


def choose_pool(
    request_placement: Placement | None,
    model_ref: str,
    *,
    engine: EngineKind | None,
    ctx: int | None,
    pools: Sequence[PoolStatus],
    predicted_start_ms_by_pool: Mapping[str, float],
    served_refs_by_pool: Mapping[str, Collection[str]],
    workload: Workload | None = None,
    workloads_by_pool: Mapping[str, Collection[Workload]] | None = None,
) -> str:
    """The pool that takes a task; a pure function of its arguments (OC-CORE-1123).

    A pool serves its own `model_ref` plus any references in `served_refs_by_pool[pool_id]` (catalog
    aliases). A pool missing from `predicted_start_ms_by_pool` sorts after every predicted one. When
    `workloads_by_pool` is given, a pool missing from it supports no workload. A pool's context is the
    largest `ctx_max` of its Ready replicas, and unknown (so not limiting) before one is Ready.

    Raises `InvalidParamsError`, `PoolUnreadyError` or `PoolUnavailableError` with a message naming the
    pools and the served model references (OC-CORE-1016, -1018, -1019, -1020, -1121, -1122).
    """
    placement = request_placement if request_placement is not None else Placement()
    avoid = frozenset(placement.avoid_pools) if placement.avoid_pools is not UNSET else frozenset()
    fit = _Fit(
        model_ref=model_ref,
        engine=engine,
        ctx=ctx,
        workload=workload,
        workloads_by_pool=workloads_by_pool,
        served_refs_by_pool=served_refs_by_pool,
    )
    if placement.mode is PlacementMode.pin:
        return _pin(placement, pools, avoid, fit)
    candidates = _candidates(pools, avoid, fit)

    def start(pool: PoolStatus) -> float:
        return predicted_start_ms_by_pool.get(pool.pool_id, math.inf)

    if placement.mode is PlacementMode.prefer:
        rank: dict[str, int] = {}
        for i, pool_id in enumerate(placement.prefer_pools or ()):
            rank.setdefault(pool_id, i)
        preferred = [p for p in candidates if p.pool_id in rank]
        if preferred:
            # OC-CORE-1121: preferred pools win; the earliest prediction among them, list order on ties.
            return min(preferred, key=lambda p: (start(p), rank[p.pool_id])).pool_id
        if not placement.allow_fallback:
            raise PoolUnavailableError(
                f"none of the preferred pools ({', '.join(rank) or 'none'}) can take {model_ref!r} and "
                f"allow_fallback is false; candidates: {_names(candidates)}"
            )
    # OC-CORE-1120: earliest predicted start, then most free VRAM on the best replica, then pool_id.
    return min(candidates, key=lambda p: (start(p), _vram_key(_best_free_vram(p)), p.pool_id)).pool_id


def _candidates(pools: Sequence[PoolStatus], avoid: Collection[str], fit: _Fit) -> list[PoolStatus]:
    # The funnel of OC-CORE-1016; the first stage that empties decides the error (OC-CORE-1122).
    serving = [p for p in pools if fit.serves(p)]
    if not serving:
        served = sorted({r for p in pools for r in fit.served_refs(p)})
        raise InvalidParamsError(
            f"no configured pool serves model {fit.model_ref!r}; served models: {', '.join(served) or 'none'}"
        )
    fitting = [p for p in serving if fit.mismatch(p) is None]
    if not fitting:
        reasons = "; ".join(r for p in serving if (r := fit.mismatch(p)) is not None)
        raise InvalidParamsError(f"no pool serving {fit.model_ref!r} can take the request: {reasons}")
    allowed = [p for p in fitting if p.pool_id not in avoid]
    if not allowed:
        raise PoolUnavailableError(
            f"every pool serving {fit.model_ref!r} is in avoid_pools: {_names(fitting)}"
        )
    open_pools = [p for p in allowed if not p.draining and p.state not in _CLOSED]
    if not open_pools:
        raise PoolUnavailableError(
            f"every pool serving {fit.model_ref!r} is draining or stopped: {_names(allowed)}"
        )
    candidates = [p for p in open_pools if p.ready or p.state in _PREPARING]
    if not candidates:
        raise PoolUnreadyError(
            f"no pool serving {fit.model_ref!r} is ready or preparing: {_names(open_pools)}"
        )
    return candidates


def _pin(placement: Placement, pools: Sequence[PoolStatus], avoid: Collection[str], fit: _Fit) -> str:
    # OC-CORE-1018/1019: only the pinned pool is considered, and a pin never falls back.
    if placement.pin_pool_id is UNSET:
        raise InvalidParamsError("placement mode pin requires pin_pool_id")
    pool_id = placement.pin_pool_id
    pool = next((p for p in pools if p.pool_id == pool_id), None)
    if pool is None:
        raise InvalidParamsError(f"pinned pool {pool_id} is not configured; pools: {_names(pools) or 'none'}")
    if not fit.serves(pool):
        served = ", ".join(fit.served_refs(pool))
        raise InvalidParamsError(
            f"pinned pool {pool_id} does not serve {fit.model_ref!r}; it serves: {served}"
        )
    if pool_id in avoid:
        raise InvalidParamsError(f"pinned pool {pool_id} is also listed in avoid_pools")
    if (reason := fit.mismatch(pool)) is not None:
        raise InvalidParamsError(reason)
    if not (pool.ready or (pool.state in _PREPARING and not pool.draining)):
        raise PoolUnreadyError(f"pinned pool {pool_id} is {pool.state.value}, neither ready nor preparing")
    return pool_id
