"""Pool and replica choice over hand-built pool views."""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec import UNSET

from llorch_contracts.api import (
    EngineKind,
    ErrorKind,
    Placement,
    PlacementMode,
    PoolState,
    PoolStatus,
    Preparation,
    ReplicaState,
    ReplicaStatus,
    Workload,
)
from llorch_core import AdmissionError, choose_pool, choose_replica

GIB = 1 << 30


def replica(
    replica_id: str,
    *,
    state: ReplicaState = ReplicaState.ready,
    slots: int = 2,
    ctx_max: int = 4096,
    free_gib: int | None = None,
) -> ReplicaStatus:
    return ReplicaStatus(
        ctx_max=ctx_max,
        device_mask="0",
        endpoint="http://127.0.0.1:9000",
        engine=EngineKind.llamacpp,
        engine_version=None,
        last_error=None,
        model_digest=None,
        model_ref="m",
        replica_id=replica_id,
        restarts=0,
        slots_free=slots,
        slots_total=slots,
        state=state,
        vram_total_bytes=UNSET if free_gib is None else 24 * GIB,
        vram_used_bytes=UNSET if free_gib is None else (24 - free_gib) * GIB,
    )


def pool(
    pool_id: str,
    *,
    model_ref: str = "m",
    engine: EngineKind = EngineKind.llamacpp,
    state: PoolState = PoolState.ready,
    replicas: Sequence[ReplicaStatus] | None = None,
) -> PoolStatus:
    reps = list(replicas) if replicas is not None else [replica(f"{pool_id}-r0")]
    return PoolStatus(
        draining=state is PoolState.draining,
        engine=engine,
        last_error=None,
        live=True,
        model_digest=None,
        model_ref=model_ref,
        pool_id=pool_id,
        preparation=Preparation(steps=[]),
        ready=state is PoolState.ready and any(r.state is ReplicaState.ready for r in reps),
        replicas=reps,
        state=state,
    )


def place(
    pools: Sequence[PoolStatus],
    placement: Placement | None = None,
    *,
    model_ref: str = "m",
    engine: EngineKind | None = None,
    ctx: int | None = None,
    starts: Mapping[str, float] | None = None,
    served: Mapping[str, Collection[str]] | None = None,
) -> str:
    return choose_pool(
        placement,
        model_ref,
        engine=engine,
        ctx=ctx,
        pools=pools,
        predicted_start_ms_by_pool=starts if starts is not None else {p.pool_id: 0 for p in pools},
        served_refs_by_pool=served or {},
    )


def refusal(pools: Sequence[PoolStatus], placement: Placement | None = None, **kw: object) -> AdmissionError:
    with pytest.raises(AdmissionError) as caught:
        place(pools, placement, **kw)  # type: ignore[arg-type]
    return caught.value


@pytest.mark.req("OC-CORE-1120")
def test_auto_takes_the_earliest_start_then_vram_then_pool_id() -> None:
    a = pool("a", replicas=[replica("a0", free_gib=4)])
    b = pool("b", replicas=[replica("b0", free_gib=8)])
    c = pool("c", replicas=[replica("c0")])
    assert place([a, b, c], starts={"a": 100, "b": 200, "c": 300}) == "a"
    assert place([a, b, c], starts={"a": 100, "b": 100, "c": 100}) == "b"
    assert place([c, a], starts={"a": 100, "c": 100}) == "a"  # unknown VRAM after known
    assert place([pool("z"), pool("y")], starts={"z": 5, "y": 5}) == "y"
    assert place([a, b], starts={"b": 10_000}) == "b"  # a pool with no prediction sorts last


@pytest.mark.req("OC-CORE-1016", "OC-CORE-1020")
def test_candidates_must_serve_the_model_engine_workload_and_context() -> None:
    vllm = pool("v", engine=EngineKind.vllm, replicas=[replica("v0", ctx_max=32768)])
    small = pool("s", replicas=[replica("s0", ctx_max=2048)])
    other = pool("o", model_ref="other")
    assert place([vllm, small, other], engine=EngineKind.llamacpp, starts={"v": 0, "s": 999}) == "s"
    assert place([vllm, small, other], ctx=4096, starts={"v": 999, "s": 0}) == "v"
    error = refusal([vllm, small], engine=EngineKind.llamacpp, ctx=4096)
    assert error.kind is ErrorKind.INVALID_PARAMS
    assert "s offers a context of 2048" in error.message
    assert "v runs engine vllm" in error.message
    chosen = choose_pool(
        None,
        "m",
        engine=None,
        ctx=None,
        pools=[vllm, small],
        predicted_start_ms_by_pool={"v": 0, "s": 10},
        served_refs_by_pool={},
        workload=Workload.embedding,
        workloads_by_pool={"v": [Workload.completion], "s": [Workload.completion, Workload.embedding]},
    )
    assert chosen == "s"


