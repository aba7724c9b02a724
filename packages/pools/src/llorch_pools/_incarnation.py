"""One incarnation of a replica: start the engine, health-gate it, watch it while it serves (OC-POOL-3140).

An incarnation ends when the process exits or health checks keep failing.
Its process is stopped (shielded from cancellation) before `serve` returns or
raises, so no engine is orphaned and the next incarnation gets a clean start.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Protocol

import anyio
import httpx

from llorch_contracts.api import EngineKind
from llorch_contracts.config import PoolConfig

from ._errors import HealthChecksFailedError, HealthTimeoutError, ReplicaError
from ._health import EngineFacts, read_llamacpp_facts, wait_healthy
from ._launch import cpu_threads, llamacpp_launch
from ._preparation import PreparedEngine, StagedModel
from ._process import EngineProcess, LaunchSpec
from ._settings import SupervisorSettings


class IncarnationReports(Protocol):
    """What an incarnation tells its replica's supervisor as it goes."""

    def starting(self, endpoint: str, pid: int | None) -> None:
        """The engine was spawned (or attached) and is being health-gated."""

    def ready(self, facts: EngineFacts) -> None:
        """The engine passed its health gate and serves."""

    def slots_free(self, free: int) -> None:
        """A periodic check of a Ready engine read a new free-slot count."""


class ReplicaRunner(Protocol):
    """Runs incarnations of one replica, one at a time (tests use a scripted fake)."""

    async def serve(self, reports: IncarnationReports) -> None:
        """Run one incarnation; return or raise `ReplicaError` when it stops serving; leave no process."""


class EngineRunner:
    """Incarnations of a replica as real engine processes (or an attached external engine)."""

    def __init__(
        self,
        *,
        pool: PoolConfig,
        replica_id: str,
        engine: PreparedEngine,
        model: StagedModel,
        settings: SupervisorSettings,
    ) -> None:
        self.pool = pool
        self.replica_id = replica_id
        self.engine = engine
        self.model = model
        self.settings = settings
        self.engine_kind = EngineKind(str(pool.engine.kind))

    async def serve(self, reports: IncarnationReports) -> None:
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
            reports.starting(endpoint, process.pid if process is not None else None)
            facts = await self._preload(endpoint, process)
            reports.ready(facts)
            await self._monitor(endpoint, process, facts.slots_free, reports)
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

    async def _preload(self, endpoint: str, process: EngineProcess | None) -> EngineFacts:
        """Health-gate a starting replica and read its facts; the outcome is reported either way."""
        settings = self.settings
        started = settings.clock()
        outcome, version = "failure", self.engine.engine_version or "unknown"
        try:
            await wait_healthy(settings.http, endpoint, process, settings.health_timeout_s, settings.clock)
            facts = await self._facts(endpoint)
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

    async def _monitor(
        self, endpoint: str, process: EngineProcess | None, slots_free: int, reports: IncarnationReports
    ) -> None:
        """Watch a Ready replica: an exit or repeated failed checks end it; slot counts stay fresh."""
        settings = self.settings
        failures = 0
        while True:
            with anyio.move_on_after(settings.health_interval_s):
                if process is not None:
                    await process.wait()
                    raise process.exited_error()
                await anyio.sleep_forever()
            try:
                await wait_healthy(settings.http, endpoint, process, timeout_s=0)
                facts = await read_llamacpp_facts(settings.http, endpoint)
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
            if facts.slots_free != slots_free:
                slots_free = facts.slots_free
                reports.slots_free(slots_free)
