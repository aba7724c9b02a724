"""The session store with a fake clock: creation, turns, TTL, LRU bound, budgets, affinity, warmth, delete."""

from __future__ import annotations

import msgspec
import pytest
from msgspec import UNSET

from llorch_contracts.api import (
    EngineKind,
    ErrorKind,
    KvHint,
    PoolState,
    PoolStatus,
    Preparation,
    ReplicaState,
    ReplicaStatus,
    SseMetrics,
    TaskRequest,
)
from llorch_contracts.config import SessionsConfig
from llorch_core import AdmissionError
from llorch_dataplane import SessionStore, Usage


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def store(clock: FakeClock, **config: object) -> SessionStore:
    return SessionStore(msgspec.convert(config, SessionsConfig), clock=clock)


def request(session_id: str = "s1", max_tokens: int = 8, kv_hint: KvHint | None = None) -> TaskRequest:
    fields = {"model_ref": "m", "prompt": "hello", "max_tokens": max_tokens, "session_id": session_id}
    if kv_hint is not None:
        fields["kv_hint"] = kv_hint
    return msgspec.convert(fields, TaskRequest)


def admit(sessions: SessionStore, task_id: str, req: TaskRequest, clock: FakeClock) -> None:
    sessions.check(req, clock.now)
    sessions.admit(req, task_id, clock.now)


def refused(sessions: SessionStore, req: TaskRequest, clock: FakeClock) -> AdmissionError:
    with pytest.raises(AdmissionError) as caught:
        sessions.check(req, clock.now)
    return caught.value


def replica(replica_id: str, restarts: int = 0) -> ReplicaStatus:
    return ReplicaStatus(
        replica_id=replica_id,
        endpoint=f"mock://p/{replica_id}",
        engine=EngineKind.mock,
        engine_version="mock:1",
        model_ref="m",
        model_digest=None,
        ctx_max=4096,
        slots_total=1,
        slots_free=1,
        device_mask="cpu",
        state=ReplicaState.ready,
        last_error=None,
        restarts=restarts,
    )


def pool(*replicas: ReplicaStatus) -> PoolStatus:
    return PoolStatus(
        pool_id="p",
        engine=EngineKind.mock,
        model_ref="m",
        model_digest=None,
        live=True,
        ready=True,
        draining=False,
        state=PoolState.ready,
        last_error=None,
        preparation=Preparation(steps=[]),
        replicas=list(replicas),
    )


def no_replica(pool_id: str, replica_id: str) -> ReplicaStatus | None:
    return None


NOTHING = Usage(0, 0, 0)


@pytest.mark.req("OC-CORE-1140")
def test_reading_or_checking_never_creates_a_session() -> None:
    clock = FakeClock()
    sessions = store(clock)
    assert sessions.info("s1", no_replica) is None
    sessions.check(request(), clock.now)
    assert sessions.info("s1", no_replica) is None
    assert len(sessions) == 0
    sessions.admit(request(), "t1", clock.now)
    info = sessions.info("s1", no_replica)
    assert info is not None
    assert info.turns == 1


def test_a_task_without_a_session_touches_nothing() -> None:
    clock = FakeClock()
    sessions = store(clock, max_turns=1)
    plain = TaskRequest(model_ref="m", prompt="hello", max_tokens=8)
    for task_id in ("t1", "t2"):
        admit(sessions, task_id, plain, clock)
    assert len(sessions) == 0


@pytest.mark.req("OC-CORE-1142")
def test_each_admission_is_one_turn_and_the_turn_limit_refuses_with_invalid_params() -> None:
    clock = FakeClock()
    sessions = store(clock, max_turns=2)
    admit(sessions, "t1", request(), clock)
    admit(sessions, "t2", request(), clock)
    error = refused(sessions, request(), clock)
    assert error.kind is ErrorKind.INVALID_PARAMS
    assert "max_turns" in error.message
    info = sessions.info("s1", no_replica)
    assert info is not None
    assert info.turns == 2


