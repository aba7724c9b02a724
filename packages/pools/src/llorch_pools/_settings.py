"""What every supervisor shares: dependencies and timing, injected so tests control them."""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx

from llorch_contracts.config import LlorchConfig, SupervisionConfig

from ._observer import NullObserver, SupervisionObserver
from ._ports import PortAllocator
from ._preparation import Preparer


@dataclass(kw_only=True)
class SupervisorSettings:
    """Dependencies and timing for pool and replica supervisors."""

    preparer: Preparer
    ports: PortAllocator
    http: httpx.AsyncClient
    runtime_dir: Path
    supervision: SupervisionConfig
    health_timeout_s: float
    health_interval_s: float
    health_failure_threshold: int
    environ: Mapping[str, str]
    #: Monotonic seconds; with `sleep` it paces restarts, so a fake pair drives supervision in tests.
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep
    #: Unix seconds, only to publish when an open breaker's trial is due (`next_trial_ms`).
    wall_clock: Callable[[], float] = time.time
    rng: random.Random = field(default_factory=random.Random)
    observer: SupervisionObserver = field(default_factory=NullObserver)

    @classmethod
    def from_config(
        cls,
        config: LlorchConfig,
        *,
        preparer: Preparer,
        http: httpx.AsyncClient,
        environ: Mapping[str, str],
        runtime_dir: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        observer: SupervisionObserver | None = None,
    ) -> SupervisorSettings:
        """Settings from the `pool_managerd` section of the config."""
        pm = config.pool_managerd
        return cls(
            preparer=preparer,
            ports=PortAllocator(pm.engine_ports.start, pm.engine_ports.end),
            http=http,
            runtime_dir=runtime_dir or Path(pm.runtime_dir).expanduser(),
            supervision=pm.supervision,
            health_timeout_s=pm.health_timeout_ms / 1000,
            health_interval_s=pm.health_interval_ms / 1000,
            health_failure_threshold=pm.health_failure_threshold,
            environ=environ,
            clock=clock,
            observer=observer or NullObserver(),
        )
