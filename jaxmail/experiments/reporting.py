"""What every experiment's summary and figures share: medians, trend words, violation counts,
colours and markers, figure grids.

Each summary reduces columns of ``results.csv`` (``[R]`` arrays over the rows of one setting)
to a few numbers and words. The rules live here once, each stated where it is defined:

* :func:`median` takes the NaN rule as an argument (``nan="omit"`` or ``nan="propagate"``),
  because the experiments mean different things by a NaN row: a solve that did not converge
  (left out) or a quantity that is undefined for the whole group (carried through).
* :func:`trend` turns a sequence of medians into ``"decreasing"``, ``"increasing"``, ``"flat"``,
  ``"not monotone"`` or ``"not comparable"``; :func:`tally` counts such words.
* :func:`violations` is the rule ``measured > bound + tolerance`` that the tables count and
  :func:`jaxmail.experiments.findings.bound_finding` checks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from jaxmail.experiments import results

COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
"""Line colours, in the order series are drawn (matplotlib's first six ``tab`` colours)."""

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
"""Marker shapes, in the order series are drawn."""

NAN_RULES = ("omit", "propagate")


def _floats(values: Any) -> np.ndarray:
    """``values`` as a float64 array (a generator is read into a list first)."""
    return np.asarray(list(values) if isinstance(values, Iterator) else values, dtype=float)


def no_results(title: str) -> str:
    """The whole ``summary.md`` of an experiment whose ``results.csv`` has no row: its
    ``title`` line and ``No results.``."""
    return f"{title}\n\nNo results.\n"


def median(values: Any, *, nan: str) -> float:
    """The median of ``values`` (any shape, flattened), with a stated NaN rule.

    Args:
      values: numbers (an array or an iterable).
      nan: ``"omit"``: NaN entries are left out (rows whose solve failed do not count); NaN when
        no finite-or-infinite entry is left. ``"propagate"``: a NaN entry makes the median NaN
        (NumPy's ``np.median``).

    Returns:
      The median as a Python float; NaN for no values under either rule.

    Raises:
      ValueError: ``nan`` is not one of :data:`NAN_RULES`.
    """
    if nan not in NAN_RULES:
        raise ValueError(f"nan: expected one of {list(NAN_RULES)}, got {nan!r}")
    x = _floats(values).reshape(-1)
    if nan == "omit":
        x = x[~np.isnan(x)]
    return float(np.median(x)) if x.size else math.nan


def maximum(values: Any) -> float:
    """The largest entry of ``values`` with NaN entries left out; NaN when none is left."""
    x = _floats(values).reshape(-1)
    x = x[~np.isnan(x)]
    return float(np.max(x)) if x.size else math.nan


def quartiles(values: Any) -> tuple[float, float, float]:
    """``(median, 25th, 75th percentile)`` of ``values``; a NaN entry propagates; NaNs for no
    values (linear interpolation between order statistics, ``np.percentile``'s default)."""
    x = _floats(values).reshape(-1)
    if not x.size:
        return math.nan, math.nan, math.nan
    q25, q50, q75 = np.percentile(x, [25, 50, 75])
    return float(q50), float(q25), float(q75)


def column_medians(table: dict[str, np.ndarray], columns: Sequence[str], *, nan: str) -> list:
    """``[median(table[c], nan=nan) for c in columns]``: one table row's cells."""
    return [median(table[c], nan=nan) for c in columns]


TRENDS = ("decreasing", "increasing", "flat", "not monotone", "not comparable")


def trend(values: Iterable[float], *, tol: float = 0.0, strict: bool = False) -> str:
    """How a sequence moves, in order, as one of :data:`TRENDS`.

    With steps ``d_k = v_{k+1} - v_k``:

    * ``"not comparable"``: fewer than two values, or a NaN among them.
    * ``strict=False`` (steps within ``tol`` are ties, allowed in a monotone sequence):
      ``"decreasing"`` when every ``d_k <= tol``, else ``"increasing"`` when every
      ``d_k >= -tol``, else ``"not monotone"``. A constant sequence is ``"decreasing"``
      (non-increasing).
    * ``strict=True`` (steps within ``tol`` are rounding, not movement): ``"flat"`` when every
      ``|d_k| <= tol``, ``"decreasing"`` when every ``d_k < -tol``, ``"increasing"`` when every
      ``d_k > tol``, else ``"not monotone"``.

    Example: ``trend([3, 2, 2])`` is ``"decreasing"``; ``trend([3, 2, 2], strict=True)`` is
    ``"not monotone"``; ``trend([1, 1 + 1e-6], tol=1e-4, strict=True)`` is ``"flat"``.
    """
    v = _floats(values).reshape(-1)
    if v.size < 2 or np.any(np.isnan(v)):
        return "not comparable"
    steps = np.diff(v)
    if strict:
        if np.all(np.abs(steps) <= tol):
            return "flat"
        if np.all(steps < -tol):
            return "decreasing"
        if np.all(steps > tol):
            return "increasing"
        return "not monotone"
    if np.all(steps <= tol):
        return "decreasing"
    if np.all(steps >= -tol):
        return "increasing"
    return "not monotone"


def tally(words: Sequence[str], lead: str, others: Sequence[str]) -> str:
    """``"2 of 9 cases (raised 6, flat 1)"``: how many of ``words`` are ``lead``, then the count
    of each of ``others`` that occurs (in that order), or ``"all"`` when none does."""
    detail = ", ".join(f"{w} {words.count(w)}" for w in others if words.count(w))
    return f"{words.count(lead)} of {len(words)} cases ({detail or 'all'})"


def numbers(values: Iterable[float]) -> str:
    """``"0.123, 4.000, —"``: numbers as the tables write them (:func:`results.format_number`)."""
    return ", ".join(results.format_number(float(v)) for v in values)


def violations(measured: Any, bound: Any, tolerance: Any) -> np.ndarray:
    """Boolean mask of the rows where ``measured > bound + tolerance`` (arrays broadcast).

    A NaN in ``measured`` or ``bound`` is not a violation (the comparison is False): such rows
    are counted as unchecked by :func:`jaxmail.experiments.findings.bound_finding`.
    """
    measured = np.asarray(measured, dtype=float)
    return measured > np.asarray(bound, dtype=float) + np.asarray(tolerance, dtype=float)


def panel_grid(count: int, *, max_cols: int, width: float, height: float, extra_height=0.0):
    """A figure of ``count`` panels in rows of at most ``max_cols``; unused panels hidden.

    Args:
      count: number of panels (>= 1).
      max_cols: panels per row at most.
      width: inches per panel across; the figure is ``width cols`` wide.
      height: inches per panel down; the figure is ``height rows + extra_height`` high
        (matplotlib's constrained layout).
      extra_height: inches added for a figure-wide legend or title.

    Returns:
      ``(fig, axes)``: a :func:`results.new_figure` and the ``[count]`` visible axes, row by row.
    """
    cols = min(max_cols, count)
    rows = -(-count // cols)
    fig = results.new_figure(
        figsize=(width * cols, height * rows + extra_height), layout="constrained"
    )
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[count:]:
        ax.set_visible(False)
    return fig, axes[:count]
