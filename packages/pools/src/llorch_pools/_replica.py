"""One replica's supervision: run incarnations, and after each failure restart by the rules (OC-POOL-3011).

The supervisor owns the replica's status in the pool view and its
`RestartPolicy`; a `ReplicaRunner` does the engine work. Time comes
from the settings' clock and sleep, so tests drive every rule with a fake.
"""

from __future__ import annotations

import logging

import msgspec
from msgspec import UNSET

from llorch_contracts.api import (
    BreakerState,
    EngineKind,
    PoolState,
    Preparation,
    ReplicaState,
    ReplicaStatus,
)
from llorch_contracts.config import PoolConfig

from ._backoff import RestartPolicy, Verdict
from ._errors import ReplicaError
from ._health import EngineFacts
from ._incarnation import EngineRunner, ReplicaRunner
from ._launch import device_mask
from ._preparation import PreparedEngine, StagedModel
from ._registry import PoolRegistry
from ._settings import SupervisorSettings

log = logging.getLogger("llorch.pools")
# The contract lists outstanding preparation steps only: a Ready pool has none.
_NO_STEPS = Preparation(steps=[])
# Before the first incarnation reports an endpoint (OC-POOL-3146 publishes the real one).
_NO_ENDPOINT = "http://127.0.0.1:0"


class ReplicaSupervisor:
    """Keeps one replica of a pool serving, for as long as it is not cancelled."""

    def __init__(
        self,
        *,
        pool: PoolConfig,
        replica_id: str,
        engine: PreparedEngine,
        model: StagedModel,
        registry: PoolRegistry,
        settings: SupervisorSettings,
        runner: ReplicaRunner | None = None,
    ) -> None:
        self.pool = pool
        self.replica_id = replica_id
        self.registry = registry
        self.settings = settings
        self.engine_kind = EngineKind(str(pool.engine.kind))
        self.engine_version = engine.engine_version
        self.runner = runner or EngineRunner(
            pool=pool, replica_id=replica_id, engine=engine, model=model, settings=settings
        )
        self.policy = RestartPolicy(settings.supervision, settings.rng)
        self.restarts = 0
        self.status = ReplicaStatus(
            replica_id=replica_id,
            endpoint=_NO_ENDPOINT,
            engine=self.engine_kind,
            engine_version=engine.engine_version,
            model_ref=pool.model.ref,
            model_digest=model.digest,
            ctx_max=pool.ctx_max,
            slots_total=pool.slots_per_replica,
            slots_free=0,
            device_mask=device_mask(pool.devices),
            state=ReplicaState.starting,
            last_error=None,
            restarts=0,
        )

    async def run(self) -> None:
        """Serve; after each failure wait as the policy says (backoff or open breaker), then start again."""
        while True:
            try:
                await self._cycle()
            except Exception:
                # Even a bug in the bookkeeping below must not end supervision of this replica, nor
                # take its pool's other replicas down with the task group (OC-POOL-3197).
                log.exception("pool %s replica %s: supervision failed", self.pool.id, self.replica_id)
                await self.settings.sleep(self.settings.supervision.backoff_max_ms / 1000)

    async def _cycle(self) -> None:
        """One incarnation, its failure, the wait the policy asks for, and the restart count."""
        error, reason = await self._incarnation()
        verdict = self.policy.failed(self._now_ms())
        log.warning("pool %s replica %s failed (%s): %s", self.pool.id, self.replica_id, reason, error)
        await self._wait(verdict, error)
        self.restarts += 1
        self.settings.observer.restarted(
            engine=self.engine_kind,
            engine_version=self.engine_version or "unknown",
            pool_id=self.pool.id,
            replica_id=self.replica_id,
            reason=reason,
        )

    async def _incarnation(self) -> tuple[str, str]:
        """Run one incarnation to its end: the operator-facing error and the restart `reason`."""
        try:
            await self.runner.serve(self)
        except ReplicaError as exc:
            return str(exc), exc.reason
        except Exception as exc:
            # A bug must not end supervision quietly: it is this replica's failure (OC-POOL-3197).
            log.exception(
                "pool %s replica %s: unexpected error in supervision", self.pool.id, self.replica_id
            )
            return f"unexpected supervision error: {type(exc).__name__}: {exc}", "supervisor_error"
        return "the replica stopped serving without an error", "process_exit"

    async def _wait(self, verdict: Verdict, error: str) -> None:
        settings = self.settings
        delay_s = verdict.delay_ms / 1000
        if verdict.breaker is not BreakerState.open:
            self._down(ReplicaState.backoff, error)
            await settings.sleep(delay_s)
            return
        config = settings.supervision
        if verdict.opened_by == "storm":
            why = (
                f"restart storm stopped: {config.restart_limit} crashes within "
                f"{config.restart_window_ms} ms of becoming Ready"
            )
        elif verdict.opened_by == "trial":
            why = "the trial start failed"
        else:
            why = f"{self.policy.failed_starts} failed starts in a row"
        trial_ms = int((settings.wall_clock() + delay_s) * 1000)
        error = f"{error} (circuit breaker open: {why}; one trial start in {delay_s:.0f} s)"
        log.error("pool %s replica %s: %s", self.pool.id, self.replica_id, error)
        self._down(ReplicaState.failed, error, next_trial_ms=trial_ms)
        await settings.sleep(delay_s)
        self.policy.trial()

    # ------------------------------------------------------------------ IncarnationReports

    def starting(self, endpoint: str, pid: int | None) -> None:
        self._put(
            state=ReplicaState.starting,
            endpoint=endpoint,
            pid=UNSET if pid is None else pid,
            slots_free=0,
            last_error=None,
            next_trial_ms=UNSET,
        )

    def ready(self, facts: EngineFacts) -> None:
        self.policy.ready(self._now_ms())
        self.engine_version = facts.engine_version
        self._put(
            state=ReplicaState.ready,
            engine_version=facts.engine_version,
            ctx_max=facts.ctx_max,
            slots_total=facts.slots_total,
            slots_free=facts.slots_free,
        )
        self.registry.update(self.pool.id, state=PoolState.ready, last_error=None, preparation=_NO_STEPS)
        log.info(
            "pool %s replica %s ready at %s (%s)",
            self.pool.id,
            self.replica_id,
            self.status.endpoint,
            facts.engine_version,
        )

    def slots_free(self, free: int) -> None:
        self._put(slots_free=free)

    # ------------------------------------------------------------------ status

    def _down(self, state: ReplicaState, error: str, next_trial_ms: int | None = None) -> None:
        """Record a replica that is not serving; the pool turns Unready when nothing else serves."""
        self._put(
            state=state,
            last_error=error[:2048],
            pid=UNSET,
            slots_free=0,
            next_trial_ms=UNSET if next_trial_ms is None else next_trial_ms,
        )
        pool = self.registry.get(self.pool.id)
        if pool is not None and not pool.ready:
            self.registry.update(self.pool.id, state=PoolState.unready, last_error=error[:2048])

    def _put(self, **changes: object) -> None:
        """Publish the replica's status; restarts and breaker state always come from the supervisor."""
        self.status = msgspec.structs.replace(
            self.status, restarts=self.restarts, breaker=self.policy.breaker, **changes
        )
        self.registry.put_replica(self.pool.id, self.status)

    def _now_ms(self) -> float:
        return self.settings.clock() * 1000
