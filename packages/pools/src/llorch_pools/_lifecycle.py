"""Drain and reload of one pool (OC-POOL-3150..3153).

Each pool's supervisor runs in its own cancel scope inside the manager's task
group, so one pool can be stopped and started again without touching the
others. A drain or reload runs as a task in the same group, at most one per
pool at a time; its outcome is visible only in the pool's status.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx
import msgspec
from anyio.abc import TaskGroup
from msgspec import UNSET

from llorch_contracts.api import PoolAction, PoolState, PoolStatus, Preparation, ReplicaState
from llorch_contracts.config import ModelConfig, PoolConfig

from ._errors import PoolBusyError
from ._health import read_llamacpp_facts
from ._preparation import PreparationError
from ._registry import PoolRegistry
from ._settings import SupervisorSettings
from ._supervisor import PoolSupervisor, Staged

log = logging.getLogger("llorch.pools")

# The drain a reload starts with: the configuration has no default drain deadline, and the
# contract's examples use 30 s.
RELOAD_DRAIN_S = 30.0
# How long new (or restored) replicas may take beyond the health timeout to become Ready.
READY_SLACK_S = 10.0
# Changes wake the waits below; this covers what no change announces (a supervisor that ended).
RECHECK_S = 1.0
ENGINE_POLL_S = 0.2
_NO_STEPS = Preparation(steps=[])
_DOWN = {ReplicaState.backoff, ReplicaState.failed, ReplicaState.stopped}
_SERVING = {ReplicaState.ready, ReplicaState.draining}


def _idle(pool: PoolStatus) -> bool:
    """Every serving replica reports all of its slots free."""
    return all(r.slots_free >= r.slots_total for r in pool.replicas if r.state in _SERVING)


class ManagedPool:
    """One configured pool: its current supervisor (if any) and the drain or reload acting on it."""

    def __init__(
        self, pool: PoolConfig, registry: PoolRegistry, settings: SupervisorSettings, group: TaskGroup
    ) -> None:
        self.config = pool
        self.registry = registry
        self.settings = settings
        self.action: PoolAction | None = None
        self._group = group
        self._supervisor: PoolSupervisor | None = None
        self._scope: anyio.CancelScope | None = None
        self._ended = anyio.Event()

    @property
    def pool_id(self) -> str:
        return self.config.id

    # ------------------------------------------------------------------ supervisor

    def start(self, staged: Staged | None = None) -> None:
        """Supervise the pool on `self.config` in a fresh cancel scope (preparing it unless `staged`)."""
        supervisor = PoolSupervisor(self.config, self.registry, self.settings)
        scope, ended = anyio.CancelScope(), anyio.Event()
        self._supervisor, self._scope, self._ended = supervisor, scope, ended
        self._group.start_soon(self._supervise, supervisor, scope, ended, staged)

    @staticmethod
    async def _supervise(
        supervisor: PoolSupervisor, scope: anyio.CancelScope, ended: anyio.Event, staged: Staged | None
    ) -> None:
        try:
            with scope:
                await supervisor.run(staged)
        finally:
            ended.set()

    async def stop(self) -> Staged | None:
        """Stop the supervisor; returns once every engine it started is gone, with what it ran."""
        supervisor, scope = self._supervisor, self._scope
        if supervisor is None or scope is None:
            return None
        # Replicas stop their processes on cancellation: SIGTERM, grace, SIGKILL (OC-POOL-3152).
        scope.cancel()
        await self._ended.wait()
        self._supervisor = self._scope = None
        return supervisor.staged

    # ------------------------------------------------------------------ actions

    def drain(self, deadline_ms: int) -> None:
        """Publish `draining` now; stop the replicas once idle or at the deadline, then report `stopped`.

        Draining an already draining pool changes nothing: the earlier deadline stays.
        """
        if self.action == PoolAction.drain:
            return
        self._claim(PoolAction.drain)
        self.registry.update(self.pool_id, draining=True)
        self._group.start_soon(self._act, self._drain, deadline_ms / 1000)

    def reload(self, model_ref: str, sha256: str | None = None) -> None:
        """Switch the pool to another model, keeping the current one when anything fails (OC-POOL-3150)."""
        self._claim(PoolAction.reload)
        model = ModelConfig(ref=model_ref, sha256=UNSET if sha256 is None else sha256)
        self._group.start_soon(self._act, self._reload, model)

    def _claim(self, action: PoolAction) -> None:
        if self.action is not None:
            raise PoolBusyError(f"a {self.action} of pool {self.pool_id} is already running")
        self.action = action

    async def _act(self, work: Callable[..., Awaitable[None]], *args: Any) -> None:
        try:
            await work(*args)
        except Exception as exc:
            # An action's bug must not take the other pools down with the manager's task group.
            log.exception("pool %s: %s failed unexpectedly", self.pool_id, self.action)
            message = f"{self.action} failed unexpectedly: {type(exc).__name__}: {exc}"
            self.registry.update(self.pool_id, last_error=message[:2048])
        finally:
            self.action = None

    async def _drain(self, deadline_s: float) -> None:
        await self._quiesce(deadline_s)
        self.registry.update(
            self.pool_id, draining=False, state=PoolState.stopped, replicas=[], preparation=_NO_STEPS
        )
        log.info("pool %s drained and stopped", self.pool_id)

    async def _quiesce(self, deadline_s: float) -> Staged | None:
        """Publish `draining`, wait until no replica has work or the deadline passes, stop the replicas."""
        self.registry.update(self.pool_id, draining=True)
        with anyio.move_on_after(deadline_s):
            while True:
                await self._until(_idle)
                if await self._engines_idle():
                    break
                await anyio.sleep(ENGINE_POLL_S)
        return await self.stop()

    async def _engines_idle(self) -> bool:
        """Ask the engines themselves: the registry's slot counts may be a health interval behind."""
        for replica in self._status().replicas:
            if replica.state not in _SERVING:
                continue
            try:
                facts = await read_llamacpp_facts(self.settings.http, replica.endpoint)
            except (httpx.HTTPError, ValueError):
                continue  # an engine that cannot answer has no work worth waiting for
            if facts.slots_free < facts.slots_total:
                return False
        return True

    async def _reload(self, model: ModelConfig) -> None:
        previous = self.config
        before = self._status()
        target = msgspec.structs.replace(previous, model=model)
        # Stage and verify first: a model that cannot be had never interrupts the one serving.
        try:
            staged = await PoolSupervisor(target, self.registry, self.settings).prepare()
        except PreparationError as exc:
            error = f"reload to {model.ref} failed, still serving {previous.model.ref}: {exc}"
            log.warning("pool %s: %s", self.pool_id, error)
            self.registry.update(self.pool_id, preparation=before.preparation, last_error=error[:2048])
            return
        was_running = self._supervisor is not None
        previous_staged = await self._quiesce(RELOAD_DRAIN_S)
        self.registry.update(self.pool_id, draining=False, state=PoolState.loading, replicas=[])
        self.config = target
        self.start(staged)
        failure = await self._until_serving()
        if failure is None:
            log.info("pool %s reloaded to %s (%s)", self.pool_id, model.ref, staged[1].digest)
            return
        await self._roll_back(previous, previous_staged, before, was_running, failure)

    async def _roll_back(
        self,
        previous: PoolConfig,
        previous_staged: Staged | None,
        before: PoolStatus,
        was_running: bool,
        failure: str,
    ) -> None:
        """Stop the new replicas and bring back the previous model and its readiness."""
        target = self.config.model.ref
        await self.stop()
        self.config = previous
        self.registry.update(
            self.pool_id,
            state=PoolState.stopped,
            replicas=[],
            model_ref=previous.model.ref,
            model_digest=before.model_digest,
            preparation=_NO_STEPS,
        )
        if was_running:
            self.start(previous_staged)
            await self._until_serving()
        # Written after the old replicas are Ready, which clears `last_error` when they get there.
        error = f"reload to {target} failed and was rolled back to {previous.model.ref}: {failure}"
        log.warning("pool %s: %s", self.pool_id, error)
        self.registry.update(self.pool_id, last_error=error[:2048])

    async def _until_serving(self) -> str | None:
        """Wait until every replica is Ready (None), or say why that did not happen."""
        timeout_s = self.settings.health_timeout_s + READY_SLACK_S
        with anyio.move_on_after(timeout_s):
            pool = await self._until(self._settled)
            down = next((r for r in pool.replicas if r.state in _DOWN), None)
            if down is not None:
                return f"replica {down.replica_id}: {down.last_error or down.state}"
            if self._all_ready(pool):
                return None
            return pool.last_error or "the pool stopped before it was Ready"
        return f"the replicas were not Ready within {timeout_s:.0f} s"

    def _settled(self, pool: PoolStatus) -> bool:
        """Every replica is Ready, one of them failed, or the supervisor gave up."""
        down = any(r.state in _DOWN for r in pool.replicas)
        return down or self._all_ready(pool) or self._ended.is_set()

    def _all_ready(self, pool: PoolStatus) -> bool:
        return sum(r.state == ReplicaState.ready for r in pool.replicas) == self.config.replicas

    async def _until(self, check: Callable[[PoolStatus], bool]) -> PoolStatus:
        """The pool's status as soon as `check` holds: re-checked on every change, and every second."""
        with self.registry.watch() as watcher:
            while not check(pool := self._status()):
                with anyio.move_on_after(RECHECK_S):
                    await watcher.queue.get()
        return pool

    def _status(self) -> PoolStatus:
        pool = self.registry.get(self.pool_id)
        assert pool is not None, "every managed pool is in the registry"
        return pool
