"""The whole stack in-process for tests: pool-managerd (real llama-server replicas) and orchestratord."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from llorch_adapters import WorkerAdapter
from llorch_config import parse_config
from llorch_pools.testing import StaticPreparer
from orchestratord import create_app as create_orchestratord
from pool_managerd import create_app as create_pool_managerd

from ._server import free_port, serving

READY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Stack:
    """Base URLs of a running pool-managerd and orchestratord."""

    pool_managerd: str
    orchestratord: str


def stack_config(pools_yaml: str, *, orchestratord_yaml: str = "") -> str:
    """A dev config whose daemons bind free ports.

    `pools_yaml` is the body of the `pools:` list; `orchestratord_yaml` adds indented keys to the
    `orchestratord:` section (for example `"  queue: {capacity: 2}\\n"`).
    """
    pm_port, engine_port = free_port(), free_port()
    return (
        "profile: dev\n"
        f"pool_managerd:\n  bind: 127.0.0.1:{pm_port}\n"
        f"  engine_ports: {{start: {engine_port}, end: {engine_port + 40}}}\n"
        f"orchestratord:\n  pool_managerd_url: http://127.0.0.1:{pm_port}\n"
        + orchestratord_yaml
        + "pools:\n"
        + pools_yaml
    )


@contextmanager
def running_stack(
    config_text: str,
    engine_binary: Path,
    model: Path,
    runtime_dir: Path,
    *,
    adapters: Mapping[str, WorkerAdapter] | None = None,
) -> Iterator[Stack]:
    """Start both services on `config_text`; returns once orchestratord sees every pool Ready.

    `adapters` replaces orchestratord's engine adapters (for example a wrapper around the real one).
    """
    config = parse_config(config_text)
    pm_port = int(config.pool_managerd.bind.rsplit(":", 1)[1])
    preparer = StaticPreparer(binary=engine_binary, model=model)
    environ = {"PATH": os.environ.get("PATH", ""), "HOME": str(runtime_dir)}
    pm_app = create_pool_managerd(config, preparer=preparer, environ=environ)
    with (
        serving(pm_app, pm_port) as pm_url,
        serving(
            create_orchestratord(config, adapters=adapters, state_dir=runtime_dir / "orchestratord")
        ) as orch_url,
    ):
        _wait_ready(orch_url, [p.id for p in config.pools])
        yield Stack(pool_managerd=pm_url, orchestratord=orch_url)


def _wait_ready(orch_url: str, pool_ids: list[str]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    with httpx.Client(base_url=orch_url, timeout=5) as client:
        while time.monotonic() < deadline:
            pools = {p["pool_id"]: p for p in client.get("/v2/pools").json()}
            if all(pools.get(pool_id, {}).get("ready") for pool_id in pool_ids):
                return
            time.sleep(0.05)
    raise RuntimeError(f"pools {pool_ids} not ready in orchestratord after {READY_TIMEOUT_S:.0f}s: {pools}")
