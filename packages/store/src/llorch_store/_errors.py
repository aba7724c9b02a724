"""The store's domain errors; the services map them onto the HTTP error envelope."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every error the store raises on purpose."""


class SchemaTooNewError(StoreError):
    """The database was written by a newer llama-orch than this one (CAT-1002)."""


class UnknownModelError(StoreError, LookupError):
    """No catalog entry with this id."""


class ModelExistsError(StoreError):
    """A catalog entry with this id exists already (CAT-1005)."""


class UnknownArtifactError(StoreError, LookupError):
    """No artifact with this id."""


class InvalidArtifactError(StoreError, ValueError):
    """The artifact cannot be stored: unknown parent, NaN or infinity in its content (CAT-1040, CAT-1046)."""


class ArtifactTooLargeError(InvalidArtifactError):
    """The canonical form is larger than `artifacts.max_artifact_bytes` (CAT-1047)."""

    def __init__(self, size_bytes: int, max_bytes: int) -> None:
        super().__init__(f"artifact is {size_bytes} bytes in canonical form; the limit is {max_bytes}")
        self.size_bytes = size_bytes
        self.max_bytes = max_bytes


class ArtifactCorruptError(StoreError):
    """An artifact's file is missing or no longer matches its digest (CAT-1045)."""


class JournalOverflowError(StoreError):
    """More writes are waiting for the journal's writer thread than its bound allows (CAT-1076)."""

    def __init__(self, max_pending: int) -> None:
        super().__init__(
            f"the admission journal has {max_pending} writes waiting; its writer thread cannot keep up"
        )
        self.max_pending = max_pending
