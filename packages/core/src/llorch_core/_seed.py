"""The effective sampling seed of a task."""

from __future__ import annotations

import hashlib

_SEED_BYTES = 4


# llama.cpp reads 0xFFFFFFFF as "pick a random seed": the largest seed that is honoured is one below.
MAX_SEED = 0xFFFF_FFFE


def effective_seed(task_id: str, seed: int | None) -> int:
    """The seed sent to the engine and recorded in the transcript (OC-CORE-1150, narrowed to 32 bits).

    The client's `seed` when given; otherwise the first 4 bytes of the SHA-256 of the UTF-8 `task_id`,
    read big-endian. OC-CORE-1150 words this as 8 bytes with the top bit cleared, but llama.cpp takes a
    uint32 seed and the API bounds `seed` to the 32-bit unsigned range, so the derived seed stays in that
    range as well; equal task ids still give equal seeds. 0xFFFFFFFF is llama.cpp's "random seed" value,
    so it is never used: the API refuses it and a derived seed that hits it takes the value below.
    """
    if seed is not None:
        if not 0 <= seed <= MAX_SEED:
            raise ValueError(f"seed must be in 0..{MAX_SEED}, got {seed}")
        return seed
    return min(int.from_bytes(hashlib.sha256(task_id.encode()).digest()[:_SEED_BYTES], "big"), MAX_SEED)
