"""Findings: verdicts computed from counts, and the checks that make them fail."""

import json
import math

import numpy as np
import pytest

from jaxmail.experiments import findings
from jaxmail.experiments.findings import Finding


def test_bound_finding_counts_violations_and_margin():
    measured = np.array([0.5, 1.0, 3.0, np.nan])
    bound = np.array([1.0, 2.0, 2.0, 1.0])
    f = findings.bound_finding("m <= b", measured, bound, 0.0)
    assert f.checked == 3  # the NaN row is not checked
    assert f.violations == 1  # 3.0 > 2.0
    assert f.margin == pytest.approx(1.5)
    assert f.status == "failed" and not f.held
    assert f.verdict() == "FAILED on 1 of 3 rows"


def test_bound_finding_tolerance_and_held_words():
    f = findings.bound_finding("m <= b", [1.05, 0.2], [1.0, 1.0], 0.1)
    assert f.violations == 0 and f.held
    assert f.verdict() == "held on 2 of 2 rows"
    assert f.margin == pytest.approx(1.05 / 1.1)  # measured / (bound + allowance)
    # Rounding noise where the bound is ~0 is not tightness: 2e-6 / (1e-8 + 1e-3).
    g = findings.bound_finding("m <= b", [2e-6], [1e-8], 1e-3)
    assert g.held and g.margin < 0.01


def test_agreement_finding_nan_ours_is_a_violation():
    f = findings.agreement_finding("ours == paper", [1.0, np.nan, 2.5], [1.0, 2.0, 2.0], 0.1)
    assert f.checked == 3 and f.violations == 2
    assert math.isinf(f.margin)
    g = findings.agreement_finding("ours == paper", [1.0, 7.0], [1.0, np.nan], 0.1)
    assert g.checked == 1 and g.violations == 0 and g.margin == 0.0
    with pytest.raises(ValueError, match="tolerance"):
        findings.agreement_finding("x", [1.0], [1.0], 0.0)


def test_untested_is_not_held():
    f = findings.bound_finding("m <= b", [np.nan], [1.0], 0.0)
    assert f.checked == 0 and f.status == "untested" and not f.held
    assert "not tested" in f.verdict()


def test_bound_finding_of_no_rows_with_a_scalar_tolerance():
    # A selection that kept no row (e.g. a family that did not run): the scalar allowance
    # serves every row, also none, and the finding is untested rather than an error.
    f = findings.bound_finding("m <= b", np.zeros(0), np.zeros(0), 1e-4)
    assert f.checked == 0 and f.violations == 0 and f.status == "untested"
    assert math.isnan(f.margin)
    with pytest.raises(ValueError):  # two row counts that do not broadcast
        findings.bound_finding("m <= b", np.zeros(2), np.zeros(3), 0.0)


def test_bound_margin_is_the_findings_margin():
    measured, bound = [0.5, 3.0, np.nan, 1.0], [1.0, 2.0, 1.0, -0.5]
    # Rows 0 and 1 count (row 2 is NaN; row 3 has bound + tolerance = -0.4 <= 0):
    # max(0.5 / 1.1, 3.0 / 2.1) = 3.0 / 2.1.
    margin = findings.bound_margin(measured, bound, 0.1)
    assert margin == pytest.approx(3.0 / 2.1)
    assert findings.bound_finding("m <= b", measured, bound, 0.1).margin == margin
    assert math.isnan(findings.bound_margin([np.nan], [1.0], 0.0))


def test_finding_rejects_inconsistent_records():
    with pytest.raises(ValueError, match="in-sample"):
        Finding("c", 3, 0, in_sample=True, margin=0.5, evidence=True)
    with pytest.raises(ValueError, match="why"):
        Finding("c", 3, 0, in_sample=False, margin=0.5, evidence=False)
    with pytest.raises(ValueError, match="violations"):
        Finding("c", 3, 4, in_sample=False, margin=0.5, evidence=True)


def test_json_round_trip_and_markdown(tmp_path):
    found = [
        findings.bound_finding("a", [1.0], [2.0], 0.0),
        Finding("b", 0, 0, False, math.nan, False, why="holds by construction"),
    ]
    path = tmp_path / "findings.json"
    findings.write(path, found)
    data = json.loads(path.read_text())
    assert [d["claim"] for d in data] == ["a", "b"]
    assert data[1]["margin"] is None
    assert set(data[0]) == {
        "claim",
        "checked",
        "violations",
        "in_sample",
        "margin",
        "evidence",
        "why",
    }
    back = findings.read(path)
    assert back[0] == found[0] and back[1].claim == "b" and math.isnan(back[1].margin)
    table = findings.markdown(found, experiments=["x", "y"])
    assert "| x | held | evidence | 1 | 0 |" in table
    assert "| y | untested | identity |" in table
    section = findings.section(found)
    assert "holds by construction" in section
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="not a findings file"):
        findings.read(tmp_path / "bad.json")
