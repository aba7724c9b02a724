"""All pools of one pool-managerd: their registry and one supervisor each, in one task group."""

from __future__ import annotations

import anyio
from anyio.abc import TaskStatus

from llorch_contracts.api import EngineKind, PoolState, PoolStatus, Preparation
from llorch_contracts.config import EngineKind as ConfigEngineKind
from llorch_contracts.config import LlorchConfig, PoolConfig

from ._lifecycle import ManagedPool
from ._registry import PoolRegistry
from ._settings import SupervisorSettings


def supervised(pool: PoolConfig) -> bool:
    """Mock-engine pools run inside orchestratord; pool-managerd has no process to supervise for them."""
    return pool.engine.kind != ConfigEngineKind.mock


def initial_status(pool: PoolConfig) -> PoolStatus:
    """A configured pool before anything ran: provisioning if it preloads, otherwise stopped."""
    return PoolStatus(
        pool_id=pool.id,
        engine=EngineKind(str(pool.engine.kind)),
        model_ref=pool.model.ref,
        model_digest=None,
        live=False,
        ready=False,
        draining=False,
        state=PoolState.provisioning if pool.preload and supervised(pool) else PoolState.stopped,
        last_error=None,
        preparation=Preparation(steps=[]),
        replicas=[],
    )


class PoolManager:
    """Owns the registry; `run()` supervises every preloaded pool until cancelled.

    While it runs, `drain()` and `reload()` act on one pool at a time without touching the others.
    """

    def __init__(self, config: LlorchConfig, settings: SupervisorSettings) -> None:
        self.config = config
        self.settings = settings
        self.registry = PoolRegistry(initial_status(p) for p in config.pools)
        self._pools: dict[str, ManagedPool] = {}
        self._started = anyio.Event()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Cancel the caller's scope to stop: every replica process is stopped on the way out."""
        try:
            async with anyio.create_task_group() as group:
                for pool in self.config.pools:
                    managed = self._pools[pool.id] = ManagedPool(pool, self.registry, self.settings, group)
                    if pool.preload and supervised(pool):
                        managed.start()
                task_status.started()
                self._started.set()
                await anyio.sleep_forever()  # drains and reloads run in this group until cancelled
        finally:
            self._pools.clear()
            self._started.set()  # whoever waits in `started()` must not hang on a failed start

    async def started(self) -> None:
        """Return once `run()` has started every preloaded pool (or ended trying)."""
        await self._started.wait()

    def drain(self, pool_id: str, deadline_ms: int) -> None:
        """Start draining a pool (OC-POOL-3152); `PoolBusyError` while a reload of it runs."""
        self._managed(pool_id).drain(deadline_ms)

    def reload(self, pool_id: str, model_ref: str, sha256: str | None = None) -> None:
        """Start switching a pool's model (OC-POOL-3150); `PoolBusyError` while a drain or reload runs."""
        self._managed(pool_id).reload(model_ref, sha256)

    def _managed(self, pool_id: str) -> ManagedPool:
        managed = self._pools.get(pool_id)
        if managed is None:
            raise LookupError(f"pool {pool_id!r} is not configured, or the manager is not running")
        return managed
