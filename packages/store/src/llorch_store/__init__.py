"""llama-orch's durable state: the model catalog and the artifact store.

Both are SQLite databases in WAL mode; artifacts are also content-addressed
files written atomically, so a restart loses no acknowledged entry or
artifact. Every method blocks: services call them from worker threads.
"""

from ._artifacts import DEFAULT_MAX_ARTIFACT_BYTES, INDEX_FILE, ArtifactStore
from ._canonical import canonical_json, content_id
from ._catalog import CATALOG_FILE, CatalogStore
from ._errors import (
    ArtifactCorruptError,
    ArtifactTooLargeError,
    InvalidArtifactError,
    ModelExistsError,
    SchemaTooNewError,
    StoreError,
    UnknownArtifactError,
    UnknownModelError,
)

__all__ = [
    "CATALOG_FILE",
    "DEFAULT_MAX_ARTIFACT_BYTES",
    "INDEX_FILE",
    "ArtifactCorruptError",
    "ArtifactStore",
    "ArtifactTooLargeError",
    "CatalogStore",
    "InvalidArtifactError",
    "ModelExistsError",
    "SchemaTooNewError",
    "StoreError",
    "UnknownArtifactError",
    "UnknownModelError",
    "canonical_json",
    "content_id",
]