@pytest.mark.req("OC-CORE-1015", "OC-CORE-1014")
def test_only_ready_replicas_report_the_context_and_unknown_never_excludes() -> None:
    # The starting replica's ctx_max is the configured hint, not the engine's report.
    loading = pool(
        "l", state=PoolState.loading, replicas=[replica("l0", state=ReplicaState.starting, ctx_max=512)]
    )
    assert place([loading], ctx=8192) == "l"
    ready = pool(
        "r", replicas=[replica("r0", ctx_max=512), replica("r1", state=ReplicaState.starting, ctx_max=8192)]
    )
    assert refusal([ready], ctx=1024).kind is ErrorKind.INVALID_PARAMS


@pytest.mark.req("OC-CORE-1016")
def test_avoided_draining_and_stopped_pools_are_not_candidates() -> None:
    pools = [pool("a"), pool("b", state=PoolState.draining), pool("c", state=PoolState.stopped), pool("d")]
    assert place(pools, Placement(avoid_pools=["a"]), starts={"a": 0, "b": 0, "c": 0, "d": 50}) == "d"


@pytest.mark.req("OC-CORE-1122")
def test_refusals_when_no_pool_can_serve_the_model() -> None:
    pools = [pool("a", model_ref="hf:org/x"), pool("b", model_ref="hf:org/y")]
    error = refusal(pools, model_ref="hf:org/z", served={"b": ["y-alias"]})
    assert error.kind is ErrorKind.INVALID_PARAMS
    assert "hf:org/z" in error.message
    assert "hf:org/x, hf:org/y, y-alias" in error.message
    assert place(pools, model_ref="y-alias", served={"b": ["y-alias"]}) == "b"

    failed = [pool("a", state=PoolState.unready), pool("b", state=PoolState.unready)]
    error = refusal(failed)
    assert (error.kind, "a, b" in error.message) == (ErrorKind.POOL_UNREADY, True)

    closed = [pool("a", state=PoolState.draining), pool("b", state=PoolState.stopped)]
    error = refusal(closed)
    assert (error.kind, "a, b" in error.message) == (ErrorKind.POOL_UNAVAILABLE, True)

    assert refusal([pool("a", state=PoolState.draining), pool("b", state=PoolState.unready)]).kind is (
        ErrorKind.POOL_UNREADY
    )


@pytest.mark.req("OC-CORE-1121")
def test_prefer_takes_listed_pools_first_in_list_order_on_ties() -> None:
    pools = [pool("a"), pool("b"), pool("c")]
    prefer = Placement(mode=PlacementMode.prefer, prefer_pools=["c", "b"])
    assert place(pools, prefer, starts={"a": 0, "b": 500, "c": 500}) == "c"
    assert place(pools, prefer, starts={"a": 0, "b": 400, "c": 500}) == "b"
    only_missing = Placement(mode=PlacementMode.prefer, prefer_pools=["x"])
    assert place(pools, only_missing, starts={"a": 9, "b": 1, "c": 5}) == "b"
    strict = Placement(mode=PlacementMode.prefer, prefer_pools=["x"], allow_fallback=False)
    error = refusal(pools, strict)
    assert error.kind is ErrorKind.POOL_UNAVAILABLE
    assert "x" in error.message
    draining_pref = Placement(mode=PlacementMode.prefer, prefer_pools=["d"], allow_fallback=False)
    assert (
        refusal([*pools, pool("d", state=PoolState.draining)], draining_pref).kind
        is ErrorKind.POOL_UNAVAILABLE
    )


@pytest.mark.req("OC-CORE-1018", "OC-CORE-1019")
def test_pin_places_on_that_pool_only_and_never_falls_back() -> None:
    busy, idle = pool("busy"), pool("idle")
    pin = Placement(mode=PlacementMode.pin, pin_pool_id="busy", allow_fallback=True)
    assert place([busy, idle], pin, starts={"busy": 10**6, "idle": 0}) == "busy"
    loading = pool("busy", state=PoolState.provisioning, replicas=[])
    assert place([loading, idle], pin) == "busy"

    def kind(pools: list[PoolStatus], placement: Placement, **kw: object) -> ErrorKind:
        return refusal(pools, placement, **kw).kind

    assert kind([idle], pin) is ErrorKind.INVALID_PARAMS
    assert kind([pool("busy", model_ref="other"), idle], pin) is ErrorKind.INVALID_PARAMS
    avoid = Placement(mode=PlacementMode.pin, pin_pool_id="busy", avoid_pools=["busy"])
    assert kind([busy, idle], avoid) is ErrorKind.INVALID_PARAMS
    assert kind([busy, idle], Placement(mode=PlacementMode.pin)) is ErrorKind.INVALID_PARAMS
    for state in (PoolState.unready, PoolState.draining, PoolState.stopped):
        assert kind([pool("busy", state=state), idle], pin) is ErrorKind.POOL_UNREADY
    other = refusal([pool("busy", model_ref="other"), idle], pin)
    assert "busy" in other.message
    assert "other" in other.message


