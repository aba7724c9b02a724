"""orchestratord's durable state: the catalog, the artifact store and the admission journal.

CAT-1001, CAT-1043; the journal lives in `orchestratord.state_dir` (OC-CTRL-2120).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread

from llorch_contracts.config import LlorchConfig
from llorch_store import CATALOG_FILE, ArtifactStore, CatalogStore, JournaledTask, TaskJournal

JOURNAL_FILE = "journal.sqlite3"


@dataclass(frozen=True)
class Stores:
    catalog: CatalogStore
    artifacts: ArtifactStore
    journal: TaskJournal | None
    #: The tasks the journal held unfinished when orchestratord started, in admission order.
    recovered: list[JournaledTask]

    @classmethod
    def open(
        cls,
        config: LlorchConfig,
        state_dir: Path | None = None,
        *,
        on_failure: Callable[[str], None],
        journal: bool = True,
    ) -> Stores:
        """Open the stores at the configured roots, or all of them under `state_dir` if given.

        `on_failure(reason)` is called if the journal's writer thread cannot go on. `journal=False`
        runs without one (the benchmark's baseline, to show what the journal costs).
        """
        catalog_root = Path(config.catalog.root).expanduser()
        artifacts_root = Path(config.artifacts.root).expanduser()
        journal_dir = Path(config.orchestratord.state_dir).expanduser()
        if state_dir is not None:
            catalog_root, artifacts_root = state_dir / "catalog", state_dir / "artifacts"
            journal_dir = state_dir
        task_journal = None
        if journal:
            task_journal = TaskJournal(
                journal_dir / JOURNAL_FILE,
                on_failure=lambda exc: on_failure(f"the task journal failed: {type(exc).__name__}: {exc}"),
            )
        return cls(
            catalog=CatalogStore(catalog_root / CATALOG_FILE),
            artifacts=ArtifactStore(artifacts_root, max_artifact_bytes=config.artifacts.max_artifact_bytes),
            journal=task_journal,
            recovered=[] if task_journal is None else task_journal.recover(),
        )

    @asynccontextmanager
    async def lifespan(self, _: object) -> AsyncIterator[None]:
        """Close the databases when the app stops (after the data plane and pending transcripts)."""
        try:
            yield
        finally:
            if self.journal is not None:
                await anyio.to_thread.run_sync(self.journal.close)  # its last group commit is not the loop's
            self.catalog.close()
            self.artifacts.close()
