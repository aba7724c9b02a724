"""orchestratord's durable state: the catalog, the artifact store and the admission journal.

CAT-1001, CAT-1043; the journal lives in `orchestratord.state_dir` (OC-CTRL-2120).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llorch_contracts.config import LlorchConfig
from llorch_store import CATALOG_FILE, ArtifactStore, CatalogStore

JournaledTask = Any  # TEMPORARY until the journal lands
TaskJournal = Any

JOURNAL_FILE = "journal.sqlite3"


@dataclass(frozen=True)
class Stores:
    catalog: CatalogStore
    artifacts: ArtifactStore
    journal: TaskJournal
    #: The tasks the journal held unfinished when orchestratord started, in admission order.
    recovered: list[JournaledTask]

    @classmethod
    def open(
        cls, config: LlorchConfig, state_dir: Path | None = None, *, on_failure: Callable[[str], None]
    ) -> Stores:
        """Open the stores at the configured roots, or all of them under `state_dir` if given.

        `on_failure(reason)` is called if the journal's writer thread cannot go on.
        """
        catalog_root = Path(config.catalog.root).expanduser()
        artifacts_root = Path(config.artifacts.root).expanduser()
        journal_dir = Path(config.orchestratord.state_dir).expanduser()
        if state_dir is not None:
            catalog_root, artifacts_root = state_dir / "catalog", state_dir / "artifacts"
            journal_dir = state_dir
        journal = None
        return cls(
            catalog=CatalogStore(catalog_root / CATALOG_FILE),
            artifacts=ArtifactStore(artifacts_root, max_artifact_bytes=config.artifacts.max_artifact_bytes),
            journal=journal,
            recovered=[],
        )

    @asynccontextmanager
    async def lifespan(self, _: object) -> AsyncIterator[None]:
        """Close the databases when the app stops (after the data plane and pending transcripts)."""
        try:
            yield
        finally:
            self.catalog.close()
            self.artifacts.close()
