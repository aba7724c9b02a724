"""Health gating (OC-POOL-3001): a replica is Ready only after the engine says so.

llama-server refuses connections while it starts, answers `/health` with 503
while it loads the model, and with 200 once it can serve. A process exit or
the timeout ends the wait with a typed, readable error: nothing hangs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from ._errors import HealthTimeoutError
from ._process import EngineProcess

POLL_INTERVAL_S = 0.05


@dataclass(frozen=True, slots=True)
class EngineFacts:
    """What the running engine reports about itself."""

    engine_version: str
    ctx_max: int
    slots_total: int
    slots_free: int


async def wait_healthy(
    client: httpx.AsyncClient,
    base_url: str,
    process: EngineProcess | None,
    timeout_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Return once `/health` answers 200; raise when the process exits or the timeout passes."""
    deadline = clock() + timeout_s
    last = "no answer yet (connection refused)"
    while True:
        if process is not None and process.returncode is not None:
            raise process.exited_error()
        try:
            response = await client.get(f"{base_url}/health", timeout=2.0)
            if response.status_code == 200:
                return
            last = f"/health answered {response.status_code}: {response.text[:200]}"
        except httpx.TransportError as exc:
            last = f"/health unreachable: {type(exc).__name__}"
        if clock() >= deadline:
            raise HealthTimeoutError(f"engine at {base_url} not healthy after {timeout_s:.0f}s ({last})")
        await asyncio.sleep(POLL_INTERVAL_S)


async def read_llamacpp_facts(client: httpx.AsyncClient, base_url: str) -> EngineFacts:
    """Engine version, context size and slots from llama-server's `/props` and `/slots`."""
    props = (await client.get(f"{base_url}/props", timeout=5.0)).raise_for_status().json()
    slots = (await client.get(f"{base_url}/slots", timeout=5.0)).raise_for_status().json()
    build = str(props.get("build_info") or "unknown")
    n_ctx = int(props.get("default_generation_settings", {}).get("n_ctx") or 0)
    total = int(props.get("total_slots") or len(slots))
    free = sum(1 for slot in slots if not slot.get("is_processing"))
    return EngineFacts(engine_version=f"llamacpp:{build}", ctx_max=n_ctx, slots_total=total, slots_free=free)