@pytest.mark.req("OC-CORE-1010", "OC-CORE-1012", "OC-CORE-1017")
def test_replica_order_is_free_vram_then_load_then_id() -> None:
    reps = [
        replica("r3"),
        replica("r2", free_gib=4),
        replica("r1", free_gib=8),
        replica("r0", free_gib=8),
        replica("rs", state=ReplicaState.starting, free_gib=20),
        replica("rd", state=ReplicaState.draining, free_gib=20),
    ]
    p = pool("p", replicas=reps)
    assert chosen_id(p, {}) == "r0"
    assert chosen_id(p, {"r0": 1}) == "r1"  # same VRAM: fewer active first
    assert chosen_id(p, {"r0": 2, "r1": 2}) == "r2"  # both full
    assert chosen_id(p, {"r0": 2, "r1": 2, "r2": 2}) == "r3"  # unknown VRAM last
    assert chosen_id(p, {"r0": 2, "r1": 2, "r2": 2, "r3": 2}) is None
    assert chosen_id(pool("p", state=PoolState.draining, replicas=reps), {}) is None


@pytest.mark.req("OC-CORE-1013")
def test_the_sessions_previous_replica_comes_first_when_eligible() -> None:
    p = pool("p", replicas=[replica("a", free_gib=8), replica("b", free_gib=1, slots=1)])
    assert chosen_id(p, {}, preferred="b") == "b"
    assert chosen_id(p, {"b": 1}, preferred="b") == "a"
    assert chosen_id(p, {}, preferred="gone") == "a"


def chosen_id(p: PoolStatus, active: dict[str, int], preferred: str | None = None) -> str | None:
    chosen = choose_replica(p, active, preferred)
    return None if chosen is None else chosen.replica_id


pool_views = st.lists(
    st.builds(
        lambda i, state, engine, ref, free: pool(
            f"p{i}", state=state, engine=engine, model_ref=ref, replicas=[replica(f"p{i}-r0", free_gib=free)]
        ),
        st.integers(0, 9),
        st.sampled_from(list(PoolState)),
        st.sampled_from([EngineKind.llamacpp, EngineKind.vllm]),
        st.sampled_from(["m", "n"]),
        st.one_of(st.none(), st.integers(0, 24)),
    ),
    max_size=6,
    unique_by=lambda p: p.pool_id,
)


@pytest.mark.req("OC-CORE-1123", "OC-CORE-1120")
@given(pool_views, st.data())
def test_placement_is_pure_and_order_independent(pools: list[PoolStatus], data: st.DataObject) -> None:
    starts = {p.pool_id: data.draw(st.integers(0, 3)) for p in pools}
    shuffled = data.draw(st.permutations(pools))

    def outcome(view: Sequence[PoolStatus]) -> str | ErrorKind:
        try:
            return place(view, starts=starts)
        except AdmissionError as error:
            return error.kind

    first = outcome(pools)
    assert outcome(pools) == first
    assert outcome(shuffled) == first
    if not isinstance(first, ErrorKind):
        winner = next(p for p in pools if p.pool_id == first)
        assert winner.model_ref == "m"
        assert winner.ready or winner.state in (PoolState.provisioning, PoolState.loading)
        assert not winner.draining
        # No candidate has an earlier predicted start than the winner.
        for p in pools:
            if p.model_ref == "m" and (p.ready or p.state in (PoolState.provisioning, PoolState.loading)):
                assert starts[p.pool_id] >= starts[first]


@pytest.mark.req("OC-CORE-1017", "OC-CORE-1123")
@given(
    st.lists(st.tuples(st.one_of(st.none(), st.integers(0, 3)), st.integers(0, 2)), min_size=1, max_size=6),
    st.randoms(use_true_random=False),
)
def test_replica_choice_is_the_minimum_of_the_tuple_sort(
    specs: list[tuple[int | None, int]], rng: random.Random
) -> None:
    reps = [replica(f"r{i}", free_gib=free, slots=2) for i, (free, _) in enumerate(specs)]
    active = {f"r{i}": n for i, (_, n) in enumerate(specs)}
    shuffled = list(reps)
    rng.shuffle(shuffled)
    chosen = choose_replica(pool("p", replicas=reps), active, None)
    assert chosen == choose_replica(pool("p", replicas=shuffled), active, None)
    eligible = [r for r in reps if active[r.replica_id] < 2]
    if not eligible:
        assert chosen is None
        return
    assert chosen is not None

    def key(r: ReplicaStatus) -> tuple[bool, int, int, str]:
        free = specs[int(r.replica_id[1:])][0]
        return (free is None, -(free or 0), active[r.replica_id], r.replica_id)

    assert key(chosen) == min(key(r) for r in eligible)
