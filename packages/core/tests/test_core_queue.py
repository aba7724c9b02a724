"""The per-pool queue against a direct reading of the spec's dequeue and full-queue rules."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llorch_contracts.api import ErrorKind, Priority, QueueFullPolicy
from llorch_contracts.config import AdmissionConfig, QueueConfig
from llorch_contracts.config import QueueFullPolicy as ConfigQueueFullPolicy
from llorch_core import PoolQueue, QueueFullError

INTER, BATCH = Priority.interactive, Priority.batch


@dataclass
class Model:
    """The spec's rules written as plainly as possible: a list scanned in full at every step."""

    capacity: int
    policy: QueueFullPolicy
    aging_s: float
    items: list[tuple[str, Priority, float, int]] = field(default_factory=list)
    seq: int = 0

    def aged(self, t: float, now: float) -> bool:
        return self.aging_s > 0 and now - t >= self.aging_s

    def ordered(self, now: float) -> list[str]:
        rest, out = list(self.items), []
        while rest:
            # OC-CORE-1004 read literally.
            eligible = [e for e in rest if e[1] is INTER or self.aged(e[2], now)]
            pool = eligible or [e for e in rest if e[1] is BATCH]
            first = min(pool, key=lambda e: (e[2], e[3]))
            rest.remove(first)
            out.append(first[0])
        return out

    def victim(self, priority: Priority) -> str | None:
        # OC-CORE-1105: the oldest task of the lowest class not above the arrival's own.
        for cls in [BATCH] if priority is BATCH else [BATCH, INTER]:
            of_class = [e for e in self.items if e[1] is cls]
            if of_class:
                return min(of_class, key=lambda e: (e[2], e[3]))[0]
        return None


Config = tuple[int, QueueFullPolicy, float]
Script = list[tuple[str, object, float]]
ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("enq"), st.sampled_from([INTER, BATCH]), st.sampled_from([0.0, 0.0, 0.4, 1.0, 2.5])
        ),
        st.tuples(st.just("pop"), st.just(INTER), st.sampled_from([0.0, 0.4, 1.0])),
        st.tuples(st.just("rem"), st.integers(0, 40), st.just(0.0)),
    ),
    max_size=60,
)
configs = st.tuples(
    st.integers(1, 6), st.sampled_from(list(QueueFullPolicy)), st.sampled_from([0.0, 1.0, 2.0])
)


@dataclass
class Trace:
    enqueued: list[tuple[str, Priority]] = field(default_factory=list)
    popped: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    evicted: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    #: For each pop of a batch task: whether an interactive task was queued at that moment.
    batch_pops_with_interactive_waiting: int = 0


def run(config: Config, script: Script) -> Trace:
    """Drive the queue and the model side by side, checking after every step that they agree."""
    capacity, policy, aging = config
    queue, model, trace = PoolQueue(capacity, policy, aging), Model(capacity, policy, aging), Trace()
    now, n = 0.0, 0
    for op, arg, dt in script:
        now += dt
        if op == "enq":
            assert isinstance(arg, Priority)
            task_id, n = f"t{n}", n + 1
            before = (queue.ordered(now), queue.depth(INTER), queue.depth(BATCH))
            refusal: QueueFullError | None = None
            try:
                result = queue.enqueue(task_id, arg, now)
            except QueueFullError as error:
                refusal = error
            if refusal is not None:
                expected_victim = model.victim(arg) if policy is QueueFullPolicy.drop_lru else None
                assert expected_victim is None
                assert len(model.items) == capacity
                assert refusal.kind is (
                    ErrorKind.ADMISSION_REJECT
                    if policy is QueueFullPolicy.reject
                    else ErrorKind.QUEUE_FULL_DROP_LRU
                )
                assert refusal.policy_label is policy
                assert (queue.ordered(now), queue.depth(INTER), queue.depth(BATCH)) == before
                trace.refused.append(task_id)
                continue
            if len(model.items) >= capacity:
                victim = model.victim(arg)
                assert result.evicted == victim is not None
                model.items = [e for e in model.items if e[0] != victim]
                trace.evicted.append(victim)
            else:
                assert result.evicted is None
            model.items.append((task_id, arg, now, model.seq))
            model.seq += 1
            trace.enqueued.append((task_id, arg))
        elif op == "pop":
            waiting_interactive = queue.depth(INTER) > 0
            got = queue.pop(now)
            expected = model.ordered(now)[:1]
            assert [got] == expected or (got is None and expected == [])
            if got is not None:
                model.items = [e for e in model.items if e[0] != got]
                trace.popped.append(got)
                if got in {t for t, p in trace.enqueued if p is BATCH} and waiting_interactive:
                    trace.batch_pops_with_interactive_waiting += 1
        else:
            assert isinstance(arg, int)
            task_id = f"t{arg}"
            present = any(e[0] == task_id for e in model.items)
            assert queue.remove(task_id) is present
            if present:
                model.items = [e for e in model.items if e[0] != task_id]
                trace.removed.append(task_id)
        assert len(queue) == len(model.items) <= capacity
        assert queue.depth(INTER) + queue.depth(BATCH) == len(queue)
        assert queue.ordered(now) == model.ordered(now)
    while (got := queue.pop(now)) is not None:
        trace.popped.append(got)
    assert len(queue) == 0
    return trace


