"""The gates, in the order `dev_loop` runs them. Run through `python3 xtask.py test`.

Sessions reuse the workspace `.venv` that xtask bootstraps (no per-session
venvs), and call its tools by absolute path so the caller's PATH cannot pick
another interpreter.
"""

from __future__ import annotations

from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
BIN = ROOT / ".venv" / "bin"
HAND_WRITTEN = [
    str(p.relative_to(ROOT))
    for p in (ROOT / n for n in ("packages", "services", "harness", "codegen", "xtask.py", "noxfile.py"))
    if p.exists()
]
ENV = {"PACT_DO_NOT_TRACK": "true", "PYTHONDONTWRITEBYTECODE": "1"}

nox.options.default_venv_backend = "none"
nox.options.error_on_missing_interpreters = True


def _tool(session: nox.Session, name: str, *args: str) -> None:
    session.run(str(BIN / name), *args, env=ENV, external=True)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff lint and format check."""
    _tool(session, "ruff", "check", *HAND_WRITTEN)
    _tool(session, "ruff", "format", "--check", *HAND_WRITTEN)


def _typed_packages() -> list[str]:
    """Import names of every package and service (the generated one included)."""
    return sorted(p.name for p in ROOT.glob("*/*/src/*") if (p / "__init__.py").exists())


@nox.session
def types(session: nox.Session) -> None:
    """mypy --strict on every package and service."""
    _tool(session, "mypy", *(arg for name in _typed_packages() for arg in ("-p", name)))


@nox.session
def regen_check(session: nox.Session) -> None:
    """Generated code matches the contracts."""
    _tool(session, "python", "codegen/regen.py", "--check")


@nox.session
def spec_check(session: nox.Session) -> None:
    """requirements/ matches specs/ and the tests' claims."""
    _tool(session, "python", "codegen/spec_extract.py", "--check")


CHAOS = "harness/chaos"


@nox.session
def unit(session: nox.Session) -> None:
    """The pytest suite (packages, services, harness, codegen), the chaos suite aside."""
    _tool(session, "pytest", "-q", f"--ignore={CHAOS}", *session.posargs)


@nox.session
def chaos(session: nox.Session) -> None:
    """Faults against the real stack as separate processes, one invariant checker after each (ORCH-3440)."""
    _tool(session, "pytest", "-q", CHAOS, *session.posargs)


GATES = [lint, types, regen_check, spec_check, unit, chaos]


@nox.session
def dev_loop(session: nox.Session) -> None:
    """Every gate in order; stops at the first failure."""
    for gate in GATES:
        session.log(f"gate: {gate.__name__}")
        gate(session)