@pytest.mark.req("OC-CORE-1141")
def test_ttl_runs_from_the_last_activity_and_an_expired_session_starts_over() -> None:
    clock = FakeClock()
    sessions = store(clock, ttl_ms=10_000)
    admit(sessions, "t1", request(), clock)
    clock.now += 60  # a turn in flight keeps the session live
    assert sessions.info("s1", no_replica) is not None
    sessions.ended("t1", NOTHING)  # the terminal event is activity
    clock.now += 9.5
    info = sessions.info("s1", no_replica)
    assert info is not None
    assert info.ttl_ms_remaining == 500
    clock.now += 0.5
    assert sessions.info("s1", no_replica) is None
    admit(sessions, "t2", request(), clock)
    info = sessions.info("s1", no_replica)
    assert info is not None
    assert info.turns == 1


@pytest.mark.req("OC-CORE-1143")
def test_the_least_recently_active_idle_session_is_evicted_and_a_busy_store_rejects() -> None:
    clock = FakeClock()
    sessions = store(clock, max_sessions=2)
    admit(sessions, "a1", request("a"), clock)
    clock.now += 1
    admit(sessions, "b1", request("b"), clock)
    clock.now += 1
    sessions.ended("a1", NOTHING)  # a is now idle but more recently active than b
    clock.now += 1
    sessions.ended("b1", NOTHING)
    admit(sessions, "c1", request("c"), clock)
    assert sessions.info("a", no_replica) is None
    assert sessions.info("b", no_replica) is not None
    admit(sessions, "b2", request("b"), clock)
    error = refused(sessions, request("d"), clock)
    assert error.kind is ErrorKind.ADMISSION_REJECT
    assert len(sessions) == 2
    admit(sessions, "c2", request("c"), clock)  # an existing session needs no room


@pytest.mark.req("OC-CORE-1144")
def test_a_session_keeps_metadata_but_no_prompt() -> None:
    clock = FakeClock()
    sessions = store(clock)
    secret = "the launch code is 0000"
    req = TaskRequest(model_ref="m", prompt=secret, max_tokens=8, session_id="s1")
    admit(sessions, "t1", req, clock)
    sessions.dispatched("t1", "p", replica("r0"))
    assert secret not in repr(vars(sessions))


@pytest.mark.req("OC-CORE-1146", "OC-CORE-1023")
def test_tokens_reserve_max_tokens_then_charge_engine_tokens() -> None:
    clock = FakeClock()
    sessions = store(clock, budgets={"tokens": 100})
    admit(sessions, "t1", request(max_tokens=60), clock)
    info = sessions.info("s1", no_replica)
    assert info is not None
    assert info.tokens_budget_remaining == 40
    error = refused(sessions, request(max_tokens=50), clock)
    assert error.kind is ErrorKind.INVALID_PARAMS
    assert "sessions.budgets.tokens" in error.message
    sessions.ended("t1", Usage(tokens_in=10, tokens_out=20, running_ms=5))
    info = sessions.info("s1", no_replica)
    assert info is not None
    assert info.tokens_budget_remaining == 70
    admit(sessions, "t2", request(max_tokens=50), clock)


@pytest.mark.req("OC-CORE-1147")
def test_time_budget_caps_the_run_and_refuses_when_spent() -> None:
    clock = FakeClock()
    sessions = store(clock, budgets={"time_ms": 1500})
    admit(sessions, "t1", request(), clock)
    assert sessions.time_remaining_s("t1") == 1.5
    sessions.ended("t1", Usage(1, 2, running_ms=1000))
    admit(sessions, "t2", request(), clock)
    assert sessions.time_remaining_s("t2") == 0.5
    sessions.ended("t2", Usage(1, 2, running_ms=700))
    error = refused(sessions, request(), clock)
    assert error.kind is ErrorKind.INVALID_PARAMS
    assert "sessions.budgets.time_ms" in error.message
    info = sessions.info("s1", no_replica)
    assert info is not None
    assert info.time_budget_remaining_ms == 0


