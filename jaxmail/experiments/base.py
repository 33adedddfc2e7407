"""Experiments: a frozen configuration, a grid of settings, a batched kernel, a summary, plots.

An :class:`Experiment` is a record of plain functions; the runner (:mod:`.runner`) drives it:

1. ``config_type`` (a subclass of :class:`Config`, a frozen dataclass) holds every parameter.
   ``Config.from_dict`` rejects unknown keys; ``Config.quick()`` is the small variant for CI.
   Each field declares what its value must satisfy (:mod:`.rules`: ``field(0.9,
   number("(0, 1)"))``; rules between fields are :class:`~.rules.Relation` records in
   ``RELATIONS``), and :class:`Config` checks them all on construction: no subclass checks a
   field by hand.
2. ``settings(config)`` lists the grid: one dict of scalars per setting (``{"num_players": 3,
   "discount": 0.9}``). The keys become the first columns of ``results.csv``.
3. ``run_chunk(config, setting, keys)`` computes one chunk of seeds of one setting: ``keys`` is a
   ``[B]`` array of PRNG keys (one per seed; the runner makes them, see
   :func:`jaxmail.experiments.runner.seed_keys`), and the result is a dict of NumPy columns that
   all have the same shape ``[B, *extra]``. Each entry of the flattened (C order) shape is one
   row of ``results.csv``: ``[B]`` gives one row per seed, ``[B, K]`` gives ``K`` rows per seed
   (e.g. ``K`` dataset sizes of one compiled call; the experiment broadcasts the size column to
   ``[B, K]`` itself). Inside: one compiled, batched JAX program over the seeds, through
   :func:`jaxmail.experiments.sharding.map_seeds` (vmap over seeds, sharded over devices). The
   numbers of a seed must depend on its key and the setting only, never on the other seeds of
   the chunk, so that chunking, resuming and the device count leave them unchanged.
4. ``summarize(config, table, out_dir)`` returns ``summary.md`` (Markdown: the finding in a
   sentence, then a table with the paper's number beside ours where the paper has one), and
   ``plot(config, table, out_dir)`` writes PNG figures into ``out_dir`` (with
   :func:`jaxmail.experiments.results.save_figure`, atomic) and returns their paths. ``table`` is
   ``results.csv`` read back as columns (:func:`jaxmail.experiments.results.read_table`), so the
   summary of a resumed run is that of an uninterrupted one.
5. ``findings(config, table)`` returns the claims the experiment checks, as
   :class:`jaxmail.experiments.findings.Finding` records computed from the table (rows checked,
   violations, in-sample or not, margin, evidence or identity). The runner writes them to
   ``findings.json`` and appends them to ``summary.md``; the summary's own sentences must not
   state a verdict that the counts do not carry.

Adding an experiment: write a module ``jaxmail/experiments/<name>.py`` that defines its config
subclass and the four functions, calls :func:`register` at import, and import that module in
``jaxmail/experiments/__init__.py``. Then ``jaxmail list`` shows it and ``jaxmail reproduce``
runs it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import jax
import numpy as np

from jaxmail.experiments.rules import Constraint, Relation, field, integer

Scalar = bool | int | float | str
Setting = dict[str, Scalar]
Table = dict[str, np.ndarray]

_NUMBER = (int, float)


def _parse(name: str, value: Any, kind: type, words: str) -> Any:
    """``kind(value)`` for a string (command-line) value; other values pass unchanged."""
    if not isinstance(value, str):
        return value
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"{name}: expected {words}, got {value!r}") from None


def _coerce(name: str, value: Any, default: Any) -> Any:
    """``value`` converted to the type of the field's ``default`` (a JSON-like scalar or tuple)."""
    if isinstance(default, tuple):
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{name}: expected a list, got {value!r}")
        element = default[0] if default else None
        return tuple(_coerce(f"{name}[{k}]", v, element) for k, v in enumerate(value))
    if default is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        if not isinstance(value, bool):
            raise ValueError(f"{name}: expected true or false, got {value!r}")
        return value
    if isinstance(default, int):
        value = _parse(name, value, int, "an integer")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name}: expected an integer, got {value!r}")
        return value
    if isinstance(default, float):
        value = _parse(name, value, float, "a number")
        if isinstance(value, bool) or not isinstance(value, _NUMBER):
            raise ValueError(f"{name}: expected a number, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ValueError(f"{name}: expected a string, got {value!r}")
        return value
    return value


@dataclasses.dataclass(frozen=True)
class Config:
    """Parameters every experiment has. Subclass it (``@dataclasses.dataclass(frozen=True)``)
    and give every field a default; fields hold JSON-like values (bool, int, float, str, or
    tuples of them), so that ``config.json`` round-trips.

    A field's rules are declared with :func:`jaxmail.experiments.rules.field` (``discount:
    float = field(0.9, number("(0, 1)"))``) and rules between fields in ``RELATIONS``;
    construction checks them in field order and raises ``ValueError`` naming the field, the
    value and what was expected.
    A subclass that redeclares a field only to change its default (``seeds: int = 16``) keeps
    the rules of the class that declared them.

    Attributes:
      seeds: number of seeds; seed ``s`` in ``0 .. seeds-1`` gets the PRNG key
        ``fold_in(key(base_seed), s)``.
      chunk_size: seeds per compiled call; results are written after each chunk.
      base_seed: the root of every key.
    """

    seeds: int = field(64, integer(">= 1"))
    chunk_size: int = field(64, integer(">= 1"))
    base_seed: int = 0

    QUICK: ClassVar[Mapping[str, Any]] = {}  # overrides of the defaults for quick()
    RELATIONS: ClassVar[tuple[Relation, ...]] = ()  # rules between fields

    def __post_init__(self):
        for name, constraints in self.constraints().items():
            for constraint in constraints:
                constraint.check(name, getattr(self, name))
        for relation in self.RELATIONS:
            relation.check(self)

    @classmethod
    def constraints(cls) -> dict[str, tuple[Constraint, ...]]:
        """Each field's declared rules, in field order (a field redeclared without rules
        keeps those of the nearest base class that declared some)."""
        out: dict[str, tuple[Constraint, ...]] = {}
        for klass in reversed(cls.__mro__):
            if not dataclasses.is_dataclass(klass):
                continue
            for f in dataclasses.fields(klass):
                declared = f.metadata.get("constraints")
                if declared is not None or f.name not in out:
                    out[f.name] = tuple(declared or ())
        return {f.name: out[f.name] for f in dataclasses.fields(cls)}

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Config:
        """A config from a mapping; missing keys take their defaults.

        Values are converted to the type of the field's default (``"0.5,0.9"`` or ``[0.5, 0.9]``
        for a tuple of floats, ``"8"`` for an int).

        Raises:
          ValueError: an unknown key (the message names it and lists the known ones), or a value
            of the wrong type.
        """
        known = cls.field_names()
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(
                f"unknown configuration key(s) {unknown} for {cls.__name__}; "
                f"known keys: {list(known)}"
            )
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        return cls(**{k: _coerce(k, v, defaults[k]) for k, v in values.items()})

    @classmethod
    def quick(cls, **overrides: Any) -> Config:
        """The small variant (``--quick``): the defaults with ``QUICK`` and ``overrides`` on top."""
        return cls.from_dict({**cls.QUICK, **overrides})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: tuples become lists."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    def replace(self, **overrides: Any) -> Config:
        """A copy with some fields replaced, checked like :meth:`from_dict`."""
        return type(self).from_dict({**self.to_dict(), **overrides})

    def chunks(self) -> list[np.ndarray]:
        """The seeds ``0 .. seeds-1`` split into consecutive chunks of ``chunk_size``."""
        seeds = np.arange(self.seeds)
        return [seeds[k : k + self.chunk_size] for k in range(0, self.seeds, self.chunk_size)]


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A named experiment (see the module docstring for the contract of each function).

    Attributes:
      name: command-line name, e.g. ``"dse-bound"``.
      description: one line for ``jaxmail list``.
      config_type: the :class:`Config` subclass.
      settings: ``settings(config) -> list[dict[str, scalar]]``.
      run_chunk: ``run_chunk(config, setting, keys) -> dict[str, np.ndarray]``, ``keys`` a
        ``[B]`` PRNG key array; every column ``[B, *extra]``.
      summarize: ``summarize(config, table, out_dir) -> str`` (Markdown).
      plot: ``plot(config, table, out_dir) -> list[str]`` (PNG paths).
      findings: ``findings(config, table) -> list[Finding]`` (:mod:`.findings`); ``None``
        for an experiment that checks no claim.
    """

    name: str
    description: str
    config_type: type[Config]
    settings: Callable[[Config], list[Setting]]
    run_chunk: Callable[[Config, Setting, jax.Array], dict[str, np.ndarray]]
    summarize: Callable[[Config, Table, str], str]
    plot: Callable[[Config, Table, str], list[str]]
    findings: Callable[[Config, Table], list[Any]] | None = None

    def default_config(self, *, quick: bool = False, **overrides: Any) -> Config:
        """The default (or quick) configuration with ``overrides`` checked by ``from_dict``."""
        if quick:
            return self.config_type.quick(**overrides)
        return self.config_type.from_dict(overrides)


EXPERIMENTS: dict[str, Experiment] = {}


class UnknownExperimentError(KeyError):
    """No experiment of that name is registered (a ``KeyError`` with a readable message)."""

    def __str__(self) -> str:
        return str(self.args[0])


def register(experiment: Experiment) -> Experiment:
    """Adds ``experiment`` to :data:`EXPERIMENTS` (a second one of the same name is an error)."""
    if experiment.name in EXPERIMENTS and EXPERIMENTS[experiment.name] is not experiment:
        raise ValueError(f"an experiment named {experiment.name!r} is already registered")
    EXPERIMENTS[experiment.name] = experiment
    return experiment


def get(name: str) -> Experiment:
    """The registered experiment called ``name``.

    Raises:
      UnknownExperimentError: (a ``KeyError``) no such experiment; the message lists the known
        names.
    """
    try:
        return EXPERIMENTS[name]
    except KeyError:
        known = ", ".join(sorted(EXPERIMENTS)) or "(none)"
        raise UnknownExperimentError(
            f"unknown experiment {name!r}; known experiments: {known}"
        ) from None
