"""One pool's life: check the hardware, prepare engine and model, then run its replicas.

States (OC-POOL-3001..3003): provisioning → loading → ready, or unready with
`last_error` set. Preparation blocks (builds, downloads), so it runs in worker
threads and reports progress as preparation steps; every failure ends as a
readable, Unready pool rather than a dead task.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
import msgspec
from msgspec import UNSET

from llorch_contracts.api import (
    EngineKind,
    PoolState,
    PreparationStep,
    PreparationStepGroup,
    PreparationStepKind,
    PreparationStepStatus,
)
from llorch_contracts.config import PoolConfig
from llorch_provisioning import redact_url

from ._preparation import PreparationError, PreparedEngine, StagedModel
from ._registry import PoolRegistry
from ._replica import ReplicaSupervisor
from ._settings import SupervisorSettings

log = logging.getLogger("llorch.pools")
T = TypeVar("T")
#: A prepared engine and the staged model it serves.
Staged = tuple[PreparedEngine, StagedModel]


class _StepReporter:
    """Turns progress calls from a worker thread into throttled registry updates on the loop."""

    def __init__(self, supervisor: PoolSupervisor, step: PreparationStep) -> None:
        self._supervisor = supervisor
        self._step = step
        self._last: tuple[str, int] | None = None

    def __call__(
        self,
        phase: str,
        pct: float | None = None,
        bytes_done: int | None = None,
        bytes_total: int | None = None,
    ) -> None:
        key = (phase, int(pct or 0))
        if key == self._last:
            return  # a build prints thousands of lines; publish each whole percent once
        self._last = key
        step = PreparationStep(
            id=self._step.id,
            kind=self._step.kind,
            group=self._step.group,
            description=self._step.description,
            status=PreparationStepStatus.running,
            phase=phase,
            pct=UNSET if pct is None else max(0.0, min(100.0, pct)),
            bytes_done=UNSET if bytes_done is None else bytes_done,
            bytes_total=UNSET if bytes_total is None else bytes_total,
        )
        anyio.from_thread.run_sync(self._supervisor.put_step, step)


class PoolSupervisor:
    """Brings one configured pool to Ready and keeps it there."""

    def __init__(self, pool: PoolConfig, registry: PoolRegistry, settings: SupervisorSettings) -> None:
        self.pool = pool
        self.registry = registry
        self.settings = settings
        self.engine_kind = EngineKind(str(pool.engine.kind))
        #: The engine and model the replicas run, once prepared.
        self.staged: Staged | None = None

    def put_step(self, step: PreparationStep) -> None:
        self.registry.put_step(self.pool.id, step)

    async def run(self, staged: Staged | None = None) -> None:
        """Prepare (unless `staged` is given), then supervise every replica until cancelled."""
        if staged is None:
            try:
                staged = await self.prepare()
            except PreparationError as exc:
                log.warning("pool %s cannot be prepared: %s", self.pool.id, exc)
                self.registry.update(self.pool.id, state=PoolState.unready, last_error=str(exc))
                return
        self.staged = staged
        engine, model = staged
        self.registry.update(
            self.pool.id, state=PoolState.loading, model_ref=self.pool.model.ref, model_digest=model.digest
        )
        async with anyio.create_task_group() as replicas:
            for index in range(self.pool.replicas):
                replica_id = f"{self.pool.id}-r{index}"
                supervisor = ReplicaSupervisor(
                    pool=self.pool,
                    replica_id=replica_id,
                    engine=engine,
                    model=model,
                    registry=self.registry,
                    settings=self.settings,
                )
                replicas.start_soon(supervisor.run)

    async def prepare(self) -> Staged:
        """Check the hardware, provision the engine and stage the model, as preparation steps."""
        problem = await anyio.to_thread.run_sync(self.settings.preparer.hardware_problem, self.pool)
        if problem:
            raise PreparationError(problem)
        preparer = self.settings.preparer
        started = self.settings.clock()
        mode = str(self.pool.engine.provisioning.mode)
        engine_step = _step(
            f"engine:{self.engine_kind}",
            PreparationStepKind.engine_provision,
            f"Provision the {self.engine_kind} engine ({mode} mode)",
        )
        try:
            engine = await self._step(
                engine_step, lambda report: preparer.provision_engine(self.pool, report)
            )
        except PreparationError:
            self._provisioned(mode, "failure", started)
            raise
        self._provisioned(mode, "reused" if engine.reused else "success", started)
        shown = _shown_ref(self.pool.model.ref)
        model_step = _step(
            _STEP_ID_UNSAFE.sub("-", f"model:{shown}")[:128],
            PreparationStepKind.model_fetch,
            f"Stage and verify the model {shown}",
        )
        model = await self._step(model_step, lambda report: preparer.stage_model(self.pool, engine, report))
        warmup = f"Start {self.pool.replicas} replica(s) and wait until they are healthy"
        self.put_step(_step(f"warmup:{self.pool.id}", PreparationStepKind.pool_warmup, warmup))
        return engine, model

    def _provisioned(self, mode: str, outcome: str, started: float) -> None:
        duration = self.settings.clock() - started
        self.settings.observer.provisioned(
            engine=self.engine_kind, mode=mode, outcome=outcome, duration_s=duration
        )

    async def _step(self, step: PreparationStep, work: Callable[[_StepReporter], T]) -> T:
        self.put_step(_with_status(step, PreparationStepStatus.running))
        reporter = _StepReporter(self, step)
        try:
            result = await anyio.to_thread.run_sync(work, reporter)
        except PreparationError:
            self.put_step(_with_status(step, PreparationStepStatus.failed))
            raise
        except Exception as exc:
            # Anything unexpected still ends as a readable, Unready pool rather than a dead task.
            log.exception("pool %s: unexpected error in %s", self.pool.id, step.id)
            self.put_step(_with_status(step, PreparationStepStatus.failed))
            raise PreparationError(f"{step.id} failed unexpectedly: {type(exc).__name__}: {exc}") from exc
        self.put_step(_with_status(step, PreparationStepStatus.completed))
        return result


_GROUP = {
    PreparationStepKind.engine_provision: PreparationStepGroup.engine,
    PreparationStepKind.model_fetch: PreparationStepGroup.model,
    PreparationStepKind.pool_warmup: PreparationStepGroup.pool,
}


#: Characters a step id may not hold (the contract's pattern); a ref's other characters become "-".
_STEP_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._:/-]")


def _shown_ref(ref: str) -> str:
    """A model ref as it may be shown: a URL without user info, query or fragment (they carry secrets)."""
    return redact_url(ref) if "://" in ref else ref


def _step(step_id: str, kind: PreparationStepKind, description: str) -> PreparationStep:
    return PreparationStep(
        id=step_id,
        kind=kind,
        group=_GROUP[kind],
        description=description,
        status=PreparationStepStatus.pending,
    )


def _with_status(step: PreparationStep, status: PreparationStepStatus) -> PreparationStep:
    return msgspec.structs.replace(step, status=status)
