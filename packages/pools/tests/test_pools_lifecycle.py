"""Drain and reload against the real llama-server: stopped engines, switched models, rollbacks."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import anyio
import httpx
import pytest

from llorch_config import parse_config
from llorch_contracts.api import PoolState, PoolStatus, ReplicaState
from llorch_contracts.config import LlorchConfig
from llorch_pools import PoolBusyError, PoolManager
from llorch_pools.testing import StaticPreparer, run_pools, until_pool
from llorch_provisioning import EngineInstall, sha256_file
from llorch_testkit import tiny_model

FAST = (
    "pool_managerd:\n"
    "  health_timeout_ms: 3000\n  health_interval_ms: 100\n"
    "  supervision:\n"
    "    {backoff_initial_ms: 20, backoff_max_ms: 50, restart_limit: 3, restart_window_ms: 60000}\n"
)


def pool_config(ctx_max: int = 512) -> LlorchConfig:
    port = free_port()
    return parse_config(
        f"profile: dev\npools:\n  - id: p\n    allow_cpu_inference: true\n    ctx_max: {ctx_max}\n"
        + FAST
        + f"  engine_ports: {{start: {port}, end: {port + 20}}}\n"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def pid_of(pool: PoolStatus) -> int:
    pid = pool.replicas[0].pid
    assert isinstance(pid, int)
    return pid


def digest(path: Path) -> str:
    return f"sha256:{sha256_file(path)}"


def stopped(pool: PoolStatus) -> bool:
    return pool.state == PoolState.stopped


async def ready_pool(manager: PoolManager) -> PoolStatus:
    return await until_pool(manager, "p", lambda p: p.ready)


@pytest.fixture
def preparer(llamacpp: EngineInstall, tiny_model_path: Path) -> StaticPreparer:
    return StaticPreparer(binary=llamacpp.binary_path, model=tiny_model_path)


@pytest.fixture(scope="module")
def second_model(llamacpp: EngineInstall, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model(llamacpp, tmp_path_factory.mktemp("second"), seed=1)


@pytest.mark.req("OC-POOL-3152")
async def test_drain_publishes_draining_at_once_then_stops_the_engine(
    preparer: StaticPreparer, tmp_path: Path
) -> None:
    async with run_pools(preparer, tmp_path, pool_config()) as manager:
        pid = pid_of(await ready_pool(manager))
        manager.drain("p", 10_000)
        draining = manager.registry.get("p")
        assert draining is not None
        assert (draining.draining, draining.ready, draining.state) == (True, False, PoolState.draining)
        assert draining.replicas[0].state == ReplicaState.draining
        pool = await until_pool(manager, "p", stopped)
        assert (pool.live, pool.ready, pool.draining, pool.replicas) == (False, False, False, [])
        assert not pid_alive(pid), "the drained replica's llama-server is gone"


async def generate(endpoint: str, n_predict: int) -> httpx.Response | httpx.HTTPError:
    """A long completion on the engine, as a dispatched task would run it."""
    body = {"prompt": "Once upon a time", "n_predict": n_predict, "ignore_eos": True}
    async with httpx.AsyncClient(timeout=60) as client:
        try:
            return await client.post(f"{endpoint}/completion", json=body)
        except httpx.HTTPError as exc:
            return exc


async def until_busy(endpoint: str) -> None:
    async with httpx.AsyncClient() as client:
        with anyio.fail_after(10):
            while True:
                slots = (await client.get(f"{endpoint}/slots")).json()
                if any(slot["is_processing"] for slot in slots):
                    return
                await anyio.sleep(0.01)


@pytest.mark.req("OC-POOL-3152")
@pytest.mark.parametrize(("n_predict", "deadline_ms", "finishes"), [(1500, 60_000, True), (3500, 300, False)])
async def test_drain_waits_for_busy_slots_until_the_deadline(
    preparer: StaticPreparer, tmp_path: Path, n_predict: int, deadline_ms: int, finishes: bool
) -> None:
    outcome: list[httpx.Response | httpx.HTTPError] = []
    async with run_pools(preparer, tmp_path, pool_config(ctx_max=4096)) as manager:
        pool = await ready_pool(manager)
        pid, endpoint = pid_of(pool), pool.replicas[0].endpoint

        async def work() -> None:
            outcome.append(await generate(endpoint, n_predict))

        async with anyio.create_task_group() as group:
            group.start_soon(work)
            await until_busy(endpoint)
            manager.drain("p", deadline_ms)
            await until_pool(manager, "p", stopped)
        assert not pid_alive(pid)
    (result,) = outcome
    if finishes:
        assert isinstance(result, httpx.Response), "the drain waited for the running request"
        assert result.json()["tokens_predicted"] == n_predict
    else:
        assert isinstance(result, httpx.HTTPError), "the deadline cut the running request short"


@pytest.mark.req("OC-POOL-3150")
async def test_reload_switches_to_the_new_model(
    preparer: StaticPreparer, second_model: Path, tmp_path: Path
) -> None:
    async with run_pools(preparer, tmp_path, pool_config()) as manager:
        old = await ready_pool(manager)
        ref, new_digest = f"file:{second_model}", digest(second_model)
        assert old.model_digest != new_digest
        manager.reload("p", ref, new_digest)
        pool = await until_pool(manager, "p", lambda p: p.ready and p.model_digest == new_digest)
        assert pool.model_ref == ref
        assert pool.last_error is None
        assert [(r.model_ref, r.model_digest) for r in pool.replicas] == [(ref, new_digest)]
        assert not pid_alive(pid_of(old))
        assert pid_alive(pid_of(pool))


@pytest.mark.req("OC-POOL-3150")
@pytest.mark.parametrize("wrong", ["missing", "digest"])
async def test_reload_to_a_model_that_cannot_be_staged_never_interrupts_serving(
    preparer: StaticPreparer, second_model: Path, tmp_path: Path, wrong: str
) -> None:
    async with run_pools(preparer, tmp_path, pool_config()) as manager:
        old = await ready_pool(manager)
        with manager.registry.watch() as watcher:
            if wrong == "missing":
                manager.reload("p", f"file:{tmp_path}/absent.gguf")
            else:
                manager.reload("p", f"file:{second_model}", "sha256:" + "0" * 64)
            pool = await until_pool(manager, "p", lambda p: p.last_error is not None)
            seen = [watcher.queue.get_nowait()[1] for _ in range(watcher.queue.qsize())]
        assert "still serving" in (pool.last_error or "")
        assert ("absent.gguf" if wrong == "missing" else "does not match") in (pool.last_error or "")
        assert pool.ready
        assert (pool.model_ref, pool.model_digest, pid_of(pool)) == (
            old.model_ref,
            old.model_digest,
            pid_of(old),
        )
        assert all(change.ready and not change.draining for change in seen)


@pytest.mark.req("OC-POOL-3150")
async def test_reload_whose_replicas_fail_rolls_back_to_the_previous_model(
    preparer: StaticPreparer, tmp_path: Path
) -> None:
    not_a_model = tmp_path / "not-a-model.gguf"
    not_a_model.write_bytes(b"this is not a GGUF file\n")
    async with run_pools(preparer, tmp_path, pool_config()) as manager:
        old = await ready_pool(manager)
        manager.reload("p", f"file:{not_a_model}")
        pool = await until_pool(manager, "p", lambda p: p.ready and "rolled back" in (p.last_error or ""))
        assert (pool.model_ref, pool.model_digest) == (old.model_ref, old.model_digest)
        assert pool.replicas[0].model_digest == old.model_digest
        assert "not-a-model.gguf" in (pool.last_error or "")
        assert pid_alive(pid_of(pool))


@pytest.mark.req("OC-POOL-3153")
async def test_drained_pool_stays_stopped_until_a_reload_to_its_model_restarts_it(
    preparer: StaticPreparer, tmp_path: Path
) -> None:
    async with run_pools(preparer, tmp_path, pool_config()) as manager:
        old = await ready_pool(manager)
        manager.drain("p", 1_000)
        await until_pool(manager, "p", stopped)
        await anyio.sleep(0.5)
        pool = manager.registry.get("p")
        assert pool is not None
        assert stopped(pool)
        assert pool.replicas == []
        manager.reload("p", old.model_ref)
        pool = await ready_pool(manager)
        assert pool.model_digest == old.model_digest
        assert pid_of(pool) != pid_of(old)


async def test_second_action_while_a_reload_runs_is_refused(
    preparer: StaticPreparer, second_model: Path, tmp_path: Path
) -> None:
    async with run_pools(preparer, tmp_path, pool_config()) as manager:
        await ready_pool(manager)
        manager.reload("p", f"file:{second_model}")
        with pytest.raises(PoolBusyError, match="reload of pool p"):
            manager.reload("p", f"file:{second_model}")
        with pytest.raises(PoolBusyError):
            manager.drain("p", 1_000)
        await until_pool(manager, "p", lambda p: p.ready and p.model_ref == f"file:{second_model}")
        with anyio.fail_after(5):
            while True:  # the reload ends a moment after its replicas are Ready
                try:
                    manager.drain("p", 1_000)
                    break
                except PoolBusyError:
                    await anyio.sleep(0.02)
        manager.drain("p", 60_000)  # a drain of a draining pool is accepted and keeps the first deadline
        await until_pool(manager, "p", stopped, timeout_s=10)
