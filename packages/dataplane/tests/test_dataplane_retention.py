"""Finished tasks are kept within bounds of age, count and bytes, oldest forgotten first (OC-CTRL-2186)."""

from __future__ import annotations

import pytest

from llorch_dataplane._retention import Retention


@pytest.mark.req("OC-CTRL-2186")
def test_the_count_bound_forgets_the_oldest_finished_tasks() -> None:
    retention = Retention(retain_s=300, max_tasks=2, max_bytes=10**9)
    assert retention.add("a", 1.0, 10) == []
    assert retention.add("b", 2.0, 10) == []
    assert retention.add("c", 3.0, 10) == ["a"]
    assert len(retention) == 2


@pytest.mark.req("OC-CTRL-2186")
def test_the_byte_bound_forgets_until_the_logs_fit() -> None:
    retention = Retention(retain_s=300, max_tasks=100, max_bytes=100)
    retention.add("a", 1.0, 40)
    retention.add("b", 2.0, 40)
    assert retention.add("c", 3.0, 90) == ["a", "b"]
    assert retention.bytes == 90
    assert retention.add("huge", 4.0, 500) == ["c"], "the newest task is kept even alone above the bound"


@pytest.mark.req("OC-CTRL-2186")
def test_age_expires_in_end_order() -> None:
    retention = Retention(retain_s=10, max_tasks=100, max_bytes=10**9)
    retention.add("a", 1.0, 1)
    retention.add("b", 5.0, 1)
    assert retention.expire(now=12.0) == ["a"]
    assert retention.expire(now=16.0) == ["b"]
    assert retention.bytes == 0
