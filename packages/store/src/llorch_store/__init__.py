"""llama-orch's durable state: the model catalog, the artifact store and the admission journal.

All are SQLite databases in WAL mode; artifacts are also content-addressed
files written atomically, so a restart loses no acknowledged entry or
artifact. The catalog's and artifact store's methods block: services call them
from worker threads. The admission journal's writes only enqueue, and its own
writer thread commits them (CAT-1071).
"""

from ._artifacts import DEFAULT_MAX_ARTIFACT_BYTES, INDEX_FILE, ArtifactStore
from ._canonical import canonical_json, content_id
from ._catalog import CATALOG_FILE, CatalogStore
from ._errors import (
    ArtifactCorruptError,
    ArtifactTooLargeError,
    InvalidArtifactError,
    JournalOverflowError,
    ModelExistsError,
    SchemaTooNewError,
    StoreError,
    UnknownArtifactError,
    UnknownModelError,
)
from ._journal import DEFAULT_MAX_PENDING, JournalStats, TaskJournal
from ._journal_sql import JournaledFrame, JournaledTask

__all__ = [
    "CATALOG_FILE",
    "DEFAULT_MAX_ARTIFACT_BYTES",
    "DEFAULT_MAX_PENDING",
    "INDEX_FILE",
    "ArtifactCorruptError",
    "ArtifactStore",
    "ArtifactTooLargeError",
    "CatalogStore",
    "InvalidArtifactError",
    "JournalOverflowError",
    "JournalStats",
    "JournaledFrame",
    "JournaledTask",
    "ModelExistsError",
    "SchemaTooNewError",
    "StoreError",
    "TaskJournal",
    "UnknownArtifactError",
    "UnknownModelError",
    "canonical_json",
    "content_id",
]
