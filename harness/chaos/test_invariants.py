"""The invariant checker itself: it must flag each broken stream rule (ORCH-3442)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.chaos._invariants import check_metrics, check_stream
from harness.chaos._recorder import Event, Recorder, Submission, TaskRecord


def _record(*frames: Frame, closed: bool = True) -> TaskRecord:
    events = [Event(i, name, data, 1) for i, name, data in frames]
    return TaskRecord(task_id="t", events=events, closed_after_terminal=closed)


Frame = tuple[int | None, str, dict[str, Any]]
GOOD: tuple[Frame, ...] = (
    (0, "started", {}),
    (1, "token", {"i": 0}),
    (2, "token", {"i": 1}),
    (3, "end", {"finish_reason": "length"}),
)


@pytest.mark.req("ORCH-3442")
def test_a_complete_stream_passes() -> None:
    assert check_stream(_record(*GOOD)) == []


@pytest.mark.req("ORCH-3442")
@pytest.mark.parametrize(
    ("frames", "closed", "want"),
    [
        (GOOD[:3], None, "no terminal event"),
        ((*GOOD, (4, "token", {"i": 2})), True, "after or besides"),
        ((*GOOD[:3], (3, "error", {"code": "INTERNAL"}), (4, "end", {})), True, "after or besides"),
        (GOOD, False, "stayed open"),
        ((GOOD[0], GOOD[2], GOOD[3]), True, "ids not consecutive"),
        ((*GOOD[:2], GOOD[1], (2, "end", {})), True, "ids not consecutive"),
        ((GOOD[0], (1, "token", {"i": 1}), (2, "end", {})), True, "token.i"),
        ((GOOD[1], GOOD[0], GOOD[2], GOOD[3]), True, "ids not consecutive"),
    ],
)
def test_each_broken_rule_is_flagged(frames: tuple[Frame, ...], closed: bool | None, want: str) -> None:
    record = _record(*frames)
    record.closed_after_terminal = closed
    problems = check_stream(record)
    assert any(want in p for p in problems), problems


@pytest.mark.req("ORCH-3442")
def test_one_jump_of_ids_is_allowed_only_after_a_restart() -> None:
    jumped = _record(GOOD[0], GOOD[1], (65536, "error", {"code": "WORKER_RESET"}))
    assert check_stream(jumped, id_jumps=1) == []
    assert check_stream(jumped, id_jumps=0) != []


@pytest.mark.req("ORCH-3442")
async def test_metrics_must_equal_what_clients_saw() -> None:
    async with Recorder("http://127.0.0.1:9", "m") as recorder:
        recorder.submissions = [Submission(202, _record(*GOOD)), Submission(429, None, "ADMISSION_REJECT")]
        exposition = (
            'tasks_enqueued_total{pool_id="p"} 1.0\n'
            'tasks_canceled_total{reason="client"} 0.0\n'
            'tokens_out_total{pool_id="p"} 2.0\n'
            'tasks_rejected_total{engine="llamacpp",reason="ADMISSION_REJECT"} 1.0\n'
        )
        assert check_metrics(exposition, recorder) == []
        assert check_metrics(exposition.replace("} 2.0", "} 3.0"), recorder) == [
            "/metrics tokens_out_total = 3, clients saw 2"
        ]
