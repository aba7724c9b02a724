"""Fixtures for the adapter suites: a real llama-server, a shared client, and a raw fake engine."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import httpx
import pytest

from llorch_provisioning import EngineInstall
from llorch_testkit import free_port

HEALTH_TIMEOUT_S = 60.0

# Writes one scripted answer to an accepted connection; the request (head and body) is already read.
Responder = Callable[[asyncio.StreamWriter], Awaitable[None]]
FakeEngine = Callable[[Responder], AbstractAsyncContextManager[tuple[str, list[bytes]]]]


@pytest.fixture(scope="session")
def llama_server(
    llamacpp: EngineInstall, tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real llama-server (one slot, no continuous batching, 512 context); yields its base URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("engine") / "llama-server.log"
    argv = [
        str(llamacpp.binary_path), "--model", str(tiny_model_path),
        "--host", "127.0.0.1", "--port", str(port),
        "--parallel", "1", "--no-cont-batching", "--metrics", "-c", "512", "--n-gpu-layers", "0",
        # One decode thread: ggml's threads spin, and the test process needs a core of its own.
        "--threads", "1",
    ]  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_healthy(process, base_url, log)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    with httpx.Client() as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"llama-server exited {process.returncode}: {log.read_text()[-2000:]}")
            try:
                if client.get(f"{base_url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    raise RuntimeError(f"llama-server not healthy after {HEALTH_TIMEOUT_S}s")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """The one client adapters share, as orchestratord would inject it."""
    async with httpx.AsyncClient() as shared:
        yield shared


@pytest.fixture
def fake_engine() -> FakeEngine:
    """A TCP server that reads each HTTP request and answers with a scripted `Responder`.

    Yields the base URL and the list of request bodies received. It answers at
    the byte level, so tests can produce what a real engine rarely does: stalls,
    truncated streams, malformed frames, arbitrary statuses.
    """

    @asynccontextmanager
    async def serve(respond: Responder) -> AsyncIterator[tuple[str, list[bytes]]]:
        bodies: list[bytes] = []
        handlers: set[asyncio.Task[None]] = set()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            handlers.add(task)
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode("latin-1").split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                bodies.append(await reader.readexactly(length))
                await respond(writer)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()
                handlers.discard(task)

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            yield f"http://127.0.0.1:{port}", bodies
        finally:
            server.close()
            for task in list(handlers):
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)
            await server.wait_closed()

    return serve
