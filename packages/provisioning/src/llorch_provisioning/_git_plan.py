"""Plan-only support for the ``source.git {repo, ref}`` provisioning form.

Nothing here runs git or cmake; it validates the spec and spells out the commands a
runner would execute, so the plan can be shown, reviewed and tested without a network.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from ._cmake import SERVER_TARGET, cmake_options
from ._errors import InvalidSourceSpecError
from ._host import Accelerator

_SCP_LIKE = re.compile(r"^(?P<user>[A-Za-z0-9._-]+)@(?P<host>[A-Za-z0-9.-]+):(?P<path>[A-Za-z0-9._~/-]+)$")
_HOST = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$"
)
_URL_PATH = re.compile(r"^/[A-Za-z0-9._~/-]+$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
# What `git check-ref-format` forbids, less the rules checked separately below.
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def validate_repo_url(repo: str) -> str:
    """Accept ``https://host/path`` or ``git@host:path``; reject anything a shell or git could misread.

    Plain http, file:// and local paths are refused (no integrity, or reaching outside the
    sandbox); embedded credentials are refused because the URL ends up in logs and manifests;
    a leading ``-`` would be parsed by git as an option (e.g. ``--upload-pack``).
    """
    if not repo or repo != repo.strip() or repo.startswith("-"):
        raise InvalidSourceSpecError(f"repo {repo!r}: empty, padded or starts with '-'")
    scp = _SCP_LIKE.match(repo)
    if scp is not None:
        if not _HOST.match(scp.group("host")) or ".." in scp.group("path").split("/"):
            raise InvalidSourceSpecError(f"repo {repo!r}: bad host or path")
        return repo
    parts = urllib.parse.urlsplit(repo)
    if parts.scheme != "https":
        raise InvalidSourceSpecError(f"repo {repo!r}: only https:// or git@host:path are allowed")
    if parts.username is not None or parts.password is not None:
        raise InvalidSourceSpecError(f"repo {repo!r}: credentials in the URL are not allowed")
    host = parts.hostname or ""
    if not _HOST.match(host) or parts.query or parts.fragment:
        raise InvalidSourceSpecError(f"repo {repo!r}: bad host, or a query/fragment")
    if not _URL_PATH.match(parts.path) or ".." in parts.path.split("/"):
        raise InvalidSourceSpecError(f"repo {repo!r}: bad path")
    return repo


def validate_ref(ref: str) -> str:
    """Accept a 40-hex commit or a branch/tag name that ``git check-ref-format`` would accept."""
    if _COMMIT.match(ref):
        return ref
    problems = (
        not ref,
        ref.startswith(("-", "/", ".")),
        ref.endswith(("/", ".", ".lock")),
        ".." in ref,
        "//" in ref,
        "@{" in ref,
        ref == "@",
        _REF_FORBIDDEN.search(ref) is not None,
        any(part.startswith(".") or part.endswith(".lock") for part in ref.split("/")),
    )
    if any(problems):
        raise InvalidSourceSpecError(f"ref {ref!r} is not a valid git ref or 40-hex commit")
    return ref


@dataclass(frozen=True, kw_only=True)
class PlanStep:
    """One command of the plan: what it is for, and its argv (no shell involved)."""

    description: str
    argv: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class GitSourcePlan:
    """The validated spec and the ordered steps that would build ``llama-server`` from it."""

    repo: str
    ref: str
    pinned: bool
    steps: tuple[PlanStep, ...]


def plan_git_source(
    repo: str, ref: str, work_dir: Path, *, accelerator: Accelerator = Accelerator.CPU, jobs: int = 2
) -> GitSourcePlan:
    """Validate ``{repo, ref}`` and return the (unexecuted) steps to fetch and build it.

    ``pinned`` is True only for a full commit hash: a branch or tag can move, so a plan
    from one is not reproducible and callers may want to refuse it in production.
    """
    repo = validate_repo_url(repo)
    ref = validate_ref(ref)
    src, build = str(work_dir / "src"), str(work_dir / "build")
    steps = (
        PlanStep(description="create an empty repository", argv=("git", "init", "--quiet", src)),
        # `--` ends option parsing, so neither repo nor ref can smuggle in a git option.
        PlanStep(
            description="fetch only the requested ref, shallow",
            argv=("git", "-C", src, "fetch", "--depth", "1", "--", repo, ref),
        ),
        PlanStep(
            description="check out what was fetched",
            argv=("git", "-C", src, "checkout", "--detach", "FETCH_HEAD"),
        ),
        PlanStep(
            description="configure",
            argv=("cmake", "-S", src, "-B", build, *cmake_options(accelerator)),
        ),
        PlanStep(
            description=f"build {SERVER_TARGET}",
            argv=("cmake", "--build", build, "--target", SERVER_TARGET, "-j", str(jobs)),
        ),
    )
    return GitSourcePlan(repo=repo, ref=ref, pinned=_COMMIT.match(ref) is not None, steps=steps)
