"""What provisioning hands to pool-managerd: how to get a running engine for a pool."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from llorch_contracts.config import EngineKind

from ._container_plan import ContainerRunPlan

ProvisionedMode = Literal["source", "binary", "external", "package", "container", "mock"]


@dataclass(frozen=True, kw_only=True)
class ProvisionedEngine:
    """A provisioned engine; which fields are set depends on ``mode``.

    - ``source``, ``binary``, ``package``: ``binary_path`` is a checked executable that
      pool-managerd spawns, and ``engine_version`` is what it reported for ``--version``.
    - ``external``: ``base_url`` of a server someone else runs (OC-POOL-3110: never
      started or signalled by us); ``api_key_env`` names the variable holding its key.
    - ``container``: ``container`` is the ``run`` plan pool-managerd completes per replica.
    - ``mock``: nothing to run; the mock adapter serves in-process.

    ``variant`` (``cpu`` or ``cuda``) is known only for ``source`` builds, and so is
    ``vocab_dir``: llama.cpp's ``ggml-vocab-*.gguf`` files, for generating the tiny test model.
    ``detail`` is one line for logs and status pages.
    """

    mode: ProvisionedMode
    kind: EngineKind
    binary_path: Path | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    engine_version: str | None = None
    variant: str | None = None
    vocab_dir: Path | None = None
    container: ContainerRunPlan | None = None
    detail: str = ""
