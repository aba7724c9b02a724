"""Spec extraction: requirement lines, levels, sections and the tests that claim them."""

from __future__ import annotations

from pathlib import Path

import pytest

from codegen import spec_extract

SPEC = """# Title

## 1. Queue
- [ORCH-3004] The queue MUST keep order.
- [OC-ADAPT-5001a] Adapters SHOULD NOT buffer.
Some prose that MUST be ignored because it is not a bullet.
## 2. Other
- [HME-001] Users MAY pin pools.
- [X-1000] Plain statement.
"""

TESTS = """
import pytest

pytestmark = [pytest.mark.req("HME-001")]

@pytest.mark.req("ORCH-3004", "X-1000")
def test_a():
    pass

class TestGroup:
    @pytest.mark.req("OC-ADAPT-5001a")
    def test_b(self):
        pass

def helper():
    pass
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_requirements_are_parsed_with_level_and_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spec_extract, "ROOT", tmp_path)
    reqs = {r.req_id: r for r in spec_extract.parse_spec(write(tmp_path / "specs" / "10-x.md", SPEC))}
    assert list(reqs) == ["ORCH-3004", "OC-ADAPT-5001a", "HME-001", "X-1000"]
    assert [r.level for r in reqs.values()] == ["must", "should-not", "may", "info"]
    assert reqs["HME-001"].section == "2. Other"
    assert reqs["ORCH-3004"].source == "specs/10-x.md#L4"


@pytest.mark.req("ORCH-3428")
def test_claims_come_from_markers_classes_and_pytestmark(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spec_extract, "ROOT", tmp_path)
    claims = spec_extract.find_claims([write(tmp_path / "t" / "test_x.py", TESTS)])
    assert claims["ORCH-3004"] == ["t/test_x.py::test_a"]
    assert claims["OC-ADAPT-5001a"] == ["t/test_x.py::TestGroup::test_b"]
    assert sorted(claims["HME-001"]) == ["t/test_x.py::TestGroup::test_b", "t/test_x.py::test_a"]
    assert "helper" not in str(claims)


def test_every_spec_id_is_unique_and_every_claim_is_known() -> None:
    outputs, reqs = spec_extract.extract()  # raises ExtractError on either problem
    assert len({r.req_id for r in reqs}) == len(reqs)
    assert outputs
