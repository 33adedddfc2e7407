"""Declared configuration constraints: every rule of every experiment's Config rejects a bad
value with a message that names the field, the value and what was expected."""

import dataclasses
import math
import re

import pytest

from jaxmail import experiments
from jaxmail.experiments import rules
from jaxmail.experiments.base import Config
from jaxmail.experiments.rules import Constraint, Relation

# A value that breaks each kind of rule, keyed by the rule's words (Constraint.expected). A
# rule whose words are not here fails test_every_declared_constraint_rejects_a_bad_value, so a
# new kind of rule cannot be declared without a bad value that exercises it.
_BAD = {
    "a non-empty list": (),
    "an int >= 0": -1,
    "an int >= 1": 0,
    "an int >= 2": 1,
    "a number > 0": 0.0,
    "a number >= 0": -0.1,
    "a number in (0, 1)": 1.0,
    "a number in [0, 1]": 1.5,
    "a number in (0, 2]": 0.0,
    "a number > 0 or null (the solver's default)": -1.0,
}


def _bad_value(constraint: Constraint, default):
    if constraint.expected.startswith("one of "):
        return ("bogus",)
    if constraint.expected == "a list without duplicates":
        return (default[0], default[0])
    bad = _BAD[constraint.expected]
    return (bad,) if constraint.each else bad


_CASES = [
    (name, config_type, field_name, k)
    for name, experiment in sorted(experiments.EXPERIMENTS.items())
    for config_type in [experiment.config_type]
    for field_name, declared in config_type.constraints().items()
    for k in range(len(declared))
]


def test_defaults_and_quick_variants_are_valid():
    for experiment in experiments.EXPERIMENTS.values():
        experiment.config_type()
        experiment.config_type.quick()


@pytest.mark.parametrize("name, config_type, field_name, k", _CASES)
def test_every_declared_constraint_rejects_a_bad_value(name, config_type, field_name, k):
    del name
    rule = config_type.constraints()[field_name][k]
    default = {f.name: f.default for f in dataclasses.fields(config_type)}[field_name]
    bad = _bad_value(rule, default)
    where = rf"{field_name}(\[0\]|\[1\])?"
    message = rf"^{where}: expected {re.escape(rule.expected)}, got "
    with pytest.raises(ValueError, match=message):
        config_type.from_dict({field_name: bad})
    with pytest.raises(ValueError, match=message):  # direct construction checks the same
        config_type(**{field_name: bad})


def test_every_experiment_declares_its_rules():
    # The rules that each experiment's configuration had to meet: a field that lost its
    # declaration (e.g. redeclared without `field(...)` in a class that declared none) fails.
    for experiment in experiments.EXPERIMENTS.values():
        declared = experiment.config_type.constraints()
        assert declared["seeds"] and declared["chunk_size"]  # inherited from Config
        unchecked = [n for n, r in declared.items() if not r and n != "base_seed"]
        assert not unchecked, (experiment.name, unchecked)


@pytest.mark.parametrize(
    "config_type, values, match",
    [
        (
            experiments.continuity.ContinuityConfig,
            {"branching": 9, "num_states": 8},
            r"^branching, num_states: expected branching <= num_states \(0: dense\), "
            r"got branching=9, num_states=8$",
        ),
        (
            experiments.continuity.ContinuityConfig,
            {"bc_entropy": [0.0, 0.1], "bc_l2": [0.0]},
            r"^bc_entropy, bc_l2: expected one length .*got bc_entropy=\(0.0, 0.1\), "
            r"bc_l2=\(0.0,\)$",
        ),
        (
            experiments.tag.TagConfig,
            {"rows": 1, "cols": 1},
            r"^rows, cols: expected a grid of at least 2 cells, got rows=1, cols=1$",
        ),
    ],
)
def test_relations_between_fields(config_type, values, match):
    with pytest.raises(ValueError, match=match):
        config_type.from_dict(values)
    assert config_type.RELATIONS  # declared, not hand-checked


def test_numbers_reject_bools_nan_and_strings():
    config_type = experiments.dse_bound.DSEBoundConfig
    for bad in (True, math.nan, "0.9"):
        with pytest.raises(ValueError, match=r"^learning_rate: expected a number > 0, got "):
            config_type(learning_rate=bad)
    with pytest.raises(ValueError, match=r"^search_steps: expected an int >= 1, got 2.5$"):
        config_type(search_steps=2.5)
    # An element's message names its place and shows the whole list.
    with pytest.raises(ValueError, match=r"^radii\[1\]: .*got 3.0 \(in \[0.1, 3.0\]\)$"):
        config_type.from_dict({"radii": [0.1, 3.0]})


def test_building_blocks():
    assert rules.number("(0, 2]").test(2.0) and not rules.number("(0, 2]").test(0.0)
    assert rules.number("[0, 1)").test(0.0) and not rules.number("[0, 1)").test(1.0)
    assert rules.integer("<= 3").test(3) and not rules.integer("<= 3").test(4)
    assert rules.integer("< 3").expected == "an int < 3"
    with pytest.raises(ValueError, match="range: expected"):
        rules.number("positive")
    rule = rules.number("> 0", none="the default")
    assert rule.test(None) and rule.test(1.0) and not rule.test(0.0)
    assert rule.expected == "a number > 0 or null (the default)"
    assert not rules.number("> 0").test(None)

    @dataclasses.dataclass(frozen=True)
    class Child(Config):
        seeds: int = 2  # redeclared for its default only: keeps Config's rule
        width: float = rules.field(1.0, rules.number("> 0"))
        RELATIONS = (Relation(("seeds", "width"), "seeds > width", lambda s, w: s > w),)

    assert Child.constraints()["seeds"] == Config.constraints()["seeds"]
    with pytest.raises(ValueError, match="^seeds: expected an int >= 1, got 0$"):
        Child(seeds=0)
    with pytest.raises(ValueError, match="^seeds, width: expected seeds > width"):
        Child(width=5.0)
