"""Extract requirements from `specs/*.md` into `requirements/*.yaml`, with the tests that claim them.

A requirement is one Markdown bullet `- [ID] sentence`; its level is the first
RFC-2119 keyword in the sentence, its section the nearest `## ` heading above.
A test claims an ID with `@pytest.mark.req("ID", ...)` on a function or class,
or with a module-level `pytestmark`. The run prints every MUST requirement no
test claims. `--check` fails when the YAML on disk is stale, when an ID is
defined twice, or when a test claims an ID that no spec defines.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
OUT = ROOT / "requirements"
TEST_ROOTS = ("packages", "services", "harness", "codegen")

ID = r"[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*-[0-9]{3,5}[a-z]?"
BULLET = re.compile(rf"^\s*[-*] \[({ID})\]\s+(.+?)\s*$")
HEADING = re.compile(r"^##\s+(.+?)\s*$")
KEYWORD = re.compile(
    r"\b(MUST NOT|MUST|SHALL NOT|SHALL|REQUIRED|SHOULD NOT|SHOULD|RECOMMENDED|MAY|OPTIONAL)\b"
)
LEVELS = {
    "MUST": "must",
    "SHALL": "must",
    "REQUIRED": "must",
    "MUST NOT": "must-not",
    "SHALL NOT": "must-not",
    "SHOULD": "should",
    "RECOMMENDED": "should",
    "SHOULD NOT": "should-not",
    "MAY": "may",
    "OPTIONAL": "may",
}
TITLE_CHARS = 160


@dataclass
class Requirement:
    """One extracted requirement and the tests that claim it."""

    req_id: str
    text: str
    level: str
    section: str
    source: str
    tests: list[str] = field(default_factory=list)

    def as_yaml(self) -> dict[str, object]:
        title = self.text if len(self.text) <= TITLE_CHARS else self.text[: TITLE_CHARS - 1] + "…"
        return {
            "title": title,
            "level": self.level,
            "section": self.section,
            "source": self.source,
            "tests": sorted(self.tests),
        }


class ExtractError(Exception):
    """The specs or the test claims are inconsistent."""


def parse_spec(path: Path) -> Iterator[Requirement]:
    """Yield the requirements of one spec file, in order."""
    section = ""
    rel = path.relative_to(ROOT).as_posix()
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if heading := HEADING.match(line):
            section = heading.group(1)
            continue
        if bullet := BULLET.match(line):
            text = bullet.group(2)
            keyword = KEYWORD.search(text)
            level = LEVELS[keyword.group(1)] if keyword else "info"
            yield Requirement(bullet.group(1), text, level, section, f"{rel}#L{lineno}")


def _req_ids(decorator: ast.expr) -> list[str]:
    """IDs from a `pytest.mark.req("A", "B")` expression, else []."""
    if not isinstance(decorator, ast.Call):
        return []
    func = decorator.func
    if isinstance(func, ast.Attribute) and func.attr == "req":
        return [a.value for a in decorator.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    return []


def _marks(node: ast.expr) -> list[ast.expr]:
    return list(node.elts) if isinstance(node, (ast.List, ast.Tuple)) else [node]


def find_claims(paths: list[Path]) -> dict[str, list[str]]:
    """Map requirement ID -> test node ids (`path::Class::test`) that claim it."""
    claims: dict[str, list[str]] = {}

    def visit(body: list[ast.stmt], prefix: str, inherited: list[str]) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                own = [i for d in node.decorator_list for i in _req_ids(d)]
                ids = inherited + own
                name = f"{prefix}::{node.name}"
                if isinstance(node, ast.ClassDef):
                    visit(node.body, name, ids)
                elif node.name.startswith("test"):
                    for req_id in ids:
                        claims.setdefault(req_id, []).append(name)

    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        module_ids = [
            i
            for node in tree.body
            if isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets)
            for mark in _marks(node.value)
            for i in _req_ids(mark)
        ]
        visit(tree.body, path.relative_to(ROOT).as_posix(), module_ids)
    return claims


def test_files() -> list[Path]:
    files = [p for root in TEST_ROOTS for p in (ROOT / root).rglob("test_*.py") if ".venv" not in p.parts]
    return sorted(files)


def extract() -> tuple[dict[str, str], list[Requirement]]:
    """Return ({output file name: YAML text}, all requirements)."""
    outputs: dict[str, str] = {}
    everything: dict[str, Requirement] = {}
    claims = find_claims(test_files())
    for spec in sorted(SPECS.glob("*.md")):
        reqs = list(parse_spec(spec))
        if not reqs:
            continue
        for req in reqs:
            if req.req_id in everything:
                raise ExtractError(
                    f"{req.req_id} defined twice: {everything[req.req_id].source} and {req.source}"
                )
            everything[req.req_id] = req
            req.tests = claims.get(req.req_id, [])
        doc = {
            "schema_version": 1,
            "source": spec.relative_to(ROOT).as_posix(),
            "note": "generated by `python3 xtask.py spec-extract`; do not edit",
            "requirements": {r.req_id: r.as_yaml() for r in reqs},
        }
        name = re.sub(r"^[0-9]+[-_]", "", spec.stem) + ".yaml"
        outputs[name] = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120)
    unknown = sorted(set(claims) - set(everything))
    if unknown:
        where = "; ".join(f"{i} in {claims[i][0]}" for i in unknown)
        raise ExtractError(f"tests claim IDs no spec defines: {where}")
    return outputs, list(everything.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if requirements/ is stale")
    args = parser.parse_args(argv)
    try:
        outputs, reqs = extract()
    except ExtractError as exc:
        print(f"spec-extract: {exc}", file=sys.stderr)
        return 2
    existing = {p.name: p.read_text(encoding="utf-8") for p in OUT.glob("*.yaml")}
    stale = sorted(n for n in outputs.keys() | existing.keys() if outputs.get(n) != existing.get(n))
    if args.check and stale:
        print(f"spec-extract --check: stale {stale}; run `python3 xtask.py spec-extract`", file=sys.stderr)
        return 1
    if not args.check:
        OUT.mkdir(exist_ok=True)
        for name in stale:
            target = OUT / name
            if name in outputs:
                target.write_text(outputs[name], encoding="utf-8")
            else:
                target.unlink()
    musts = [r for r in reqs if r.level in ("must", "must-not")]
    unclaimed = [r for r in musts if not r.tests]
    claimed = sum(1 for r in reqs if r.tests)
    print(f"spec-extract: {len(reqs)} requirements ({len(musts)} MUST), {claimed} claimed by tests")
    print(f"spec-extract: {len(unclaimed)} MUST requirements no test claims:")
    for req in unclaimed:
        print(f"  {req.req_id:<16} {req.source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
