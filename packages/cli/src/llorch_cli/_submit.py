"""`llorch submit`: enqueue a task and print its tokens as they stream (Ctrl-C cancels it)."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

import httpx

DEFAULT_URL = "http://127.0.0.1:8080"


def _follow(client: httpx.Client, task_id: str, out: TextIO) -> int:
    """Print token text as it arrives; 0 on `end`, 1 on `error`."""
    event = ""
    with client.stream(
        "GET", f"/v2/tasks/{task_id}/events", timeout=httpx.Timeout(10.0, read=None)
    ) as stream:
        for line in stream.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data: dict[str, Any] = json.loads(line.removeprefix("data: "))
                if event == "token":
                    out.write(data["t"])
                    out.flush()
                elif event == "end":
                    out.write(f"\n[end: {data['finish_reason']}, {data['tokens_out']} tokens, "
                              f"{data['decode_time_ms']} ms decoding]\n")  # fmt: skip
                    return 0
                elif event == "error":
                    out.write(f"\n[error {data['code']}: {data['message']}]\n")
                    return 1
    return 1


def run_submit(url: str, body: dict[str, Any], token: str | None = None, out: TextIO = sys.stdout) -> int:
    """Submit `body` to orchestratord at `url` and stream the result; Ctrl-C cancels the task."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=url, timeout=30.0, headers=headers) as client:
        try:
            admitted = client.post("/v2/tasks", json=body)
        except httpx.TransportError as exc:
            hint = "start the stack with: python3 xtask.py up"
            print(f"llorch: orchestratord is not reachable at {url} ({exc}); {hint}", file=sys.stderr)
            return 2
        if admitted.status_code != 202:
            error = admitted.json()
            retry = f" (retry in {error['retry_after_ms']} ms)" if "retry_after_ms" in error else ""
            print(f"llorch: refused {error['code']}: {error['message']}{retry}", file=sys.stderr)
            return 1
        admission = admitted.json()
        task_id = admission["task_id"]
        print(
            f"[task {task_id} on pool {admission['pool_id']}: position {admission['queue_position']}, "
            f"start in ~{admission['predicted_start_ms']} ms]",
            file=sys.stderr,
        )
        try:
            return _follow(client, task_id, out)
        except KeyboardInterrupt:
            client.post(f"/v2/tasks/{task_id}/cancel")
            print(f"\n[canceled {task_id}]", file=sys.stderr)
            return 130
