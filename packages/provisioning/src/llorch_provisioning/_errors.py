"""Domain errors raised by provisioning; none of them know about HTTP."""

from __future__ import annotations

from pathlib import Path


class ProvisioningError(Exception):
    """Base class for every error this package raises on purpose."""


class SdistNotFoundError(ProvisioningError):
    """The package index has no source distribution for the requested version."""


class ChecksumMismatchError(ProvisioningError):
    """A file's sha256 is not the one we were promised."""

    def __init__(self, path: Path, expected: str, actual: str) -> None:
        super().__init__(f"sha256 mismatch for {path}: expected {expected}, got {actual}")
        self.path = path
        self.expected = expected
        self.actual = actual


class SourceLayoutError(ProvisioningError):
    """The sdist does not contain the llama.cpp tree where we expect it."""


class BuildError(ProvisioningError):
    """A configure or build command failed; ``output_tail`` holds its last lines."""

    def __init__(self, phase: str, returncode: int, output_tail: tuple[str, ...]) -> None:
        tail = "\n".join(output_tail)
        super().__init__(f"{phase} failed with exit code {returncode}:\n{tail}")
        self.phase = phase
        self.returncode = returncode
        self.output_tail = output_tail


class InvalidSourceSpecError(ProvisioningError):
    """A ``source.git`` spec (repo URL or ref) failed validation."""


class ModelSpecError(ProvisioningError):
    """Tiny-model hyper-parameters are inconsistent (e.g. heads do not divide the width)."""
