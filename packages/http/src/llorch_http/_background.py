"""A service's long-lived loops, owned by its lifespan; none may end or crash silently (ORCH-3430).

Each loop is expected to run until the lifespan cancels it. A loop that
returns or raises instead is a failure the service cannot survive: it is
logged at CRITICAL with the loop's name and the error, and `on_fatal` is
called, which by default asks the process to shut down and exit non-zero.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

log = logging.getLogger("llorch.background")
#: The exit status of a service stopped by a failed background loop (EX_SOFTWARE).
FATAL_EXIT_CODE = 70


@dataclass
class FatalExit:
    """What a service does when a background loop dies: record the exit code, then stop the server.

    `serve` sets `stop` to a graceful server shutdown and then returns `code`; without
    a server (an app run some other way) the process gets SIGTERM.
    """

    code: int = 0
    reason: str | None = None
    stop: Callable[[], None] | None = None

    def __call__(self, reason: str) -> None:
        if self.code:
            return
        self.code, self.reason = FATAL_EXIT_CODE, reason
        if self.stop is not None:
            self.stop()
        else:
            os.kill(os.getpid(), signal.SIGTERM)


LoopFactory = Callable[[], Awaitable[None]]


async def _guarded(name: str, loop: LoopFactory, on_fatal: Callable[[str], None]) -> None:
    try:
        await loop()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.critical("background loop %s crashed: %s: %s", name, type(exc).__name__, exc, exc_info=exc)
        on_fatal(f"background loop {name} crashed: {type(exc).__name__}: {exc}")
        return
    log.critical("background loop %s ended although it should run until shutdown", name)
    on_fatal(f"background loop {name} ended unexpectedly")


@asynccontextmanager
async def background_loops(
    loops: Mapping[str, LoopFactory], on_fatal: Callable[[str], None]
) -> AsyncIterator[None]:
    """Run `loops` while the context is open; cancel and await them all on the way out."""
    tasks = [asyncio.create_task(_guarded(name, loop, on_fatal), name=name) for name, loop in loops.items()]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
