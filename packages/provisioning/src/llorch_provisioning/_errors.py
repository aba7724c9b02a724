"""Domain errors raised by provisioning; none of them know about HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._git_plan import GitSourcePlan


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


class InvalidModelRefError(ProvisioningError):
    """A model reference is malformed or uses a scheme we do not support (CAT-1010)."""

    def __init__(self, ref: str, problem: str) -> None:
        super().__init__(f"invalid model reference {ref!r}: {problem}")
        self.ref = ref
        self.problem = problem


class ModelPathNotAllowedError(InvalidModelRefError):
    """A local model path resolves outside every model directory (CAT-1080).

    The message is the same whether or not the file exists, and says nothing about it (CAT-1081).
    """

    def __init__(self, ref: str) -> None:
        super().__init__(
            ref,
            "local model files must be inside a model directory "
            "(<pool_managerd.cache_dir>/models or one listed in catalog.model_dirs)",
        )


class OutboundDeniedError(ProvisioningError):
    """The outbound policy refused a connection before it was made (POL-1020)."""

    def __init__(self, message: str, *, url: str, purpose: str, rule: str, setting: str | None) -> None:
        super().__init__(message)
        self.url = url  # already stripped of credentials and query string
        self.purpose = purpose
        self.rule = rule
        self.setting = setting


class ModelNotFoundError(ProvisioningError):
    """A local model reference does not name a readable regular file."""

    def __init__(self, ref: str, path: Path, problem: str) -> None:
        super().__init__(f"model {ref!r}: {path} {problem}")
        self.ref = ref
        self.path = path


class ModelDigestMismatchError(ProvisioningError):
    """A model file's digest is not the expected one (CAT-1021 ``fail``)."""

    def __init__(self, *, ref: str, path: Path, expected: str, actual: str, deleted: bool) -> None:
        what = f"{path} (downloaded, now deleted)" if deleted else str(path)
        super().__init__(f"model {ref!r}: digest mismatch for {what}: expected {expected}, got {actual}")
        self.ref = ref
        self.path = path
        self.expected = expected
        self.actual = actual
        self.deleted = deleted


class ModelFetchError(ProvisioningError):
    """Downloading a model failed: an HTTP error status, a network error or a short body."""

    def __init__(self, message: str, *, url: str, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url  # already stripped of credentials and query string
        self.status = status


class ModelGenerationError(ProvisioningError):
    """A ``gen:`` model cannot be generated, e.g. because the engine's vocab file is missing."""


class InvalidDigestError(ProvisioningError):
    """An expected digest is not ``sha256:`` followed by 64 hex digits."""


class EngineModeError(ProvisioningError):
    """A provisioning mode cannot give a pool its engine here; the message says what to change."""


class ProvisioningConfigError(EngineModeError):
    """The provisioning section is incomplete, or asks for something we do not do (vllm from source)."""


class GitSourceNotExecutedError(EngineModeError):
    """``source.git`` was validated and planned, but git builds are not run yet; ``plan`` has the steps."""

    def __init__(self, plan: GitSourcePlan) -> None:
        steps = "\n".join(f"  {i}. {s.description}: {' '.join(s.argv)}" for i, s in enumerate(plan.steps, 1))
        pinned = (
            "a pinned commit"
            if plan.pinned
            else "a movable ref (pin a 40-hex commit to make it reproducible)"
        )
        super().__init__(
            f"source.git builds are planned but not executed: they need internet access to {plan.repo}. "
            f"Ref {plan.ref!r} is {pinned}. The plan:\n{steps}\n"
            "Remove source.git to build from the pinned llama-cpp-python sdist instead."
        )
        self.plan = plan


class EngineBinaryError(EngineModeError):
    """An engine executable is missing, not executable, or fails ``--version``."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"engine binary {path}: {problem}")
        self.path = path
        self.problem = problem


class PolicyForbidsError(EngineModeError):
    """A ``policy.*`` switch that defaults to off forbids what the mode needs (POL-1006)."""

    def __init__(self, setting: str, what: str) -> None:
        super().__init__(f"{what} needs `{setting}: true`, which is false; set it or choose another mode")
        self.setting = setting


class ToolNotFoundError(EngineModeError):
    """Tools (or tool setup) the mode needs are missing; all of them are named at once (ORCH-3203)."""

    def __init__(self, missing: tuple[str, ...], hint: str) -> None:
        super().__init__(f"missing: {'; '.join(missing)}. {hint}")
        self.missing = missing


class PackageNotInstalledError(EngineModeError):
    """``package`` mode: the engine is not installed; ``install_command`` is what to run (ORCH-3204)."""

    def __init__(self, executable: str, install_command: str, note: str) -> None:
        super().__init__(
            f"{executable} is not on PATH. Install it with:\n  {install_command}\n{note}".rstrip()
        )
        self.executable = executable
        self.install_command = install_command


class ContainerRuntimeError(EngineModeError):
    """The container runtime is installed but not usable (daemon down, rootless setup broken)."""

    def __init__(self, runtime: str, problem: str) -> None:
        super().__init__(f"container runtime {runtime}: {problem}")
        self.runtime = runtime
        self.problem = problem


class EngineUrlError(EngineModeError):
    """An engine URL (``external.url``, ``binary.url``) is unusable."""

    def __init__(self, url: str, problem: str) -> None:
        super().__init__(f"engine URL {url!r}: {problem}")
        self.url = url
        self.problem = problem
