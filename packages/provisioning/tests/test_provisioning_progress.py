"""Progress lines from cmake's Makefile and Ninja generators become (phase, pct, line) reports."""

from __future__ import annotations

import pytest

from llorch_provisioning import BuildProgress, Phase, parse_build_percent


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("[ 45%] Building C object ggml/src/CMakeFiles/ggml-base.dir/ggml.c.o", 45.0),
        ("[  0%] Generating build details from Git", 0.0),
        ("[100%] Built target llama-server", 100.0),
        ("  [  7%] Linking CXX static library libggml-base.a", 7.0),
        ("[50/200] Building CXX object src/CMakeFiles/llama.dir/llama.cpp.o", 25.0),
        ("[206/206] Linking CXX executable bin/llama-server", 100.0),
    ],
)
def test_status_lines_give_a_percentage(line: str, expected: float) -> None:
    assert parse_build_percent(line) == pytest.approx(expected)


@pytest.mark.parametrize(
    "line",
    [
        "/usr/include/avx512fintrin.h:14148:10: warning: '__Y' is used uninitialized",
        "-- Configuring done",
        "[ 45 %] spaced oddly",
        "[5/0] impossible ninja total",
        "[7/5] more done than total",
        "text [ 45%] not at the start",
        "",
    ],
)
def test_other_lines_give_none(line: str) -> None:
    assert parse_build_percent(line) is None


def test_build_progress_is_monotonic_and_reports_every_line() -> None:
    seen: list[tuple[str, float, str]] = []
    progress = BuildProgress(Phase.BUILD, lambda phase, pct, line: seen.append((phase, pct, line)))
    for line in ["[ 10%] a", "warning: b", "[ 40%] c", "[ 20%] d", "[ 60%] e"]:
        progress.feed(line)
    progress.finish("done")

    assert [pct for _, pct, _ in seen] == [10.0, 10.0, 40.0, 40.0, 60.0, 100.0]
    assert [line for _, _, line in seen] == [
        "[ 10%] a",
        "warning: b",
        "[ 40%] c",
        "[ 20%] d",
        "[ 60%] e",
        "done",
    ]
    assert {phase for phase, _, _ in seen} == {"build"}
