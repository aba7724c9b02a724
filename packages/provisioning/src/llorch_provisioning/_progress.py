"""Progress reporting: the callback type and the parser for cmake/make/ninja status lines."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Protocol


class Phase(StrEnum):
    """The phases of a source provisioning run, in the order they happen."""

    LOCK = "lock"
    VERIFY = "verify"
    DOWNLOAD = "download"
    EXTRACT = "extract"
    CONFIGURE = "configure"
    BUILD = "build"
    INSTALL = "install"


class ProgressCallback(Protocol):
    """Receives ``(phase, pct, line)``; ``pct`` is 0-100 within the phase."""

    def __call__(self, phase: str, pct: float, line: str) -> None: ...


def no_progress(phase: str, pct: float, line: str) -> None:
    """A callback that ignores everything."""


# `make` (CMake's Makefile generator) prefixes lines with the overall percentage, e.g. "[ 45%] Building".
_MAKE_STATUS = re.compile(r"^\[\s*(\d{1,3})%\]")
# Ninja prefixes lines with "[finished/total]", e.g. "[33/206] Building CXX object".
_NINJA_STATUS = re.compile(r"^\[(\d+)/(\d+)\]")


def parse_build_percent(line: str) -> float | None:
    """Return the completion percentage a make or ninja status line announces, or None.

    >>> parse_build_percent("[ 45%] Building C object ggml.c.o")
    45.0
    >>> parse_build_percent("[50/200] Building CXX object x.o")
    25.0
    """
    text = line.lstrip()
    make = _MAKE_STATUS.match(text)
    if make is not None:
        return min(float(make.group(1)), 100.0)
    ninja = _NINJA_STATUS.match(text)
    if ninja is not None:
        done, total = int(ninja.group(1)), int(ninja.group(2))
        if total == 0 or done > total:
            return None
        return 100.0 * done / total
    return None


class BuildProgress:
    """Turns a stream of build output lines into monotonic ``(pct, line)`` reports.

    Make's per-directory percentages can step backwards when targets interleave, and
    warnings carry no percentage at all; a progress bar should neither jump back nor
    stall on those lines, so we report the highest percentage seen so far.
    """

    def __init__(self, phase: Phase, on_progress: ProgressCallback) -> None:
        self._phase = phase
        self._on_progress = on_progress
        self._pct = 0.0

    @property
    def pct(self) -> float:
        """The highest percentage seen so far."""
        return self._pct

    def feed(self, line: str) -> None:
        """Parse one output line and report it."""
        parsed = parse_build_percent(line)
        if parsed is not None and parsed > self._pct:
            self._pct = parsed
        self._on_progress(self._phase, self._pct, line)

    def finish(self, line: str) -> None:
        """Report the phase complete."""
        self._pct = 100.0
        self._on_progress(self._phase, self._pct, line)
