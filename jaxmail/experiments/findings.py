"""Machine-readable verdicts: every claim an experiment checks, with its counts.

Each experiment turns its ``results.csv`` into a list of :class:`Finding` records
(``Experiment.findings(config, table)``); the runner writes them to ``findings.json`` beside
``summary.md`` and appends them to the summary as a table, and ``jaxmail reproduce`` ends by
printing one table of the findings of every experiment.

A finding is a claim tested on rows: ``checked`` rows were tested, ``violations`` of them broke
it. Its words (:meth:`Finding.verdict`) are computed from those counts, never written by hand, so
a failed check cannot print "held". Two flags say what a held claim is worth:

* ``in_sample``: the tested rows' own data entered the quantity they are tested against (for
  example a delta envelope that contains the tested policy's own best-response shift). Such a
  check is not evidence: a row cannot fail against an estimate built from itself.
* ``evidence``: False for identities that hold by construction (an exact equality of a
  hand-made example, a bound that the game family makes impossible to break); ``why`` then says
  why in one sentence. An in-sample finding is never evidence.

``margin`` is the largest measured/(bound + rounding allowance) ratio over the checked rows for
a bound, or the largest ``|ours - expected| / tolerance`` for an agreement; either holds while
its margin is at most 1. NaN where no row was checked.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxmail.experiments import reporting, results

FINDINGS_FILE = "findings.json"
_KEYS = ("claim", "checked", "violations", "in_sample", "margin", "evidence", "why")


@dataclasses.dataclass(frozen=True)
class Finding:
    """One claim, tested on ``checked`` rows (module docstring).

    Attributes:
      claim: one sentence, the statement tested (not its outcome).
      checked: number of rows tested.
      violations: number of rows that broke the claim, ``0 <= violations <= checked``.
      in_sample: the rows' own data entered what they are tested against.
      margin: the largest measured/bound ratio, or ``|ours - expected| / tolerance`` (<= 1 holds).
      evidence: whether a held claim is evidence (False for identities; never with
        ``in_sample``).
      why: why the finding is not evidence (required when ``evidence`` is False), or a note.
    """

    claim: str
    checked: int
    violations: int
    in_sample: bool
    margin: float
    evidence: bool
    why: str = ""

    def __post_init__(self):
        if not self.claim:
            raise ValueError("claim: must be a non-empty sentence")
        if int(self.checked) != self.checked or self.checked < 0:
            raise ValueError(f"checked: expected an int >= 0, got {self.checked!r}")
        if int(self.violations) != self.violations or not 0 <= self.violations <= self.checked:
            raise ValueError(
                f"violations: expected an int in [0, checked={self.checked}], "
                f"got {self.violations!r}"
            )
        if self.evidence and self.in_sample:
            raise ValueError(f"{self.claim!r}: an in-sample finding cannot be evidence")
        if not self.evidence and not self.why:
            raise ValueError(f"{self.claim!r}: a finding that is not evidence needs `why`")
        object.__setattr__(self, "checked", int(self.checked))
        object.__setattr__(self, "violations", int(self.violations))
        object.__setattr__(self, "margin", float(self.margin))

    @property
    def held(self) -> bool:
        """At least one row was checked and none broke the claim."""
        return self.checked > 0 and self.violations == 0

    @property
    def status(self) -> str:
        """``"held"``, ``"failed"`` or ``"untested"`` (no row checked), from the counts."""
        if self.checked == 0:
            return "untested"
        return "held" if self.violations == 0 else "failed"

    def verdict(self) -> str:
        """The outcome in words, from the counts: ``"held on 120 of 120 rows"``."""
        if self.checked == 0:
            return "not tested: no row was checked"
        if self.violations == 0:
            return f"held on {self.checked} of {self.checked} rows"
        return f"FAILED on {self.violations} of {self.checked} rows"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if not math.isfinite(d["margin"]):
            d["margin"] = None  # JSON has no NaN or inf
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finding:
        unknown = sorted(set(d) - set(_KEYS))
        if unknown:
            raise ValueError(f"finding: unknown keys {unknown}")
        d = dict(d)
        if d.get("margin") is None:
            d["margin"] = math.nan
        return cls(**d)


def _rows(*arrays: Any) -> list[np.ndarray]:
    """The arrays flattened to float64 and broadcast to one length (a single value broadcasts
    to every row, also to none)."""
    return np.broadcast_arrays(*(np.asarray(a, dtype=np.float64).reshape(-1) for a in arrays))


def bound_margin(measured: Any, bound: Any, tolerance: Any) -> float:
    """``max(measured / (bound + tolerance))`` over the rows where ``measured`` and ``bound``
    are finite and ``bound + tolerance > 0``; NaN when there is none (:func:`bound_finding`)."""
    measured, bound, tolerance = _rows(measured, bound, tolerance)
    allowed = bound + tolerance
    positive = np.isfinite(measured) & np.isfinite(bound) & (allowed > 0)
    return float(np.max(measured[positive] / allowed[positive])) if positive.any() else math.nan


def bound_finding(
    claim: str,
    measured: Any,
    bound: Any,
    tolerance: Any,
    *,
    in_sample: bool = False,
    evidence: bool = True,
    why: str = "",
) -> Finding:
    """A finding ``measured <= bound`` over rows (arrays broadcast to one length; a scalar
    ``tolerance`` serves every row, and no row is an empty finding).

    A row is checked when ``measured`` and ``bound`` are finite (NaN rows, e.g. a solver that
    did not converge, are left out and therefore not counted as held). It is a violation when
    ``measured > bound + tolerance`` (:func:`jaxmail.experiments.reporting.violations`). The
    margin is :func:`bound_margin`, ``max(measured / (bound + tolerance))`` over the checked
    rows with ``bound + tolerance > 0``, so that it exceeds 1 exactly when some row is a
    violation, and rounding noise on rows whose bound is ~0 does not pass for tightness.
    """
    measured, bound, tolerance = _rows(measured, bound, tolerance)
    ok = np.isfinite(measured) & np.isfinite(bound)
    violations = int(np.sum(ok & reporting.violations(measured, bound, tolerance)))
    margin = bound_margin(measured, bound, tolerance)
    return Finding(claim, int(ok.sum()), violations, in_sample, margin, evidence, why)


def agreement_finding(
    claim: str,
    ours: Any,
    expected: Any,
    tolerance: Any,
    *,
    in_sample: bool = False,
    evidence: bool = True,
    why: str = "",
) -> Finding:
    """A finding ``|ours - expected| <= tolerance`` over rows (arrays broadcast to one length).

    Rows where ``expected`` is NaN (nothing to compare with) are left out; a NaN in ``ours``
    where ``expected`` is finite is a violation. The margin is ``max(|ours - expected| /
    tolerance)``.
    """
    ours, expected, tolerance = _rows(ours, expected, tolerance)
    if np.any(~(tolerance > 0)):
        raise ValueError("tolerance: must be > 0 in every row")
    checked = np.isfinite(expected)
    error = np.where(np.isfinite(ours), np.abs(ours - expected), np.inf)
    ratio = error[checked] / tolerance[checked]
    violations = int(np.sum(ratio > 1.0))
    margin = float(np.max(ratio)) if ratio.size else math.nan
    return Finding(claim, int(checked.sum()), violations, in_sample, margin, evidence, why)


def write(path: str | os.PathLike, findings: Sequence[Finding]) -> None:
    """Writes ``findings`` to ``path`` as a JSON list, atomically."""
    text = json.dumps([f.to_dict() for f in findings], indent=2, allow_nan=False)
    results.write_text(path, text + "\n")


def read(path: str | os.PathLike) -> list[Finding]:
    """The findings of a ``findings.json`` file.

    Raises:
      ValueError: the file is not a JSON list of findings (the message names the file).
    """
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, list):
            raise ValueError("expected a JSON list")
        return [Finding.from_dict(d) for d in data]
    except (json.JSONDecodeError, TypeError, ValueError) as e:
        raise ValueError(f"{os.fspath(path)}: not a findings file ({e})") from None


def _kind(f: Finding) -> str:
    if f.in_sample:
        return "in-sample"
    return "evidence" if f.evidence else "identity"


def markdown(findings: Sequence[Finding], *, experiments: Sequence[str] | None = None) -> str:
    """The findings as a Markdown table (verdict, kind, checked, violations, margin, claim).

    ``experiments``: one name per finding, shown in a first column (``jaxmail reproduce``).
    """
    header = ["verdict", "kind", "checked", "violations", "margin", "claim"]
    if experiments is not None:
        if len(experiments) != len(findings):
            raise ValueError("experiments: expected one name per finding")
        header = ["experiment", *header]
    rows = []
    for k, f in enumerate(findings):
        row = [f.status, _kind(f), f.checked, f.violations, f.margin, f.claim]
        rows.append([experiments[k], *row] if experiments is not None else row)
    return results.markdown_table(header, rows)


def section(findings: Sequence[Finding]) -> str:
    """The ``## Findings`` section that the runner appends to ``summary.md``."""
    if not findings:
        return "\n## Findings\n\nThis experiment checks no claim.\n"
    lines = ["", "## Findings", ""]
    lines.append(
        "Each claim's verdict is computed from its counts. `margin`: the largest "
        "measured/bound ratio (bounds) or |ours - expected|/tolerance (agreements); a claim "
        "holds while it is at most 1. `kind`: evidence; identity (holds by construction); "
        "in-sample (the rows entered their own estimate; never evidence)."
    )
    lines.append("")
    lines.append(markdown(findings).rstrip("\n"))
    notes = [f"- {f.claim}: {f.why}" for f in findings if f.why]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"
