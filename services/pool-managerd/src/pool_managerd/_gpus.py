"""`/v2/gpus`: the machine's NVIDIA GPUs as NVML reports them (OC-POOL-3130)."""

from __future__ import annotations

import anyio.to_thread
from litestar import get
from litestar.di import NamedDependency

from llorch_contracts.api import GpuInventory
from llorch_pools import Preparer


@get("/v2/gpus")
async def gpus(preparer: NamedDependency[Preparer]) -> GpuInventory:
    """NVML calls block, so they run in a worker thread."""
    return await anyio.to_thread.run_sync(preparer.gpu_inventory)
