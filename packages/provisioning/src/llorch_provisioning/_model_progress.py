"""Progress of ensuring a model: structured bytes done and total, not just a percentage.

CAT-1015 asks for bytes done and bytes total, which a ``(phase, pct, line)`` callback
could only carry inside its text; ``ModelProgress`` keeps them as numbers, and
``progress_lines`` adapts a line-oriented ``ProgressCallback`` (a console printer) to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from ._progress import ProgressCallback

ModelStep = Literal["generate", "download", "verify"]


@dataclass(frozen=True, kw_only=True)
class ModelProgress:
    """One progress report; ``bytes_total`` is None when the server did not say."""

    step: ModelStep
    bytes_done: int
    bytes_total: int | None
    message: str

    @property
    def pct(self) -> float | None:
        """Completion in percent, or None when the total is unknown."""
        if self.bytes_total is None:
            return None
        if self.bytes_total == 0:
            return 100.0
        return min(100.0, 100.0 * self.bytes_done / self.bytes_total)


class ModelProgressCallback(Protocol):
    """Receives every ``ModelProgress`` report of one ``ensure_model`` call."""

    def __call__(self, progress: ModelProgress) -> None: ...


def no_model_progress(progress: ModelProgress) -> None:
    """A callback that ignores everything."""


def progress_lines(on_progress: ProgressCallback) -> ModelProgressCallback:
    """Feed model progress to a ``(phase, pct, line)`` callback, e.g. a console printer."""

    def report(progress: ModelProgress) -> None:
        pct = progress.pct
        on_progress(progress.step, pct if pct is not None else 0.0, progress.message)

    return report
