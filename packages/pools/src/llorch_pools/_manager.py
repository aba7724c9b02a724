"""All pools of one pool-managerd: their registry and one supervisor each, in one task group."""

from __future__ import annotations

import anyio

from llorch_contracts.api import EngineKind, PoolState, PoolStatus, Preparation
from llorch_contracts.config import EngineKind as ConfigEngineKind
from llorch_contracts.config import LlorchConfig, PoolConfig

from ._registry import PoolRegistry
from ._settings import SupervisorSettings
from ._supervisor import PoolSupervisor


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
    """Owns the registry; `run()` supervises every preloaded pool until cancelled."""

    def __init__(self, config: LlorchConfig, settings: SupervisorSettings) -> None:
        self.config = config
        self.settings = settings
        self.registry = PoolRegistry(initial_status(p) for p in config.pools)

    async def run(self) -> None:
        """Cancel the caller's scope to stop: every replica process is stopped on the way out."""
        async with anyio.create_task_group() as pools:
            for pool in self.config.pools:
                if pool.preload and supervised(pool):
                    pools.start_soon(PoolSupervisor(pool, self.registry, self.settings).run)
