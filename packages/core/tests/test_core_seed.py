"""The effective seed of a task."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llorch_core import MAX_SEED, effective_seed


def test_derived_seed_is_the_first_four_sha256_bytes_big_endian() -> None:
    task_id = "3f1c2a9e-7b4d-4c1e-9a0b-2d5e6f708192"
    digest = hashlib.sha256(task_id.encode()).hexdigest()
    assert effective_seed(task_id, None) == int(digest[:8], 16)
    assert effective_seed("abc", None) == 0xBA7816BF  # SHA-256("abc") starts ba7816bf


@given(st.text(max_size=64))
def test_derived_seed_is_stable_and_fits_uint32(task_id: str) -> None:
    assert effective_seed(task_id, None) == effective_seed(task_id, None)
    assert 0 <= effective_seed(task_id, None) <= MAX_SEED


@given(st.text(max_size=8), st.integers(0, MAX_SEED))
def test_a_client_seed_wins(task_id: str, seed: int) -> None:
    assert effective_seed(task_id, seed) == seed


def test_an_out_of_range_seed_is_refused() -> None:
    with pytest.raises(ValueError, match="seed must be in"):
        effective_seed("t", 1 << 32)
    with pytest.raises(ValueError, match="seed must be in"):
        effective_seed("t", 0xFFFF_FFFF)  # llama.cpp's "random seed": never sent
