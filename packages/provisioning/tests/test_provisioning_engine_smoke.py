"""The cached real engine serves the tiny model: streaming, seeded, and cancel frees the slot.

Skipped until the engine cache is built (the first ``xtask up`` builds it); every other
provisioning test uses the stub builder instead.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from llorch_provisioning import (
    EngineInstall,
    make_tiny_model,
    read_manifest,
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def engine_port(llamacpp: EngineInstall, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    manifest = read_manifest(llamacpp.install_dir / "manifest.json")
    assert manifest is not None, "the root fixture just built or verified the engine"
    vocab = llamacpp.vocab_path("llama-spm")
    model = make_tiny_model(tmp_path_factory.mktemp("model") / "tiny.gguf", seed=42, vocab_gguf_path=vocab)
    port = _free_port()
    argv = [str(llamacpp.binary_path), "-m", str(model.path), "--host", "127.0.0.1"]
    argv += [
        "--port",
        str(port),
        "--parallel",
        "1",
        "--no-cont-batching",
        "--metrics",
        "-c",
        "512",
        "-t",
        "2",
    ]
    # An empty environment keeps stray LLAMA_ARG_* variables from changing the engine's flags.
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _get(port, "/health")[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None, "llama-server exited during start-up"
            assert time.monotonic() < deadline, "llama-server not healthy after 30 s"
            time.sleep(0.02)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _stream(port: int, body: dict[str, object], close_after: int | None = None) -> list[dict[str, object]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    frames: list[dict[str, object]] = []
    try:
        conn.request("POST", "/completion", json.dumps(body), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.getheader("Content-Type") == "text/event-stream"
        while close_after is None or len(frames) < close_after:
            line = resp.fp.readline()
            if not line:
                break
            if line.startswith(b"data: "):
                frames.append(json.loads(line[len(b"data: ") :]))
    finally:
        conn.close()
    return frames


def test_stream_is_incremental_and_seeded(engine_port: int) -> None:
    body = {"prompt": "hello", "n_predict": 16, "seed": 42, "temperature": 0.8, "stream": True}
    first = _stream(engine_port, body)
    second = _stream(engine_port, body)
    other = _stream(engine_port, {**body, "seed": 43})

    tokens = [f for f in first if not f["stop"]]
    assert len(tokens) == 16
    assert all(isinstance(f["content"], str) and len(f["tokens"]) == 1 for f in tokens)  # type: ignore[arg-type]
    final = first[-1]
    assert final["stop"] is True
    assert final["stop_type"] == "limit"
    assert final["timings"]["predicted_n"] == 16  # type: ignore[index]

    def text(frames: list[dict[str, object]]) -> str:
        return "".join(str(f["content"]) for f in frames)

    assert text(first) == text(second)
    assert text(first) != text(other)


def test_closing_the_stream_releases_the_slot(engine_port: int) -> None:
    body = {"prompt": "hello", "n_predict": 480, "seed": 1, "temperature": 0.8, "stream": True}
    received = _stream(engine_port, body, close_after=3)
    assert len(received) == 3
    deadline = time.monotonic() + 2
    while True:
        slots = json.loads(_get(engine_port, "/slots")[1])
        if not slots[0]["is_processing"]:
            break
        assert time.monotonic() < deadline, "slot still busy 2 s after the client went away"
        time.sleep(0.005)
    metrics = _get(engine_port, "/metrics")[1].decode()
    predicted = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("llamacpp:tokens_predicted_total ")
    )
    # 16 * 3 tokens from the other test plus a cut-short run, far below the 480 requested.
    assert predicted < 48 + 480