@pytest.mark.req("OC-CORE-1004", "OC-CORE-1005")
@settings(max_examples=300)
@given(configs, ops)
def test_every_pop_and_order_matches_the_spec_rule(config: Config, script: Script) -> None:
    run(config, script)


@pytest.mark.req("OC-CORE-1003")
@given(configs, ops)
def test_fifo_within_each_priority_class(config: Config, script: Script) -> None:
    trace = run(config, script)
    gone = set(trace.removed) | set(trace.evicted)
    for cls in (INTER, BATCH):
        arrivals = [t for t, p in trace.enqueued if p is cls and t not in gone]
        assert [t for t in trace.popped if t in set(arrivals)] == arrivals


@pytest.mark.req("OC-CORE-1004")
@given(st.tuples(st.integers(1, 6), st.sampled_from(list(QueueFullPolicy)), st.just(0.0)), ops)
def test_interactive_always_before_batch_when_aging_is_disabled(config: Config, script: Script) -> None:
    assert run(config, script).batch_pops_with_interactive_waiting == 0


@pytest.mark.req("OC-CORE-1001")
@given(configs, ops)
def test_no_task_is_lost_or_duplicated(config: Config, script: Script) -> None:
    trace = run(config, script)
    outcomes = trace.popped + trace.removed + trace.evicted
    assert sorted(outcomes) == sorted(t for t, _ in trace.enqueued)
    assert not set(outcomes) & set(trace.refused)


@pytest.mark.req("OC-CORE-1107")
@given(configs, ops, st.floats(0, 5))
def test_position_is_the_index_in_dispatch_order(config: Config, script: Script, later: float) -> None:
    capacity, policy, aging = config
    queue, now = PoolQueue(capacity, policy, aging), 0.0
    for i, (op, arg, dt) in enumerate(script):
        now += dt
        if op == "enq":
            assert isinstance(arg, Priority)
            with contextlib.suppress(QueueFullError):
                queue.enqueue(f"t{i}", arg, now)
        elif op == "pop":
            queue.pop(now)
    for at in (now, now + later):
        order = queue.ordered(at)
        assert [queue.position(t, at) for t in order] == list(range(len(order)))
    assert queue.position("absent", now) is None


@pytest.mark.req("OC-CORE-1001", "OC-CORE-1104")
def test_reject_counts_both_classes_and_leaves_the_queue_unchanged() -> None:
    queue = PoolQueue(2, QueueFullPolicy.reject, 0.0, pool_id="gpu0")
    queue.enqueue("a", BATCH, 0.0)
    queue.enqueue("b", INTER, 0.0)
    with pytest.raises(QueueFullError) as caught:
        queue.enqueue("c", INTER, 1.0)
    assert caught.value.kind is ErrorKind.ADMISSION_REJECT
    assert caught.value.policy_label is QueueFullPolicy.reject
    assert "gpu0" in caught.value.message
    assert queue.ordered(1.0) == ["b", "a"]
    assert "c" not in queue


@pytest.mark.req("OC-CORE-1105")
def test_drop_lru_evicts_the_oldest_of_the_lowest_class_not_above_the_arrival() -> None:
    queue = PoolQueue(3, QueueFullPolicy.drop_lru, 0.0)
    queue.enqueue("i1", INTER, 0.0)
    queue.enqueue("b1", BATCH, 1.0)
    queue.enqueue("b2", BATCH, 2.0)
    # An interactive arrival evicts the oldest batch task even though an older interactive one exists.
    assert queue.enqueue("i2", INTER, 3.0).evicted == "b1"
    assert queue.enqueue("b3", BATCH, 4.0).evicted == "b2"
    assert queue.ordered(4.0) == ["i1", "i2", "b3"]
    assert queue.enqueue("i3", INTER, 5.0).evicted == "b3"
    # Only interactive tasks remain: an interactive arrival evicts the oldest of them.
    assert queue.enqueue("i4", INTER, 6.0).evicted == "i1"
    assert queue.ordered(6.0) == ["i2", "i3", "i4"]


