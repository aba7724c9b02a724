"""One replica's life: start, health-gate, serve, and restart with backoff when it dies (OC-POOL-3010/3011).

An incarnation ends when the process exits or health checks keep failing;
every incarnation's process is stopped (shielded from cancellation) before
the next one starts or the supervisor goes away, so no engine is orphaned.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass

import anyio
import httpx
import msgspec
from msgspec import UNSET

from llorch_contracts.api import EngineKind, PoolState, Preparation, ReplicaState, ReplicaStatus
from llorch_contracts.config import PoolConfig

from ._backoff import RestartPolicy
from ._errors import HealthChecksFailedError, HealthTimeoutError, ReplicaError
from ._health import EngineFacts, read_llamacpp_facts, wait_healthy
from ._launch import cpu_threads, device_mask, llamacpp_launch
from ._preparation import PreparedEngine, StagedModel
from ._process import EngineProcess, LaunchSpec
from ._registry import PoolRegistry
from ._settings import SupervisorSettings

log = logging.getLogger("llorch.pools")
# The contract lists outstanding preparation steps only: a Ready pool has none.
_NO_STEPS = Preparation(steps=[])


@dataclass(frozen=True, slots=True)
class _Incarnation:
    """One running process of a replica (or the attached URL of an external engine)."""

    endpoint: str
    process: EngineProcess | None
    restarts: int


class ReplicaSupervisor:
    """Keeps one replica of a pool serving."""

    def __init__(
        self,
        *,
        pool: PoolConfig,
        replica_id: str,
        engine: PreparedEngine,
        model: StagedModel,
        registry: PoolRegistry,
        settings: SupervisorSettings,
    ) -> None:
        self.pool = pool
        self.replica_id = replica_id
        self.engine = engine
        self.model = model
        self.registry = registry
        self.settings = settings
        self.engine_kind = EngineKind(str(pool.engine.kind))

    async def run(self) -> None:
        """Serve, and after each failure restart with backoff until a restart storm gives up."""
        policy = RestartPolicy(self.settings.supervision, self.settings.rng)
        restarts = 0
        while True:
            started = self.settings.clock()
            try:
                await self._serve(restarts)
                error, reason = "replica stopped unexpectedly", "process_exit"
            except ReplicaError as exc:
                error, reason = str(exc), exc.reason
            now = self.settings.clock()
            policy.record_failure(now * 1000, (now - started) * 1000)
            log.warning("pool %s replica %s failed: %s", self.pool.id, self.replica_id, error)
            if policy.storm():
                error += (
                    f" (restart storm: giving up after {restarts + 1} failures; reload the pool to retry)"
                )
                self._down(ReplicaState.failed, error, restarts)
                return
            self._down(ReplicaState.backoff, error, restarts)
            await anyio.sleep(policy.delay_ms() / 1000)
            restarts += 1
            self.settings.observer.restarted(
                engine=self.engine_kind,
                engine_version=self.engine.engine_version or "unknown",
                pool_id=self.pool.id,
                replica_id=self.replica_id,
                reason=reason,
            )

    async def _serve(self, restarts: int) -> None:
        """One incarnation: returns or raises when it stops serving; its process never outlives it."""
        ports = self.settings.ports
        port = ports.acquire() if self.engine.binary_path is not None else None
        process = None
        try:
            if port is not None:
                process = await EngineProcess.start(self._launch_spec(port))
                endpoint = f"http://127.0.0.1:{port}"
            elif self.engine.base_url is not None:
                endpoint = self.engine.base_url
            else:
                raise ReplicaError("the engine has neither a binary to start nor a URL to attach to")
            life = _Incarnation(endpoint, process, restarts)
            self._put(self._status(life, ReplicaState.starting))
            facts = await self._preload(life)
            status = self._status(life, ReplicaState.ready, facts)
            self._put(status)
            self.registry.update(self.pool.id, state=PoolState.ready, last_error=None, preparation=_NO_STEPS)
            log.info(
                "pool %s replica %s ready at %s (%s)",
                self.pool.id,
                self.replica_id,
                endpoint,
                facts.engine_version,
            )
            await self._monitor(life, status)
        finally:
            with anyio.CancelScope(shield=True):
                if process is not None:
                    await process.stop()
                if port is not None:
                    ports.release(port)

    def _launch_spec(self, port: int) -> LaunchSpec:
        assert self.engine.binary_path is not None
        return llamacpp_launch(
            binary=self.engine.binary_path,
            model=self.model.path,
            port=port,
            ctx_max=self.pool.ctx_max,
            slots=self.pool.slots_per_replica,
            devices=self.pool.devices,
            extra_flags=self.pool.flags,
            log_path=self.settings.runtime_dir / f"{self.replica_id}.log",
            environ=self.settings.environ,
            threads=cpu_threads(self.pool.devices, self.pool.replicas, self.pool.flags, os.cpu_count() or 1),
        )

    async def _preload(self, life: _Incarnation) -> EngineFacts:
        """Health-gate a starting replica and read its facts; the outcome is reported either way."""
        settings = self.settings
        started = settings.clock()
        outcome, version = "failure", self.engine.engine_version or "unknown"
        try:
            await wait_healthy(
                settings.http, life.endpoint, life.process, settings.health_timeout_s, settings.clock
            )
            facts = await self._facts(life.endpoint)
            # The variant belongs in the version: a CPU and a CUDA build never count as the same engine.
            variant = "-cuda" if self.pool.devices else "-cpu"
            facts = dataclasses.replace(facts, engine_version=facts.engine_version + variant)
            outcome, version = "success", facts.engine_version
            return facts
        except HealthTimeoutError:
            outcome = "timeout"
            raise
        finally:
            settings.observer.preloaded(
                engine=self.engine_kind,
                engine_version=version,
                pool_id=self.pool.id,
                outcome=outcome,
                duration_s=settings.clock() - started,
            )

    async def _facts(self, endpoint: str) -> EngineFacts:
        try:
            return await read_llamacpp_facts(self.settings.http, endpoint)
        except (httpx.HTTPError, ValueError) as exc:
            raise ReplicaError(
                f"engine at {endpoint} is healthy but its /props or /slots failed: {exc}"
            ) from exc

    async def _monitor(self, life: _Incarnation, status: ReplicaStatus) -> None:
        """Watch a Ready replica: an exit or repeated failed checks end it; slot counts stay fresh."""
        settings = self.settings
        failures = 0
        while True:
            with anyio.move_on_after(settings.health_interval_s):
                if life.process is not None:
                    await life.process.wait()
                    raise life.process.exited_error()
                await anyio.sleep_forever()
            try:
                await wait_healthy(settings.http, life.endpoint, life.process, timeout_s=0)
                facts = await read_llamacpp_facts(settings.http, life.endpoint)
                failures = 0
            except (ReplicaError, httpx.HTTPError, ValueError) as exc:
                failures += 1
                settings.observer.health_check_failed(
                    engine=self.engine_kind, pool_id=self.pool.id, replica_id=self.replica_id
                )
                if failures >= settings.health_failure_threshold:
                    raise HealthChecksFailedError(
                        f"{failures} health checks in a row failed; last: {exc}"
                    ) from exc
                continue
            if facts.slots_free != status.slots_free:
                status = msgspec.structs.replace(status, slots_free=facts.slots_free)
                self._put(status)

    def _down(self, state: ReplicaState, error: str, restarts: int) -> None:
        """Record a replica that is not serving; the pool turns Unready when nothing else serves."""
        pool = self.registry.get(self.pool.id)
        previous = next((r for r in pool.replicas if r.replica_id == self.replica_id), None) if pool else None
        endpoint = previous.endpoint if previous else "http://127.0.0.1:0"
        status = self._status(_Incarnation(endpoint, None, restarts), state)
        self._put(msgspec.structs.replace(status, last_error=error[:2048]))
        pool = self.registry.get(self.pool.id)
        if pool is not None and not pool.ready:
            self.registry.update(self.pool.id, state=PoolState.unready, last_error=error)

    def _put(self, status: ReplicaStatus) -> None:
        self.registry.put_replica(self.pool.id, status)

    def _status(
        self, life: _Incarnation, state: ReplicaState, facts: EngineFacts | None = None
    ) -> ReplicaStatus:
        return ReplicaStatus(
            replica_id=self.replica_id,
            endpoint=life.endpoint,
            engine=self.engine_kind,
            engine_version=facts.engine_version if facts else self.engine.engine_version,
            model_ref=self.pool.model.ref,
            model_digest=self.model.digest,
            ctx_max=facts.ctx_max if facts else self.pool.ctx_max,
            slots_total=facts.slots_total if facts else self.pool.slots_per_replica,
            slots_free=facts.slots_free if facts else 0,
            device_mask=device_mask(self.pool.devices),
            state=state,
            last_error=None,
            restarts=life.restarts,
            pid=life.process.pid if life.process is not None else UNSET,
        )
