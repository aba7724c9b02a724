"""The pool registry: the one place pool and replica state lives, and the source of the watch stream.

Everything runs on the event loop; provisioning threads hand their updates
over with `anyio.from_thread`. Each change gets the next sequence number, so
watchers can tell changes apart and order them (OC-POOL-3120).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import msgspec

from llorch_contracts.api import PoolState, PoolStatus, PreparationStep, ReplicaState, ReplicaStatus

WATCH_BUFFER = 256
_LIVE_STATES = {ReplicaState.starting, ReplicaState.ready, ReplicaState.unready, ReplicaState.draining}


class Watcher:
    """A bounded feed of `(sequence, PoolStatus)` changes; a watcher that falls behind is cut off."""

    def __init__(self, maxsize: int) -> None:
        self.queue: asyncio.Queue[tuple[int, PoolStatus]] = asyncio.Queue(maxsize)
        self.overflowed = False

    def offer(self, item: tuple[int, PoolStatus]) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            # A slow client reconnects and gets a fresh snapshot; memory stays bounded.
            self.overflowed = True


def _derived(pool: PoolStatus) -> PoolStatus:
    ready = not pool.draining and any(r.state == ReplicaState.ready for r in pool.replicas)
    live = any(r.state in _LIVE_STATES for r in pool.replicas)
    if pool.draining:
        # While a drain runs, whatever the supervisors report, the pool and its serving replicas
        # read `draining`, so no client mistakes them for open (OC-POOL-3152).
        replicas = [
            msgspec.structs.replace(r, state=ReplicaState.draining) if r.state == ReplicaState.ready else r
            for r in pool.replicas
        ]
        return msgspec.structs.replace(
            pool, ready=False, live=live, state=PoolState.draining, replicas=replicas
        )
    return msgspec.structs.replace(pool, ready=ready, live=live)


class PoolRegistry:
    """Pool statuses by id, with change notification."""

    def __init__(self, pools: Iterable[PoolStatus]) -> None:
        self._pools = {p.pool_id: _derived(p) for p in pools}
        self._sequence = 0
        self._watchers: set[Watcher] = set()

    @property
    def sequence(self) -> int:
        return self._sequence

    def snapshot(self) -> list[PoolStatus]:
        return list(self._pools.values())

    def get(self, pool_id: str) -> PoolStatus | None:
        return self._pools.get(pool_id)

    def update(self, pool_id: str, **changes: Any) -> PoolStatus:
        """Replace fields of one pool (derived `ready`/`live` are recomputed) and notify watchers."""
        pool = _derived(msgspec.structs.replace(self._pools[pool_id], **changes))
        if pool == self._pools[pool_id]:
            return pool
        self._pools[pool_id] = pool
        self._sequence += 1
        for watcher in self._watchers:
            watcher.offer((self._sequence, pool))
        return pool

    def put_replica(self, pool_id: str, replica: ReplicaStatus) -> PoolStatus:
        """Insert or replace one replica's status by replica id, keeping replica order."""
        replicas = list(self._pools[pool_id].replicas)
        index = next((i for i, r in enumerate(replicas) if r.replica_id == replica.replica_id), None)
        if index is None:
            replicas.append(replica)
        else:
            replicas[index] = replica
        return self.update(pool_id, replicas=replicas)

    def put_step(self, pool_id: str, step: PreparationStep) -> PoolStatus:
        """Insert or replace one preparation step by step id, keeping execution order."""
        steps = list(self._pools[pool_id].preparation.steps)
        index = next((i for i, s in enumerate(steps) if s.id == step.id), None)
        if index is None:
            steps.append(step)
        else:
            steps[index] = step
        preparation = msgspec.structs.replace(self._pools[pool_id].preparation, steps=steps)
        return self.update(pool_id, preparation=preparation)

    @contextmanager
    def watch(self, maxsize: int = WATCH_BUFFER) -> Iterator[Watcher]:
        """Receive every change made while the context is open."""
        watcher = Watcher(maxsize)
        self._watchers.add(watcher)
        try:
            yield watcher
        finally:
            self._watchers.discard(watcher)