@pytest.mark.req("OC-CORE-1106")
def test_drop_lru_refuses_a_batch_task_facing_only_interactive_ones() -> None:
    queue = PoolQueue(2, QueueFullPolicy.drop_lru, 0.0)
    queue.enqueue("i1", INTER, 0.0)
    queue.enqueue("i2", INTER, 0.0)
    with pytest.raises(QueueFullError) as caught:
        queue.enqueue("b1", BATCH, 1.0)
    assert caught.value.kind is ErrorKind.QUEUE_FULL_DROP_LRU
    assert queue.ordered(1.0) == ["i1", "i2"]


@pytest.mark.req("OC-CORE-1005")
def test_cancel_frees_capacity_at_once() -> None:
    queue = PoolQueue(1, QueueFullPolicy.reject, 0.0)
    queue.enqueue("a", INTER, 0.0)
    assert queue.remove("a") is True
    assert queue.remove("a") is False
    assert len(queue) == 0
    assert queue.enqueue("b", INTER, 0.0).evicted is None
    assert queue.pop(0.0) == "b"


@pytest.mark.req("OC-CORE-1004")
def test_an_aged_batch_task_overtakes_later_interactive_ones() -> None:
    queue = PoolQueue(8, QueueFullPolicy.reject, 30.0)
    queue.enqueue("b", BATCH, 0.0)
    queue.enqueue("i", INTER, 10.0)
    assert queue.ordered(29.9) == ["i", "b"]
    assert queue.position("b", 29.9) == 1
    assert queue.ordered(30.0) == ["b", "i"]
    assert queue.position("b", 30.0) == 0
    assert queue.pop(30.0) == "b"


@pytest.mark.req("OC-CORE-1118")
def test_a_retried_task_goes_back_to_the_head_of_its_class_within_the_bound() -> None:
    queue = PoolQueue(3, QueueFullPolicy.reject, 0.0)
    queue.enqueue("i1", INTER, 5.0)
    queue.enqueue("b1", BATCH, 0.0)
    queue.push_front("i0", INTER, 7.0)
    assert queue.ordered(8.0) == ["i0", "i1", "b1"]
    assert queue.depth(INTER) == 2
    with pytest.raises(QueueFullError) as caught:
        queue.push_front("i9", INTER, 1.0)
    assert caught.value.kind is ErrorKind.REPLICA_EXHAUSTED
    assert queue.ordered(8.0) == ["i0", "i1", "b1"]


def test_removing_many_tasks_keeps_counts_exact() -> None:
    queue = PoolQueue(100, QueueFullPolicy.reject, 0.0)
    for i in range(100):
        queue.enqueue(f"t{i}", BATCH if i % 2 else INTER, float(i))
    for i in range(0, 100, 3):
        queue.remove(f"t{i}")
    survivors = [f"t{i}" for i in range(100) if i % 3]
    assert len(queue) == len(survivors)
    assert queue.depth(INTER) + queue.depth(BATCH) == len(survivors)
    assert sorted(queue.ordered(0.0)) == sorted(survivors)
    assert queue.ordered(0.0)[:2] == ["t2", "t4"]


def test_from_config_reads_capacity_policy_and_aging_in_seconds() -> None:
    queue = PoolQueue.from_config(
        QueueConfig(capacity=3, full_policy=ConfigQueueFullPolicy.drop_lru),
        AdmissionConfig(batch_aging_ms=1500),
        pool_id="p",
    )
    assert (queue.capacity, queue.policy, queue.batch_aging_s, queue.pool_id) == (
        3,
        QueueFullPolicy.drop_lru,
        1.5,
        "p",
    )


def test_duplicate_ids_and_bad_settings_are_programming_errors() -> None:
    queue = PoolQueue(2, QueueFullPolicy.reject, 0.0)
    queue.enqueue("a", INTER, 0.0)
    with pytest.raises(ValueError, match="already queued"):
        queue.enqueue("a", BATCH, 0.0)
    with pytest.raises(ValueError, match="capacity"):
        PoolQueue(0, QueueFullPolicy.reject, 0.0)
    with pytest.raises(ValueError, match="batch_aging_s"):
        PoolQueue(1, QueueFullPolicy.reject, -1.0)
