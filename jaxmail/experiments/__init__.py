"""Named experiments, the sweep runner that drives them, and their result files.

    jaxmail list                                   # the registered experiments
    jaxmail run dse-bound --quick --out results/dse-bound
    jaxmail reproduce --out results/               # every experiment at its default sizes

From Python::

    from jaxmail import experiments
    exp = experiments.get("dse-bound")
    experiments.run(exp, exp.config_type.quick(), "results/dse-bound")

Modules: :mod:`.base` (the :class:`Experiment` record, :class:`Config`, the registry),
:mod:`.runner` (:func:`run`: chunks, resumption, files), :mod:`.sharding` (:func:`map_seeds`:
vmap over seeds, sharded over devices), :mod:`.results` (atomic files, CSV, tables, figures),
:mod:`.reporting` (medians, trend words, violation counts, colours for summaries and figures),
:mod:`.rules` (the declared rules of configuration fields),
and one module per experiment. A new experiment registers itself at import
(:func:`register`); import its module below.
"""

# The built-in experiments register themselves when imported (`jaxmail list` order).
from jaxmail.experiments import (
    continuity,
    counterexamples,
    demonstrations,
    dse_bound,
    tag,
)
from jaxmail.experiments.base import (
    EXPERIMENTS,
    Config,
    Experiment,
    UnknownExperimentError,
    get,
    register,
)
from jaxmail.experiments.runner import ResumeError, run, seed_keys
from jaxmail.experiments.sharding import map_seeds, seed_mesh

__all__ = [
    "EXPERIMENTS",
    "Config",
    "Experiment",
    "ResumeError",
    "UnknownExperimentError",
    "continuity",
    "counterexamples",
    "demonstrations",
    "dse_bound",
    "get",
    "map_seeds",
    "register",
    "run",
    "seed_keys",
    "seed_mesh",
    "tag",
]
