"""How a llama-server replica is started (OC-POOL-3104, OC-TEST-7002).

One slot per replica, no continuous batching and `--metrics`: a replica then
decodes one request at a time, which is what makes a seed reproducible and
lets orchestratord count free slots exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from ._process import LaunchSpec

# llama-server reads LLAMA_ARG_* variables; a clean environment keeps an
# operator's shell from silently changing how replicas run.
_PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")


_THREAD_FLAGS = frozenset({"-t", "--threads"})


def cpu_threads(devices: Sequence[int], replicas: int, extra_flags: Sequence[str], cpus: int) -> int | None:
    """Decode threads for one CPU replica: the cores shared out among the pool's replicas.

    llama-server's default takes every core per process, so replicas on one machine thrash each
    other (measured: 2 replicas on 2 cores ran 6x slower). GPU replicas and explicit flags keep theirs.
    """
    if devices or _THREAD_FLAGS.intersection(extra_flags):
        return None
    return max(1, cpus // max(1, replicas))


def device_mask(devices: Sequence[int]) -> str:
    """The contract's device mask: `cpu`, or GPU indices joined by commas."""
    return ",".join(str(d) for d in devices) if devices else "cpu"


def llamacpp_launch(
    *,
    binary: Path,
    model: Path,
    port: int,
    ctx_max: int,
    slots: int,
    devices: Sequence[int],
    extra_flags: Sequence[str],
    log_path: Path,
    environ: Mapping[str, str],
    threads: int | None = None,
) -> LaunchSpec:
    """argv and environment for one llama-server replica bound to loopback."""
    argv = [
        str(binary),
        "--model", str(model),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--ctx-size", str(ctx_max * slots),
        "--parallel", str(slots),
        "--no-cont-batching",
        "--metrics",
        "--n-gpu-layers", "999" if devices else "0",
    ]  # fmt: skip
    if threads:
        argv += ["--threads", str(threads)]
    argv += list(extra_flags)
    env = {k: environ[k] for k in _PASSED_THROUGH if k in environ}
    # The device mask is a hard boundary: the engine sees only its GPUs (ORCH-3011).
    env["CUDA_VISIBLE_DEVICES"] = ",".join(str(d) for d in devices)
    return LaunchSpec(argv=tuple(argv), env=env, log_path=log_path)
