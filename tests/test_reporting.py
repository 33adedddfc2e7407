"""Reporting helpers: medians under a stated NaN rule, trend words, violation counts, grids."""

import math

import numpy as np
import pytest

from jaxmail.experiments import continuity, demonstrations, dse_bound, reporting, tag


def test_median_nan_rules():
    values = [1.0, np.nan, 3.0, 10.0]
    # omit: the median of [1, 3, 10] is 3; propagate: the NaN makes it NaN.
    assert reporting.median(values, nan="omit") == 3.0
    assert math.isnan(reporting.median(values, nan="propagate"))
    # Even count under omit: [1, 3] -> (1 + 3) / 2.
    assert reporting.median([1.0, np.nan, 3.0], nan="omit") == 2.0
    for rule in reporting.NAN_RULES:
        assert math.isnan(reporting.median([], nan=rule))
    assert math.isnan(reporting.median([np.nan], nan="omit"))
    assert reporting.median((x for x in (4.0, 2.0, 9.0)), nan="propagate") == 4.0  # generator
    with pytest.raises(ValueError, match="nan: expected one of"):
        reporting.median([1.0], nan="skip")


def test_maximum_and_quartiles():
    assert reporting.maximum([np.nan, 2.0, 1.0]) == 2.0
    assert math.isnan(reporting.maximum([np.nan])) and math.isnan(reporting.maximum([]))
    # 1..5: the 25th and 75th percentiles sit on the 2nd and 4th order statistics.
    assert reporting.quartiles([5, 1, 4, 2, 3]) == (3.0, 2.0, 4.0)
    assert all(math.isnan(q) for q in reporting.quartiles([]))
    assert all(math.isnan(q) for q in reporting.quartiles([1.0, np.nan]))


def test_column_medians():
    table = {"a": np.array([1.0, 2.0, np.nan]), "b": np.array([5.0, 7.0, 9.0])}
    assert reporting.column_medians(table, ("b", "a"), nan="omit") == [7.0, 1.5]


@pytest.mark.parametrize(
    "values, kwargs, expected",
    [
        ([3, 2, 2], {}, "decreasing"),  # ties allowed
        ([1, 1, 1], {}, "decreasing"),  # constant: non-increasing
        ([1, 2, 2], {}, "increasing"),
        ([1, 3, 2], {}, "not monotone"),
        ([3, 2, 2], {"strict": True}, "not monotone"),  # the tie is not a fall
        ([3, 2, 1], {"strict": True}, "decreasing"),
        ([1, 2, 3], {"strict": True}, "increasing"),
        ([1, 1 + 1e-6], {"tol": 1e-4, "strict": True}, "flat"),  # within tol: rounding
        ([1, 1 - 1e-3], {"tol": 1e-4, "strict": True}, "decreasing"),
        ([1, 1 + 5e-5, 2], {"tol": 1e-4}, "increasing"),
        ([1.0], {}, "not comparable"),
        ([1.0, np.nan, 0.0], {}, "not comparable"),
        ([1.0, np.nan], {"strict": True}, "not comparable"),
    ],
)
def test_trend(values, kwargs, expected):
    assert reporting.trend(values, **kwargs) == expected
    assert expected in reporting.TRENDS


def test_tally_and_numbers():
    words = ["lowered", "raised", "lowered", "flat"]
    assert (
        reporting.tally(words, "lowered", ("raised", "flat")) == "2 of 4 cases (raised 1, flat 1)"
    )
    assert reporting.tally(["lowered"], "lowered", ("raised",)) == "1 of 1 cases (all)"
    assert reporting.numbers([0.5, 2.0, np.nan]) == "0.500, 2.000, —"


def test_violations():
    got = reporting.violations([1.0, 2.0, np.nan, 1.6], [1.0, 1.0, 1.0, 1.0], 0.5)
    # 1 <= 1.5; 2 > 1.5; NaN is not a violation; 1.6 > 1.5.
    assert got.tolist() == [False, True, False, True]


def test_panel_grid_hides_unused_panels():
    fig, axes = reporting.panel_grid(3, max_cols=2, width=2.0, height=1.5, extra_height=0.5)
    assert len(axes) == 3 and len(fig.axes) == 4  # a 2 x 2 grid, one panel unused
    assert [ax.get_visible() for ax in fig.axes] == [True, True, True, False]
    assert tuple(fig.get_size_inches()) == pytest.approx((4.0, 3.5))  # 2 cols, 2 rows + 0.5


def test_an_empty_table_summarises_as_no_results():
    assert reporting.no_results("# t: a title") == "# t: a title\n\nNo results.\n"
    for module in (continuity, demonstrations, dse_bound, tag):
        config = module.EXPERIMENT.config_type.quick()
        summary = module.summarize(config, {}, "unused")
        assert summary.startswith("# ") and summary.endswith("\n\nNo results.\n"), summary
