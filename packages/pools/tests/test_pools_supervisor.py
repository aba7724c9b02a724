"""Pools brought to Ready with the real llama-server, and every failure path ending Unready with a reason."""

from __future__ import annotations

import os
import signal
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import httpx
import msgspec
import pytest

from llorch_config import parse_config
from llorch_contracts.api import BreakerState, PoolState, PoolStatus, ReplicaState
from llorch_contracts.config import LlorchConfig
from llorch_pools.testing import RecordingObserver, StaticPreparer, run_pools, until_pool
from llorch_provisioning import EngineInstall

FAST = (
    "pool_managerd:\n"
    "  health_timeout_ms: 1500\n  health_interval_ms: 100\n"
    "  supervision:\n"
    "    {backoff_initial_ms: 20, backoff_max_ms: 50, restart_limit: 3, restart_window_ms: 60000}\n"
)


def pool_config(ports: tuple[int, int], replicas: int = 1) -> LlorchConfig:
    return parse_config(
        "profile: dev\npools:\n  - id: p\n    allow_cpu_inference: true\n"
        f"    replicas: {replicas}\n    ctx_max: 512\n"
        + FAST
        + f"  engine_ports: {{start: {ports[0]}, end: {ports[1]}}}\n"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.req("OC-POOL-3001", "OC-POOL-3192")
async def test_real_llama_server_reaches_ready_and_is_stopped_on_exit(
    llamacpp: EngineInstall, tiny_model_path: Path, tmp_path: Path
) -> None:
    port = free_port()
    preparer = StaticPreparer(binary=llamacpp.binary_path, model=tiny_model_path)
    async with run_pools(preparer, tmp_path, pool_config((port, port + 20))) as manager:
        pool = await until_pool(manager, "p", lambda p: p.ready)
        replica = pool.replicas[0]
        assert pool.state == PoolState.ready
        assert replica.state == ReplicaState.ready
        assert replica.engine_version is not None
        assert replica.engine_version.startswith("llamacpp:b")
        assert replica.engine_version.endswith("-cpu")
        assert replica.device_mask == "cpu"
        assert (replica.slots_total, replica.slots_free, replica.ctx_max) == (1, 1, 512)
        assert replica.model_digest == pool.model_digest
        assert pool.model_digest is not None
        assert pool.model_digest.startswith("sha256:")
        assert pool.preparation.steps == []
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{replica.endpoint}/health")).status_code == 200
        pid = replica.pid
        assert isinstance(pid, int)
        assert pid_alive(pid)
    assert not pid_alive(pid), "no orphan llama-server after shutdown"


@pytest.mark.req("OC-POOL-3003", "OC-POOL-3183")
async def test_engine_that_exits_leaves_the_pool_unready_with_its_log(tmp_path: Path) -> None:
    port = free_port()
    # llama.cpp's log format: only its error-level lines reach last_error (OC-POOL-3183).
    crash = script(
        tmp_path,
        "crash",
        "echo '0.00.000.050 I starting' >&2; echo '0.00.000.100 E boom: cannot load model' >&2; "
        "echo 'raw bytes that are no llama.cpp message' >&2; exit 3",
    )
    preparer = StaticPreparer(binary=crash, model=crash)
    async with run_pools(preparer, tmp_path, pool_config((port, port + 5))) as manager:
        pool = await until_pool(manager, "p", lambda p: p.last_error is not None)
        assert pool.state == PoolState.unready
        assert not pool.ready
        assert pool.last_error is not None
        assert "exited with status 3" in pool.last_error
        assert "boom: cannot load model" in pool.last_error
        assert "starting" not in pool.last_error
        assert "raw bytes" not in pool.last_error


@pytest.mark.req("OC-POOL-3011", "OC-POOL-3143", "OC-POOL-3145", "OC-POOL-3195")
async def test_an_engine_that_never_starts_opens_the_breaker(tmp_path: Path) -> None:
    port = free_port()
    crash = script(tmp_path, "crash", "exit 1")
    preparer = StaticPreparer(binary=crash, model=crash)
    async with run_pools(preparer, tmp_path, pool_config((port, port + 5))) as manager:
        pool = await until_pool(
            manager, "p", lambda p: bool(p.replicas) and p.replicas[0].state == ReplicaState.failed
        )
        replica = pool.replicas[0]
        assert replica.restarts == 4, "breaker_threshold (5) failed starts: the first start and 4 restarts"
        assert replica.breaker == BreakerState.open
        assert "5 failed starts in a row" in (replica.last_error or "")
        assert "exited with status 1" in (replica.last_error or "")
        assert isinstance(replica.next_trial_ms, int)
        # breaker_timeout_ms is 300 s by default: the trial is due about then, in epoch ms.
        assert 200_000 < replica.next_trial_ms - time.time() * 1000 <= 300_000
        assert pool.state == PoolState.unready
        assert not pool.ready


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


def serving_after(restarts: int) -> Callable[[PoolStatus], bool]:
    return lambda pool: pool.ready and pool.replicas[0].restarts == restarts


@pytest.mark.req("OC-POOL-3142", "OC-POOL-3146", "OC-POOL-3196")
async def test_killed_llama_server_comes_back_and_backoff_resets_after_stable_readiness(
    llamacpp: EngineInstall, tiny_model_path: Path, tmp_path: Path
) -> None:
    port = free_port()
    config = parse_config(
        "profile: dev\npools:\n  - id: p\n    allow_cpu_inference: true\n    ctx_max: 512\n"
        "pool_managerd:\n  health_timeout_ms: 30000\n  health_interval_ms: 100\n"
        "  supervision: {backoff_initial_ms: 200, backoff_max_ms: 5000, backoff_jitter_pct: 0,"
        " stable_run_ms: 3000}\n"
        f"  engine_ports: {{start: {port}, end: {port + 20}}}\n"
    )
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        await anyio.sleep(seconds)

    observer = RecordingObserver()
    preparer = StaticPreparer(binary=llamacpp.binary_path, model=tiny_model_path)
    async with run_pools(preparer, tmp_path, config, observer=observer, sleep=sleep) as manager:
        with manager.registry.watch(maxsize=10_000) as watcher:
            pids: list[int] = []
            for restarts, hold_ready_s in enumerate([0.0, 0.0, 4.0]):
                pool = await until_pool(manager, "p", serving_after(restarts), timeout_s=60)
                replica = pool.replicas[0]
                assert isinstance(replica.pid, int)
                pids.append(replica.pid)
                # Ready for longer than stable_run_ms (3 s) before the third kill: its backoff starts over.
                await anyio.sleep(hold_ready_s)
                kill(replica.pid)
            pool = await until_pool(manager, "p", serving_after(3), timeout_s=60)
        replica = pool.replicas[0]
        assert replica.replica_id == "p-r0"
        assert replica.pid not in pids
        assert len(set(pids)) == 3
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{replica.endpoint}/health")).status_code == 200
    assert delays == [0.2, 0.4, 0.2]
    assert observer.restart_reasons == ["signal"] * 3
    seen: list[PoolStatus] = []
    while not watcher.queue.empty():
        seen.append(watcher.queue.get_nowait()[1])
    backoffs = [r for p in seen for r in p.replicas if r.state == ReplicaState.backoff]
    assert backoffs, "the pool view showed the replica in backoff"
    assert all("was killed by signal 9" in (r.last_error or "") for r in backoffs)
    assert any("was killed by signal 9" in (p.last_error or "") for p in seen), "and the pool's cause"


async def test_engine_that_never_becomes_healthy_times_out_and_is_killed(tmp_path: Path) -> None:
    port = free_port()
    hang = script(tmp_path, "hang", f"echo $$ > {tmp_path}/pid; exec sleep 600")
    preparer = StaticPreparer(binary=hang, model=hang)
    async with run_pools(preparer, tmp_path, pool_config((port, port + 5))) as manager:
        pool = await until_pool(manager, "p", lambda p: p.last_error is not None)
        assert "not healthy after" in (pool.last_error or "")
        first_pid = int((tmp_path / "pid").read_text())
        assert not pid_alive(first_pid), "a replica that failed its health gate is killed"


async def test_port_range_in_use_is_a_readable_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = int(busy.getsockname()[1])
        preparer = StaticPreparer(binary=Path("/bin/true"), model=Path("/bin/true"))
        async with run_pools(preparer, tmp_path, pool_config((port, port))) as manager:
            pool = await until_pool(manager, "p", lambda p: p.last_error is not None)
    assert "no free engine port" in (pool.last_error or "")
    assert pool.state == PoolState.unready


@pytest.mark.parametrize(
    ("failure", "step_prefix"),
    [({"fail_engine": "binary /x is missing"}, "engine:"), ({"fail_model": "digest mismatch"}, "model:")],
)
async def test_preparation_failure_marks_the_step_failed(
    tmp_path: Path, failure: dict[str, str], step_prefix: str
) -> None:
    preparer = StaticPreparer(binary=Path("/bin/true"), model=Path("/bin/true"), **failure)  # type: ignore[arg-type]
    port = free_port()
    async with run_pools(preparer, tmp_path, pool_config((port, port + 1))) as manager:
        pool = await until_pool(manager, "p", lambda p: p.last_error is not None)
    assert pool.last_error == next(iter(failure.values()))
    assert pool.state == PoolState.unready
    failed = [s for s in pool.preparation.steps if s.status == "failed"]
    assert [s.id.startswith(step_prefix) for s in failed] == [True]


async def test_hardware_problem_fails_fast_before_provisioning(tmp_path: Path) -> None:
    preparer = StaticPreparer(
        binary=None, model=Path("/x"), fail_hardware="home profile is GPU-only; no GPU found"
    )
    port = free_port()
    async with run_pools(preparer, tmp_path, pool_config((port, port + 1))) as manager:
        pool = await until_pool(manager, "p", lambda p: p.last_error is not None)
    assert pool.last_error == "home profile is GPU-only; no GPU found"
    assert pool.preparation.steps == []


@pytest.mark.req("OC-POOL-3190")
def test_engine_dies_with_a_hard_killed_pool_manager(tmp_path: Path) -> None:
    """Even SIGKILL of pool-managerd (no cleanup code runs) leaves no engine behind."""
    import subprocess
    import sys

    child = tmp_path / "pid"
    launcher = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from llorch_pools import EngineProcess, LaunchSpec\n"
        "async def main():\n"
        f"    argv = ('/bin/sh', '-c', 'echo $$ > {child}; exec sleep 600')\n"
        f"    spec = LaunchSpec(argv=argv, log_path=Path('{tmp_path}/log'))\n"
        "    await EngineProcess.start(spec)\n"
        "    await asyncio.sleep(600)\n"
        "asyncio.run(main())\n"
    )
    manager = subprocess.Popen([sys.executable, "-c", launcher])
    try:
        deadline = time.monotonic() + 20
        while not child.exists() or not child.read_text().strip():
            assert time.monotonic() < deadline, "the engine never started"
            time.sleep(0.05)
        engine_pid = int(child.read_text())
        assert pid_alive(engine_pid)
        manager.kill()
        manager.wait()
        deadline = time.monotonic() + 5
        while pid_alive(engine_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_alive(engine_pid)
    finally:
        manager.kill()


def test_cpu_replicas_share_the_cores_instead_of_each_taking_all() -> None:
    from llorch_pools._launch import cpu_threads

    assert cpu_threads([], replicas=2, extra_flags=[], cpus=2) == 1
    assert cpu_threads([], replicas=1, extra_flags=[], cpus=8) == 8
    assert cpu_threads([], replicas=4, extra_flags=[], cpus=2) == 1
    assert cpu_threads([0], replicas=2, extra_flags=[], cpus=8) is None, (
        "GPU replicas keep llama.cpp's choice"
    )
    assert cpu_threads([], replicas=2, extra_flags=["--threads", "3"], cpus=8) is None, "explicit flags win"


@pytest.mark.req("OC-POOL-3003", "ORCH-3330")
async def test_a_model_step_shows_a_url_ref_without_its_secrets_and_within_the_id_pattern(
    tmp_path: Path,
) -> None:
    ref = "https://user:SECRET1@models.example/m.gguf?sig=SECRET2"
    preparer = StaticPreparer(binary=Path("/bin/true"), model=Path("/bin/true"), fail_model="no download")
    port = free_port()
    config = pool_config((port, port + 1))
    pools = [
        msgspec.structs.replace(p, model=msgspec.structs.replace(p.model, ref=ref)) for p in config.pools
    ]
    async with run_pools(preparer, tmp_path, msgspec.structs.replace(config, pools=pools)) as manager:
        pool = await until_pool(manager, "p", lambda p: p.last_error is not None)
    steps = [s for s in pool.preparation.steps if s.kind == "model_fetch"]
    assert len(steps) == 1
    assert "SECRET" not in steps[0].id
    assert "SECRET" not in steps[0].description
    # The pool view must decode on orchestratord's side: ids follow the contract's pattern.
    msgspec.json.decode(msgspec.json.encode(pool), type=PoolStatus)
