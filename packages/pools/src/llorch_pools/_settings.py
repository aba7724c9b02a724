"""What every supervisor shares: dependencies and timing, injected so tests control them."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from llorch_contracts.config import SupervisionConfig

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
    clock: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.Random)
    observer: SupervisionObserver = field(default_factory=NullObserver)
