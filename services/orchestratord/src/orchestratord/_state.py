"""orchestratord's durable state: the catalog and the artifact store (CAT-1001, CAT-1043)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from llorch_contracts.config import LlorchConfig
from llorch_store import CATALOG_FILE, ArtifactStore, CatalogStore


@dataclass(frozen=True)
class Stores:
    catalog: CatalogStore
    artifacts: ArtifactStore

    @classmethod
    def open(cls, config: LlorchConfig, state_dir: Path | None = None) -> Stores:
        """Open the stores at the configured roots, or in `<state_dir>/catalog` and `/artifacts` if given."""
        catalog_root = Path(config.catalog.root).expanduser()
        artifacts_root = Path(config.artifacts.root).expanduser()
        if state_dir is not None:
            catalog_root, artifacts_root = state_dir / "catalog", state_dir / "artifacts"
        return cls(
            catalog=CatalogStore(catalog_root / CATALOG_FILE),
            artifacts=ArtifactStore(artifacts_root, max_artifact_bytes=config.artifacts.max_artifact_bytes),
        )

    @asynccontextmanager
    async def lifespan(self, _: object) -> AsyncIterator[None]:
        """Close the databases when the app stops (after the data plane and pending transcripts)."""
        try:
            yield
        finally:
            self.catalog.close()
            self.artifacts.close()
