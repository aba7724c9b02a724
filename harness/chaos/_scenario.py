"""Small steps the scenarios share: start streams, wait for tokens, report violations."""

from __future__ import annotations

from harness.chaos._recorder import Recorder, TaskRecord
from harness.chaos._stack import ChaosStack

LONG_TOKENS = 1200
SHORT_TOKENS = 16
TOKENS_BOUND_S = 30.0


async def submit_all(
    recorder: Recorder, count: int, max_tokens: int, first_seed: int = 1
) -> list[TaskRecord]:
    """Submit `count` tasks; every one must be admitted (the scenario sized the queue for them)."""
    records = []
    for n in range(count):
        submission = await recorder.submit(max_tokens, seed=first_seed + n)
        assert submission.record is not None, f"task {n} refused: {submission.status} {submission.error_code}"
        records.append(submission.record)
    return records


async def until_streaming(recorder: Recorder, records: list[TaskRecord], tokens: int = 3) -> None:
    """Until each of `records` has streamed `tokens` tokens, or ended (the tiny model may stop early)."""
    await recorder.wait_for(
        lambda: all(r.tokens >= tokens or r.terminal is not None for r in records),
        TOKENS_BOUND_S,
        why=lambda: [r.summary() for r in records],
    )


def ran_or_retriable(records: list[TaskRecord], want: str) -> list[str]:
    """A problem for each task that neither ran to its length nor ended with a retriable `error`."""
    problems = []
    for record in records:
        terminal = record.terminal
        retriable = (
            terminal is not None and terminal.name == "error" and terminal.data.get("retriable") is True
        )
        if record.outcome != "end:length" and not retriable:
            problems.append(f"{want}: {record.summary()}")
    return problems


def verdict(stack: ChaosStack, problems: list[str]) -> str:
    """The assertion message: each violation on its own line, then where the daemons' logs are."""
    return "\n".join([*problems, f"logs: {stack.orchestratord.log} {stack.pool_managerd.log}"])