@pytest.mark.req("OC-CORE-1148")
def test_cost_reserves_max_tokens_at_the_rate_and_charges_output_tokens() -> None:
    clock = FakeClock()
    sessions = store(clock, budgets={"cost": 0.01, "cost_per_output_token": 0.0001})
    admit(sessions, "t1", request(max_tokens=60), clock)
    info = sessions.info("s1", no_replica)
    assert info is not None
    assert info.cost_budget_remaining == pytest.approx(0.004)
    error = refused(sessions, request(max_tokens=50), clock)
    assert "sessions.budgets.cost" in error.message
    sessions.ended("t1", Usage(tokens_in=500, tokens_out=20, running_ms=0))
    info = sessions.info("s1", no_replica)
    assert info is not None
    assert info.cost_budget_remaining == pytest.approx(0.008)


@pytest.mark.req("OC-CORE-1024")
def test_only_configured_budgets_are_reported() -> None:
    clock = FakeClock()
    unlimited = store(clock)
    admit(unlimited, "t1", request(), clock)
    frame = SseMetrics(queue_depth=0, on_time_probability=1.0, kv_warmth=False)
    assert unlimited.with_budgets("t1", frame) == frame
    info = unlimited.info("s1", no_replica)
    assert info is not None
    assert (info.tokens_budget_remaining, info.time_budget_remaining_ms, info.cost_budget_remaining) == (
        None,
        None,
        None,
    )
    tokens_only = store(clock, budgets={"tokens": 100})
    admit(tokens_only, "t1", request(max_tokens=10), clock)
    decorated = tokens_only.with_budgets("t1", frame)
    assert decorated.tokens_budget_remaining == 90
    assert decorated.time_budget_remaining_ms is UNSET
    assert decorated.cost_budget_remaining is UNSET


@pytest.mark.req("OC-CORE-1126", "OC-CORE-1013")
def test_warmth_and_preference_follow_the_last_replica_until_it_restarts() -> None:
    clock = FakeClock()
    sessions = store(clock)
    r0, r1 = replica("r0"), replica("r1")
    admit(sessions, "t1", request(), clock)
    assert sessions.preferred_replica("t1", pool(r0, r1)) is None
    assert sessions.dispatched("t1", "p", r1) is False  # the first turn is never warm
    sessions.ended("t1", NOTHING)
    admit(sessions, "t2", request(), clock)
    assert sessions.preferred_replica("t2", pool(r0, r1)) == "r1"
    assert sessions.dispatched("t2", "p", r1) is True
    info = sessions.info("s1", lambda pool_id, replica_id: r1 if replica_id == "r1" else None)
    assert info is not None
    assert info.kv_warmth is True
    admit(sessions, "t3", request(), clock)
    assert sessions.dispatched("t3", "p", r0) is False  # another replica holds no KV of this session
    admit(sessions, "t4", request(kv_hint=KvHint.cold), clock)
    assert sessions.preferred_replica("t4", pool(r0, r1)) is None
    assert sessions.dispatched("t4", "p", r0) is False  # cold asks for a fresh cache
    restarted = replica("r0", restarts=1)
    admit(sessions, "t5", request(), clock)
    assert sessions.preferred_replica("t5", pool(restarted, r1)) is None
    assert sessions.dispatched("t5", "p", restarted) is False
    info = sessions.info("s1", lambda pool_id, replica_id: replica("r0", restarts=2))
    assert info is not None
    assert info.kv_warmth is False


@pytest.mark.req("OC-CORE-1145")
def test_delete_drops_state_and_old_tasks_never_charge_the_next_session() -> None:
    clock = FakeClock()
    sessions = store(clock, budgets={"tokens": 100})
    admit(sessions, "t1", request(max_tokens=60), clock)
    sessions.dispatched("t1", "p", replica("r0"))
    assert sessions.delete("s1") is True
    assert sessions.info("s1", no_replica) is None
    assert sessions.delete("s1") is False
    assert sessions.time_remaining_s("t1") is None
    sessions.ended("t1", Usage(10, 60, 5))  # the running task ends normally, charging nobody
    assert sessions.info("s1", no_replica) is None
    admit(sessions, "t2", request(max_tokens=100), clock)
    info = sessions.info("s1", no_replica)
    assert info is not None
    assert (info.turns, info.tokens_budget_remaining, info.kv_warmth) == (1, 0, False)
    assert sessions.preferred_replica("t2", pool(replica("r0"))) is None
