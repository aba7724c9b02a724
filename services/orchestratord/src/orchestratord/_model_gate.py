"""Which catalog models admission must refuse, kept in memory so the hot path never waits on SQLite.

The gate follows the catalog: it is rebuilt at start-up and after every
committed catalog write (rare), and admission (frequent) reads two dicts.
"""

from __future__ import annotations

from collections.abc import Iterable

from llorch_contracts.api import CatalogEntry, ErrorKind, ModelLifecycle, VerifyOutcome
from llorch_http import ApiError
from llorch_store import CatalogStore


class ModelGate:
    """Admission's view of the catalog: a task's `model_ref` names an entry by id first, else by ref."""

    def __init__(self, catalog: CatalogStore) -> None:
        self._index: tuple[dict[str, CatalogEntry], dict[str, CatalogEntry]] = ({}, {})
        catalog.on_change(lambda: self.load(catalog.list()))
        self.load(catalog.list())

    def load(self, entries: Iterable[CatalogEntry]) -> None:
        """Replace the view in one assignment: readers on the event loop see the old or the new one."""
        ordered = sorted(entries, key=lambda entry: entry.id)
        by_ref: dict[str, CatalogEntry] = {}
        for entry in ordered:
            by_ref.setdefault(entry.ref, entry)
        self._index = ({entry.id: entry for entry in ordered}, by_ref)

    def check(self, model_ref: str) -> None:
        """Refuse a Retired model (CAT-1031) or one whose last verification failed (CAT-1022)."""
        by_id, by_ref = self._index
        entry = by_id.get(model_ref) or by_ref.get(model_ref)
        if entry is None:
            return
        if entry.lifecycle == ModelLifecycle.Retired:
            raise ApiError(ErrorKind.MODEL_DEPRECATED, f"model {entry.id!r} is retired; choose another model")
        if entry.last_verification == VerifyOutcome.fail:
            raise ApiError(
                ErrorKind.UNTRUSTED_ARTIFACT,
                f"model {entry.id!r} failed its last digest verification; re-verify it or fix the file",
            )
