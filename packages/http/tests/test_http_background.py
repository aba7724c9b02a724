"""Background loops that die are loud and fatal (ORCH-3430)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import pytest

from llorch_http import FATAL_EXIT_CODE, background_loops
from llorch_testkit import free_port


async def _crash() -> None:
    await asyncio.sleep(0)
    raise RuntimeError("boom")


async def _return_early() -> None:
    await asyncio.sleep(0)


async def _forever() -> None:
    await asyncio.Event().wait()


@pytest.mark.req("ORCH-3430")
async def test_a_loop_that_crashes_or_returns_is_reported_by_name(caplog: pytest.LogCaptureFixture) -> None:
    reasons: list[str] = []
    loops = {"crasher": _crash, "quitter": _return_early, "worker": _forever}
    async with background_loops(loops, reasons.append):
        for _ in range(50):
            if len(reasons) == 2:
                break
            await asyncio.sleep(0.01)
    assert sorted(reasons) == [
        "background loop crasher crashed: RuntimeError: boom",
        "background loop quitter ended unexpectedly",
    ]
    assert [r.levelname for r in caplog.records if r.name == "llorch.background"] == ["CRITICAL", "CRITICAL"]


@pytest.mark.req("ORCH-3430")
async def test_loops_are_cancelled_when_the_lifespan_ends() -> None:
    reasons: list[str] = []
    async with background_loops({"worker": _forever}, reasons.append):
        await asyncio.sleep(0.01)
    assert reasons == [], "a cancel at shutdown is not a failure"


_SERVICE = """
import asyncio, sys
from contextlib import asynccontextmanager
from litestar import Litestar
from llorch_http import AuthPolicy, FatalExit, background_loops, serve

fatal = FatalExit()

async def dies() -> None:
    await asyncio.sleep(0.3)
    raise RuntimeError("the dispatcher is gone")

@asynccontextmanager
async def lifespan(_):
    async with background_loops({"dispatch": dies}, fatal):
        yield

app = Litestar([], lifespan=[lifespan])
app.state.fatal = fatal
sys.exit(serve(app, sys.argv[1], auth=AuthPolicy(token=None), token_env="NO_SUCH_TOKEN"))
"""


@pytest.mark.req("ORCH-3430")
def test_a_served_service_whose_loop_dies_exits_non_zero_and_says_why() -> None:
    bind = f"127.0.0.1:{free_port()}"
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_SERVICE), bind],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == FATAL_EXIT_CODE, done.stderr
    assert "background loop dispatch crashed: RuntimeError: the dispatcher is gone" in done.stderr
