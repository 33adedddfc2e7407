"""Declared rules for configuration fields: what a value must be, in words and as a test.

A :class:`jaxmail.experiments.base.Config` field states its rules where it is declared::

    discount: float = field(0.9, number("(0, 1)"))
    families: tuple[str, ...] = field(FAMILIES, NON_EMPTY, one_of(FAMILIES))
    nash_gap_tol: float | None = field(None, number("> 0", none="the solver's default"))

and rules between fields are :class:`Relation` records in the class's ``RELATIONS``. The
config checks them on construction; a broken rule raises one form of message, which names the
field (and the element of a list), the value, and what was expected::

    discount: expected a number in (0, 1), got 1.0
    epsilons[2]: expected a number >= 0, got -0.1 (in [0.0, 0.1, -0.1])
    branching, num_states: expected branching <= num_states (0: dense), got branching=9, ...

Ranges are written as text: ``"> 0"``, ``">= 1"``, ``"< 3"``, ``"<= 3"``, or an interval
``"(0, 1)"``, ``"[0, 1]"``, ``"(0, 2]"``. A NaN is in no range.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Collection
from typing import Any

import numpy as np


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


_COMPARISONS = ((">=", operator.ge), ("<=", operator.le), (">", operator.gt), ("<", operator.lt))


def _range(text: str) -> tuple[Callable[[Any], bool], str]:
    """``(test, words)`` of a range written ``"> 0"``, ``">= 1"``, ``"(0, 1)"`` or ``"(0, 2]"``.

    Raises:
      ValueError: ``text`` is none of those forms.
    """
    text = text.strip()
    for symbol, compare in _COMPARISONS:
        if text.startswith(symbol):
            limit = float(text[len(symbol) :])
            return (lambda v, compare=compare, limit=limit: bool(compare(v, limit))), text
    if len(text) >= 5 and text[0] in "([" and text[-1] in ")]" and "," in text:
        lo, hi = (float(x) for x in text[1:-1].split(","))
        above = operator.gt if text[0] == "(" else operator.ge
        below = operator.lt if text[-1] == ")" else operator.le
        return (lambda v: bool(above(v, lo) and below(v, hi))), f"in {text}"
    raise ValueError(f"range: expected '> x', '>= x', '< x', '<= x' or an interval, got {text!r}")


@dataclasses.dataclass(frozen=True)
class Constraint:
    """A rule that one configuration field's value must satisfy (see :func:`field`).

    Build one with :func:`integer`, :func:`number`, :func:`one_of` or :func:`each`, or use
    :data:`NON_EMPTY` / :data:`DISTINCT`.

    Attributes:
      expected: a good value in words (``"an int >= 1"``); the error message quotes it.
      test: ``test(value) -> bool``; a ``TypeError`` inside it counts as False.
      each: the rule applies to every element of a tuple field; the error then names the
        element and shows the list.
    """

    expected: str
    test: Callable[[Any], bool]
    each: bool = False

    def check(self, name: str, value: Any) -> None:
        """Raises ``ValueError("<name>: expected <expected>, got <value>")`` on a bad value
        (``"<name>[k]: ..., got <element> (in <list>)"`` for an ``each`` rule)."""
        items = enumerate(value) if self.each else ((None, value),)
        for k, v in items:
            try:
                ok = bool(self.test(v))
            except TypeError:
                ok = False
            if not ok:
                where = name if k is None else f"{name}[{k}]"
                context = f" (in {list(value)})" if self.each else ""
                raise ValueError(f"{where}: expected {self.expected}, got {v!r}{context}")


def integer(range_: str) -> Constraint:
    """An ``int`` (not a bool) in ``range_`` (``">= 1"``, ``"[0, 10]"``...)."""
    test, words = _range(range_)
    return Constraint(f"an int {words}", lambda v: _is_int(v) and test(v))


def number(range_: str, *, none: str | None = None) -> Constraint:
    """An int or float (not a bool, not NaN) in ``range_`` (``"> 0"``, ``"(0, 1)"``...).

    ``none``: when given, ``None`` is also accepted, and means what ``none`` says (``"the
    solver's default"``); the message then reads ``"a number > 0 or null (<none>)"``.
    """
    test, words = _range(range_)
    if none is None:
        return Constraint(f"a number {words}", lambda v: _is_number(v) and test(v))
    return Constraint(
        f"a number {words} or null ({none})", lambda v: v is None or (_is_number(v) and test(v))
    )


def one_of(known: Collection[Any]) -> Constraint:
    """Every element of a tuple field is one of ``known`` (e.g. a subset of ``FAMILIES``)."""
    known = tuple(known)
    return Constraint(f"one of {list(known)}", lambda v: v in known, each=True)


def each(constraint: Constraint) -> Constraint:
    """``constraint`` applied to every element of a tuple field."""
    return dataclasses.replace(constraint, each=True)


NON_EMPTY = Constraint("a non-empty list", lambda v: len(v) > 0)
DISTINCT = Constraint("a list without duplicates", lambda v: len(set(v)) == len(v))


def field(default: Any, *constraints: Constraint) -> Any:
    """A config field: its ``default`` and the :class:`Constraint` rules its value obeys
    (a ``dataclasses.field`` whose metadata holds them)."""
    return dataclasses.field(default=default, metadata={"constraints": constraints})


@dataclasses.dataclass(frozen=True)
class Relation:
    """A rule between fields of one config (listed in its class's ``RELATIONS``).

    Attributes:
      names: the fields, in the order ``test`` takes them.
      expected: the rule in words; the message is ``"<names>: expected <expected>, got
        <name>=<value>, ..."``.
      test: ``test(*values) -> bool``.
    """

    names: tuple[str, ...]
    expected: str
    test: Callable[..., bool]

    def check(self, config: Any) -> None:
        """Raises ``ValueError`` when ``test`` fails on ``config``'s values of ``names``."""
        values = [getattr(config, name) for name in self.names]
        if not self.test(*values):
            got = ", ".join(f"{n}={v!r}" for n, v in zip(self.names, values))
            raise ValueError(f"{', '.join(self.names)}: expected {self.expected}, got {got}")
