"""One pool's bounded two-class queue: FIFO per priority, batch aging, reject or drop-lru when full."""

from __future__ import annotations

from collections import deque

import msgspec

from llorch_contracts.api import ErrorKind, Priority, QueueFullPolicy
from llorch_contracts.config import AdmissionConfig, QueueConfig

from ._errors import QueueFullError


class Enqueued(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of an admitted enqueue."""

    #: The task that drop-lru evicted to make room (OC-CORE-1105); it must end with
    #: `QUEUE_FULL_DROP_LRU` (OC-CORE-1103). None when the queue had room.
    evicted: str | None = None


class _Entry:
    __slots__ = ("enqueued_at", "live", "priority", "seq", "task_id")

    def __init__(self, task_id: str, priority: Priority, enqueued_at: float, seq: int) -> None:
        self.task_id = task_id
        self.priority = priority
        self.enqueued_at = enqueued_at
        # Breaks ties between equal arrival times; push_front uses negative numbers.
        self.seq = seq
        self.live = True


class PoolQueue:
    """The single bounded queue of one pool (OC-CORE-1001), holding task ids only.

    Times are seconds from a monotonic clock, passed in by the caller; the queue never reads a clock.
    Capacity counts queued tasks of both priorities; running tasks are not in the queue at all.
    """

    def __init__(
        self,
        capacity: int,
        policy: QueueFullPolicy,
        batch_aging_s: float,
        *,
        pool_id: str = "",
    ) -> None:
        if capacity < 1:
            raise ValueError(f"queue capacity must be at least 1, got {capacity}")
        if batch_aging_s < 0:
            raise ValueError(f"batch_aging_s must be >= 0, got {batch_aging_s}")
        self.capacity = capacity
        self.policy = policy
        self.batch_aging_s = batch_aging_s
        self.pool_id = pool_id
        self._classes: dict[Priority, deque[_Entry]] = {p: deque() for p in Priority}
        self._depth: dict[Priority, int] = dict.fromkeys(Priority, 0)
        self._index: dict[str, _Entry] = {}
        self._next_seq = 0
        self._front_seq = -1

    @classmethod
    def from_config(cls, queue: QueueConfig, admission: AdmissionConfig, *, pool_id: str = "") -> PoolQueue:
        """Build a queue from the pool's effective queue settings and orchestratord's admission settings."""
        # The config and API modules generate separate (equal-valued) QueueFullPolicy enums.
        policy = QueueFullPolicy(queue.full_policy.value)
        return cls(queue.capacity, policy, admission.batch_aging_ms / 1000, pool_id=pool_id)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._index

    def depth(self, priority: Priority) -> int:
        """How many tasks of `priority` are queued."""
        return self._depth[priority]

    def enqueue(self, task_id: str, priority: Priority, now: float) -> Enqueued:
        """Append a task at the tail of its class, applying the full-queue policy (OC-CORE-1002).

        Raises `QueueFullError` with `ADMISSION_REJECT` under `reject` (OC-CORE-1104), or with
        `QUEUE_FULL_DROP_LRU` under `drop-lru` when nothing may be evicted (OC-CORE-1106); the queue is
        then unchanged. `ValueError` if `task_id` is already queued.
        """
        if task_id in self._index:
            raise ValueError(f"task {task_id} is already queued")
        evicted: str | None = None
        if len(self._index) >= self.capacity:
            evicted = self._evict_for(priority)
        entry = _Entry(task_id, priority, now, self._next_seq)
        self._next_seq += 1
        self._classes[priority].append(entry)
        self._index[task_id] = entry
        self._depth[priority] += 1
        return Enqueued(evicted=evicted)

    def push_front(self, task_id: str, priority: Priority, enqueued_at: float) -> None:
        """Put a task back at the head of its class, keeping its original arrival time (OC-CORE-1118).

        The bound still holds: when the queue is full, raises `QueueFullError` with `REPLICA_EXHAUSTED`,
        the error the retried task must then end with.
        """
        if task_id in self._index:
            raise ValueError(f"task {task_id} is already queued")
        if len(self._index) >= self.capacity:
            raise QueueFullError(
                ErrorKind.REPLICA_EXHAUSTED,
                f"{self._name()} is full (capacity {self.capacity}); the task could not be retried",
                policy_label=self.policy,
            )
        entry = _Entry(task_id, priority, enqueued_at, self._front_seq)
        self._front_seq -= 1
        self._classes[priority].appendleft(entry)
        self._index[task_id] = entry
        self._depth[priority] += 1

    def remove(self, task_id: str) -> bool:
        """Take a queued task out at once (cancel, deadline), freeing its capacity (OC-CORE-1005).

        O(1): the entry is marked dead and skipped later; `len`, depths and positions are exact at once.
        Returns False when the task is not queued.
        """
        entry = self._index.pop(task_id, None)
        if entry is None:
            return False
        entry.live = False
        self._depth[entry.priority] -= 1
        self._compact(entry.priority)
        return True

    def pop(self, now: float) -> str | None:
        """Take the next task by the dequeue rule of OC-CORE-1004, or None when the queue is empty."""
        head_i = self._head(Priority.interactive)
        head_b = self._head(Priority.batch)
        entry = self._choose(head_i, head_b, now)
        if entry is None:
            return None
        self._classes[entry.priority].popleft()
        del self._index[entry.task_id]
        self._depth[entry.priority] -= 1
        return entry.task_id

    def ordered(self, now: float) -> list[str]:
        """Every queued task id in the order repeated `pop(now)` calls would return them."""
        inter = [e for e in self._classes[Priority.interactive] if e.live]
        batch = [e for e in self._classes[Priority.batch] if e.live]
        out: list[str] = []
        i = b = 0
        while i < len(inter) or b < len(batch):
            entry = self._choose(
                inter[i] if i < len(inter) else None, batch[b] if b < len(batch) else None, now
            )
            assert entry is not None
            if entry.priority is Priority.interactive:
                i += 1
            else:
                b += 1
            out.append(entry.task_id)
        return out

    def position(self, task_id: str, now: float) -> int | None:
        """The 0-based count of tasks the dequeue rule, applied now, starts first (OC-CORE-1107).

        None when the task is not queued. O(n) in the queue length, which the capacity bounds.
        """
        if task_id not in self._index:
            return None
        return self.ordered(now).index(task_id)

    def _aged(self, entry: _Entry, now: float) -> bool:
        # OC-CORE-1004: a batch_aging of 0 disables aging altogether.
        return self.batch_aging_s > 0 and now - entry.enqueued_at >= self.batch_aging_s

    def _choose(self, head_i: _Entry | None, head_b: _Entry | None, now: float) -> _Entry | None:
        # OC-CORE-1004: among interactive heads and aged batch heads, the earliest arrival; otherwise the
        # oldest batch task. Class heads suffice because each class is FIFO (OC-CORE-1003).
        if head_b is not None and self._aged(head_b, now):
            if head_i is None or (head_b.enqueued_at, head_b.seq) < (head_i.enqueued_at, head_i.seq):
                return head_b
            return head_i
        return head_i if head_i is not None else head_b

    def _evict_for(self, priority: Priority) -> str:
        if self.policy is QueueFullPolicy.reject:
            raise QueueFullError(
                ErrorKind.ADMISSION_REJECT,
                f"{self._name()} is full (capacity {self.capacity})",
                policy_label=self.policy,
            )
        # OC-CORE-1105: the oldest task of the lowest class not above the arrival's own priority.
        eligible = [Priority.batch] if priority is Priority.batch else [Priority.batch, Priority.interactive]
        for victim_class in eligible:
            head = self._head(victim_class)
            if head is not None:
                self._classes[victim_class].popleft()
                del self._index[head.task_id]
                self._depth[victim_class] -= 1
                return head.task_id
        # OC-CORE-1106: a batch arrival meets a queue full of interactive tasks.
        raise QueueFullError(
            ErrorKind.QUEUE_FULL_DROP_LRU,
            f"{self._name()} is full (capacity {self.capacity}) of interactive tasks; "
            "a batch task may not evict them",
            policy_label=self.policy,
        )

    def _head(self, priority: Priority) -> _Entry | None:
        entries = self._classes[priority]
        while entries and not entries[0].live:
            entries.popleft()
        return entries[0] if entries else None

    def _compact(self, priority: Priority) -> None:
        # Dead entries may pile up in the middle of a class; rebuilding once they outnumber the live ones
        # keeps memory bounded by twice the capacity and removal O(1) amortised.
        entries = self._classes[priority]
        if len(entries) > 2 * self._depth[priority] + 8:
            self._classes[priority] = deque(e for e in entries if e.live)

    def _name(self) -> str:
        return f"the queue of pool {self.pool_id}" if self.pool_id else "the queue"
