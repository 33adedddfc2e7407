"""Experiment ``counterexamples``: the paper's three counterexample games (docs/theory.md §4).

For every game, discount, learner and seed, one row (the games and the hand-made imitators are
deterministic; the seed draws the start of the learned imitators):

* ``lemma1``: state-only matching fails with full support; paper ``eps_mu = 0`` and
  ``NashGap(learner) = (5/3)/(1-gamma)`` (16.667 at gamma = 0.9).
* ``theorem2``: state-action matching fails without full support; paper ``eps_rho = 0``,
  ``NashGap(learner) = gamma/(1-gamma)`` (9.000) and ``NashGap(expert) = gamma``.
* ``theorem2_exact``: the same with ``r(s1) = 0``, an exact expert;
  ``NashGap(learner) = gamma^2/(1-gamma)``.
* ``lemma2``: a tiny BC error moves a best response by 2; chain length
  ``k = ceil(log((eps/2)(1-gamma)) / log gamma)`` (57 at gamma = 0.9, eps = 0.05),
  ``eps_BC = 2 gamma^(k+1)`` (0.00444), ``NashGap(learner) = (gamma - gamma^(k+1))/(1-gamma)``
  (8.978), BR shift of player 0 = 2.

Columns: ``num_states``, ``chain_length`` (Lemma 2's ``k``, else 0), ``eps_mu``, ``eps_rho``,
``eps_bc`` (``jm.state_occupancy_error``, ``jm.occupancy_error``, ``jm.bc_error`` of the learner
against the expert), ``expert_nash_gap``, ``learner_nash_gap``, ``learner_nash_conv``,
``br_shift_0`` (player 0's BR shift against the learner), ``converged``; then the expected
values of the hand-made learner, in two kinds kept apart:

* ``paper_*``: what the paper's statements claim of its constructions (Lemma 1: the state
  occupancies match, ``eps_mu = 0``; Theorem 2: the state-action occupancies match,
  ``eps_rho = 0``; Lemma 2: ``eps_BC <= eps`` (``paper_max_eps_bc``) and a BR shift of 2);
* ``derived_*``: closed forms that follow from the constructions as built here
  (docs/theory.md), e.g. Lemma 1's ``(5/3)/(1-gamma)``; :data:`FORMULAS` gives each formula.

Both are NaN where there is nothing to compare, and for the learned imitators.

Agreement tolerances (:func:`tolerances`) are per kind of quantity: normalised quantities
(eps_*, BR shift, in [0, 2]) absolutely, ``4 eps_dtype (1+gamma)/(1-gamma)``
(``(1+gamma)/(1-gamma)`` bounds the condition number of ``I - gamma P_pi`` in the infinity
norm); values (NashGap) relative to the value scale ``r_max/(1-gamma)``, i.e. that tolerance
times ``r_max/(1-gamma)``; the chain length exactly.

Learners: :data:`LEARNERS` maps a name to ``learner(key, example, config) -> policy`` (traced,
one seed; ``example`` a :class:`~jaxmail.games.counterexamples.Counterexample` whose ``learner``
field is the paper's hand-made imitator). The configuration's ``learners`` picks which ones run;
each is one more setting column value. :data:`LEARNER_INFO` says what each learner knows and
where it starts: the measure-matching learners are MODEL-BASED (they use the true transition
tensor and the expert's exact occupancy measure, i.e. unlimited environment access), and start
from the uniform policy mixed with the seed's Dirichlet noise, or (``*-near``, a labelled second
row) from the hand-made exploitable imitator mixed with that noise.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

import jaxmail as jm
from jaxmail import _linalg
from jaxmail.experiments import reporting, results
from jaxmail.experiments.base import Config, Experiment, Setting, Table, register
from jaxmail.experiments.findings import Finding, agreement_finding, bound_finding
from jaxmail.experiments.rules import each, field, integer, number, one_of
from jaxmail.experiments.sharding import map_seeds
from jaxmail.games import counterexamples as cx
from jaxmail.metrics import imitation_report

GAMES = ("lemma1", "theorem2", "theorem2_exact", "lemma2")
PAPER_LEARNER = "hand-made"
HEADLINE_DISCOUNT = 0.9  # the paper's discount; the summary's first table uses it

Learner = Callable[[jax.Array, cx.Counterexample, Config], tuple[jax.Array, ...]]


def _hand_made(key: jax.Array, example: cx.Counterexample, config: Config, near=False):
    """The paper's imitator, as built by :mod:`jaxmail.games.counterexamples`."""
    del key, config, near
    return example.learner


def _matching_program(measure: str) -> Callable:
    """Measure matching against the expert's EXACT ``measure`` (model-based), as ONE function
    of a traced flag ``near`` (``[]`` bool), so that a learner and its ``-near`` variant share
    one compiled program.

    The start is the uniform policy (``near`` false) or the hand-made learner (``near`` true)
    mixed with Dirichlet noise (weight ``matching_noise``, drawn from the seed's key), so that
    seeds differ; then ``matching_steps`` adam steps (``jm.imitation.measure_matching``). The
    flag picks the start elementwise (``jnp.where``), an exact selection, so each variant's
    numbers are those of a program built for it alone.
    """

    def learner(key: jax.Array, example: cx.Counterexample, config: Config, near):
        uniform = jm.uniform_policy(example.game)
        base = tuple(jnp.where(near, h, u) for h, u in zip(example.learner, uniform))
        start = jm.imitation.perturb_policy(key, base, config.matching_noise)
        return jm.imitation.measure_matching(
            example.game, example.expert, measure=measure, steps=config.matching_steps, init=start
        ).policy

    return learner


_PROGRAMS = {"state": _matching_program("state"), "state_action": _matching_program("state_action")}


def _matching(measure: str, *, near: bool) -> Learner:
    """``learner(key, example, config)``: :func:`_matching_program` with ``near`` fixed."""
    program = _PROGRAMS[measure]

    def learner(key: jax.Array, example: cx.Counterexample, config: Config):
        return program(key, example, config, near)

    return learner


LEARNERS: dict[str, Learner] = {
    PAPER_LEARNER: _hand_made,
    "state-matching": _matching("state", near=False),
    "state-action-matching": _matching("state_action", near=False),
    "state-matching-near": _matching("state", near=True),
    "state-action-matching-near": _matching("state_action", near=True),
}
# The compiled program of each learner (by name: a static argument of the per-seed function,
# whose repr keys the program kept on disk, jaxmail/_program_cache.py) and its start flag: a
# learner and its ``-near`` variant differ only in the flag, a traced value, so they share one
# program (one compilation).
_PROGRAM_BY_NAME = {PAPER_LEARNER: _hand_made, **_PROGRAMS}
_PROGRAM_OF = {
    PAPER_LEARNER: (PAPER_LEARNER, False),
    "state-matching": ("state", False),
    "state-action-matching": ("state_action", False),
    "state-matching-near": ("state", True),
    "state-action-matching-near": ("state_action", True),
}

# What each learner knows and where it starts (the summary's tables carry these labels).
_MODEL_BASED = "model-based: true transitions and the expert's exact occupancy"
LEARNER_INFO = {
    PAPER_LEARNER: "the paper's construction",
    "state-matching": f"state-occupancy matching, {_MODEL_BASED}; start: uniform + noise",
    "state-action-matching": (
        f"joint state-action matching, {_MODEL_BASED}; start: uniform + noise"
    ),
    "state-matching-near": (
        f"state-occupancy matching, {_MODEL_BASED}; start: the hand-made imitator + noise"
    ),
    "state-action-matching-near": (
        f"joint state-action matching, {_MODEL_BASED}; start: the hand-made imitator + noise"
    ),
}


@dataclasses.dataclass(frozen=True)
class CounterexamplesConfig(Config):
    """Configuration of ``counterexamples``.

    Attributes:
      games: which of :data:`GAMES` to run.
      discounts: the discounts ``gamma``.
      learners: names in :data:`LEARNERS`: the paper's ``"hand-made"`` imitators, and learned
        ones, ``"state-matching"`` / ``"state-action-matching"`` (model-based measure matching
        of the state or the joint state-action occupancy, started near uniform) and their
        ``-near`` variants (started near the hand-made imitator), each run on the games of
        :data:`LEARNER_GAMES`.
      lemma2_epsilon: Lemma 2's target BC error ``eps``.
      matching_steps: adam steps of the measure-matching learners.
      matching_noise: weight of the Dirichlet noise mixed into their start.
    """

    seeds: int = 4
    chunk_size: int = 4
    games: tuple[str, ...] = field(GAMES, one_of(GAMES))
    discounts: tuple[float, ...] = field((0.5, 0.8, 0.9, 0.95, 0.99), each(number("(0, 1)")))
    learners: tuple[str, ...] = field(tuple(LEARNERS), one_of(LEARNERS))
    lemma2_epsilon: float = field(0.05, number("> 0"))
    matching_steps: int = field(1000, integer(">= 0"))
    matching_noise: float = field(0.2, number("[0, 1]"))

    QUICK = {
        "discounts": (0.9,),
        "learners": (PAPER_LEARNER, "state-matching", "state-action-matching"),
        "seeds": 1,
        "chunk_size": 1,
    }


# The games each learned imitator runs on: the matching failure that game is about (Lemma 1:
# state occupancies; Theorem 2: state-action occupancies). Lemma 2 is about BC, not matching.
LEARNER_GAMES = {
    "state-matching": ("lemma1",),
    "state-action-matching": ("theorem2", "theorem2_exact"),
    "state-matching-near": ("lemma1",),
    "state-action-matching-near": ("theorem2", "theorem2_exact"),
}
# The occupancy error that each learned imitator matches.
MATCHED = {
    "state-matching": "eps_mu",
    "state-action-matching": "eps_rho",
    "state-matching-near": "eps_mu",
    "state-action-matching-near": "eps_rho",
}


def settings(config: CounterexamplesConfig) -> list[Setting]:
    return [
        {"game": game, "discount": float(gamma), "learner": learner}
        for game in config.games
        for gamma in config.discounts
        for learner in config.learners
        if learner == PAPER_LEARNER or game in LEARNER_GAMES[learner]
    ]


def _example(game: str, discount: float, config: CounterexamplesConfig) -> cx.Counterexample:
    if game == "lemma1":
        return cx.lemma1_game(discount)
    if game == "theorem2":
        return cx.theorem2_game(discount)
    if game == "theorem2_exact":
        return cx.theorem2_game(discount, exact_expert=True)
    return cx.lemma2_game(config.lemma2_epsilon, discount)


PAPER_COLUMNS = ("paper_eps_mu", "paper_eps_rho", "paper_max_eps_bc", "paper_br_shift_0")
DERIVED_COLUMNS = (
    "derived_chain_length",
    "derived_eps_mu",
    "derived_eps_rho",
    "derived_eps_bc",
    "derived_expert_nash_gap",
    "derived_learner_nash_gap",
    "derived_br_shift_0",
)

# (game, quantity) -> the closed form behind each derived_* value (docs/theory.md derives them).
FORMULAS = {
    ("lemma1", "eps_mu"): "0: both policies keep every state's mass uniform",
    ("lemma1", "expert_nash_gap"): "0: (0, 0) everywhere is optimal for the common payoff",
    ("lemma1", "learner_nash_gap"): "(5/3)/(1-gamma)",
    ("theorem2", "eps_mu"): "0: s1 unvisited by both",
    ("theorem2", "eps_rho"): "0: s1 unvisited by both",
    ("theorem2", "expert_nash_gap"): "gamma (detour via s1 earns r(s1) = 1 once)",
    ("theorem2", "learner_nash_gap"): "gamma/(1-gamma)",
    ("theorem2_exact", "eps_mu"): "0: s1 unvisited by both",
    ("theorem2_exact", "eps_rho"): "0: s1 unvisited by both",
    ("theorem2_exact", "expert_nash_gap"): "0 (r(s1) = 0)",
    ("theorem2_exact", "learner_nash_gap"): "gamma^2/(1-gamma)",
    ("lemma2", "chain_length"): "k = ceil(log((eps/2)(1-gamma)) / log gamma)",
    ("lemma2", "eps_bc"): "2 gamma^(k+1)",
    ("lemma2", "expert_nash_gap"): "0",
    ("lemma2", "learner_nash_gap"): "(gamma - gamma^(k+1))/(1-gamma)",
    ("lemma2", "br_shift_0"): "2",
}


def paper_values(game: str, discount: float, epsilon: float) -> dict[str, float]:
    """What the paper's statements claim of the hand-made learner, NaN where they claim nothing.

    Lemma 1: the state occupancies match (``eps_mu = 0``); Theorem 2: the state-action
    occupancies match (``eps_rho = 0``); Lemma 2: ``eps_BC <= eps`` (``paper_max_eps_bc``, an
    upper bound, not a value) and player 0's best response is at L1 distance 2 (BR shift 2).
    The paper's gap statements are orders (``Omega(1/(1-gamma))``); the exact gaps of the
    constructions built here are :func:`derived_values`.
    """
    del discount
    out = dict.fromkeys(PAPER_COLUMNS, math.nan)
    if game == "lemma1":
        out["paper_eps_mu"] = 0.0
    elif game in ("theorem2", "theorem2_exact"):
        out["paper_eps_rho"] = 0.0
    elif game == "lemma2":
        out.update(paper_max_eps_bc=float(epsilon), paper_br_shift_0=2.0)
    return out


def derived_values(game: str, discount: float, epsilon: float) -> dict[str, float]:
    """Closed forms of the hand-made constructions (:data:`FORMULAS`), NaN where none."""
    g = discount
    out = dict.fromkeys(DERIVED_COLUMNS, math.nan)
    if game == "lemma1":
        out.update(derived_eps_mu=0.0, derived_expert_nash_gap=0.0)
        out["derived_learner_nash_gap"] = (5.0 / 3.0) / (1.0 - g)
    elif game == "theorem2":
        out.update(derived_eps_mu=0.0, derived_eps_rho=0.0, derived_expert_nash_gap=g)
        out["derived_learner_nash_gap"] = g / (1.0 - g)
    elif game == "theorem2_exact":
        out.update(derived_eps_mu=0.0, derived_eps_rho=0.0, derived_expert_nash_gap=0.0)
        out["derived_learner_nash_gap"] = g**2 / (1.0 - g)
    elif game == "lemma2":
        k = math.ceil(math.log((epsilon / 2.0) * (1.0 - g)) / math.log(g))
        out.update(
            derived_chain_length=float(k), derived_expert_nash_gap=0.0, derived_br_shift_0=2.0
        )
        out["derived_eps_bc"] = 2.0 * g ** (k + 1)
        out["derived_learner_nash_gap"] = (g - g ** (k + 1)) / (1.0 - g)
    return out


def tolerances(discount, eps: float, reward_bound: float = 1.0) -> dict[str, np.ndarray]:
    """Agreement tolerances per kind of quantity (module docstring).

    Args:
      discount: ``gamma``, any shape.
      eps: the machine epsilon of the run's float dtype.
      reward_bound: ``r_max`` (the counterexamples have rewards in [-1, 1]).

    Returns:
      ``{"normalised", "value", "count"}``: absolute tolerances for eps_* and BR shifts, for
      values (NashGap), and for integer counts (0.5: exact).
    """
    gamma = np.asarray(discount, dtype=np.float64)
    normalised = 4.0 * eps * (1.0 + gamma) / (1.0 - gamma)
    return {
        "normalised": normalised,
        "value": normalised * reward_bound / (1.0 - gamma),
        "count": np.full_like(gamma, 0.5),
    }


def _measure(key, game, expert, learner, near, *, program, config):
    """One seed: the learner's errors, both Nash gaps and player 0's BR shift.

    ``program`` (a name in :data:`_PROGRAM_BY_NAME`) and ``near`` are a learner's entry in
    :data:`_PROGRAM_OF` (``near`` traced).
    The learner's metrics come from one imitation report (its solves chained inside); the
    expert's NashGap is solved after it (jaxlib 0.10 CPU deadlock, see jaxmail/_linalg.py).
    """
    example = cx.Counterexample(game, expert, learner)
    policy = _PROGRAM_BY_NAME[program](key, example, config, near)
    report = imitation_report(game, policy, expert=expert)
    gap_e = jm.nash_gap(game, _linalg.after_tree(expert, report.nash_gap.nash_gap))
    return {
        "eps_mu": report.state_occupancy_error,
        "eps_rho": report.occupancy_error,
        "eps_bc": report.bc_error,
        "expert_nash_gap": gap_e.nash_gap,
        "learner_nash_gap": report.nash_gap.nash_gap,
        "learner_nash_conv": report.nash_gap.nash_conv,
        "br_shift_0": report.br_shift[0],
        "converged": jnp.all(gap_e.converged) & report.converged,
    }


_MEASURED = (
    "eps_mu",
    "eps_rho",
    "eps_bc",
    "expert_nash_gap",
    "learner_nash_gap",
    "learner_nash_conv",
    "br_shift_0",
    "converged",
)


def run_chunk(
    config: CounterexamplesConfig, setting: Setting, keys: jax.Array
) -> dict[str, np.ndarray]:
    game, gamma, learner = setting["game"], setting["discount"], setting["learner"]
    example = _example(game, gamma, config)
    program, near = _PROGRAM_OF[learner]
    columns = map_seeds(
        _measure,
        keys,
        example.game,
        example.expert,
        example.learner,
        jnp.asarray(near),
        program=program,
        config=config,
    )
    batch = len(keys)
    num_states = example.game.num_states
    fixed = {
        "num_states": num_states,
        "chain_length": num_states - 2 if game == "lemma2" else 0,
    }
    expected = {
        **paper_values(game, gamma, config.lemma2_epsilon),
        **derived_values(game, gamma, config.lemma2_epsilon),
    }
    if learner != PAPER_LEARNER:
        expected = dict.fromkeys(expected, math.nan)
    out = {k: np.full(batch, v) for k, v in fixed.items()}
    out.update({k: columns[k] for k in _MEASURED})
    out.update({k: np.full(batch, v) for k, v in expected.items()})
    return out


# ----------------------------------------------------------------------------------------------
# Summary and plots.

_QUANTITIES = (  # (column, kind of tolerance, label)
    ("chain_length", "count", "chain length k"),
    ("eps_mu", "normalised", "eps_mu"),
    ("eps_rho", "normalised", "eps_rho"),
    ("eps_bc", "normalised", "eps_BC"),
    ("expert_nash_gap", "value", "NashGap(expert)"),
    ("learner_nash_gap", "value", "NashGap(learner)"),
    ("br_shift_0", "normalised", "BR shift of player 0"),
)
_PAPER_CLAIMS = (  # (column, paper column, statement)
    ("eps_mu", "paper_eps_mu", "Lemma 1: eps_mu = 0"),
    ("eps_rho", "paper_eps_rho", "Theorem 2: eps_rho = 0"),
    ("br_shift_0", "paper_br_shift_0", "Lemma 2: BR shift 2"),
)
MATCHED_BELOW = 0.01  # a learned imitator "matches" when its occupancy error is at most this
EXPLOITABLE_SCALE = 0.01  # ... and is "exploitable" when NashGap >= this x r_max / (1 - gamma)


def _eps() -> float:
    """Machine epsilon of the run's float dtype (the runner summarises inside the run's dtype)."""
    return float(jnp.finfo(jnp.result_type(float)).eps)


def _agreement(table: Table, column: str, expected: str, kind: str):
    """``(ours, expected, tolerance)`` over the hand-made rows, flattened."""
    rows = results.select(table, learner=PAPER_LEARNER) if len(table.get("game", ())) else table
    tol = tolerances(rows.get("discount", np.zeros(0)), _eps())[kind]
    return rows.get(column, np.zeros(0)), rows.get(expected, np.zeros(0)), tol


def findings(config: CounterexamplesConfig, table: Table) -> list[Finding]:
    """The claims ``counterexamples`` checks (:mod:`jaxmail.experiments.findings`).

    1. The paper's claims of its hand-made constructions (eps_mu = 0, eps_rho = 0, BR shift 2),
       within the normalised tolerance.
    2. Lemma 2's imitator has ``eps_BC <= eps``.
    3. Every number of the hand-made imitators equals the closed form derived for its
       construction (:data:`FORMULAS`), within the tolerance of its kind.
    4. Per learned imitator: it matches the occupancy it is trained on (error <=
       :data:`MATCHED_BELOW`), and, on the rows where it matches, it is exploitable
       (``NashGap >= EXPLOITABLE_SCALE r_max/(1-gamma)``): matching did not make it an
       equilibrium. Both can fail (a learner may not converge, or may find the expert).

    Each is evidence: a wrong kernel, construction or learner breaks it.
    """
    del config
    out = []
    parts = [_agreement(table, col, paper, "normalised") for col, paper, _ in _PAPER_CLAIMS]
    ours, expected, tol = (np.concatenate(x) for x in zip(*parts))
    out.append(
        agreement_finding(
            "The hand-made imitators have the properties the paper states: eps_mu = 0 "
            "(Lemma 1), eps_rho = 0 (Theorem 2), player 0's BR shift = 2 (Lemma 2).",
            ours,
            expected,
            tol,
        )
    )
    eps_bc, bound, tol = _agreement(table, "eps_bc", "paper_max_eps_bc", "normalised")
    out.append(
        bound_finding(
            "Lemma 2's imitator has eps_BC <= eps (the paper's bound on its BC error).",
            eps_bc,
            bound,
            tol,
        )
    )
    parts = [_agreement(table, c, f"derived_{c}", kind) for c, kind, _ in _QUANTITIES]
    ours, expected, tol = (np.concatenate(x) for x in zip(*parts))
    out.append(
        agreement_finding(
            "Every computed number of the hand-made imitators (k, eps_*, both NashGaps, BR "
            "shift) equals the closed form derived for its construction.",
            ours,
            expected,
            tol,
        )
    )
    learned = [n for n in LEARNERS if n != PAPER_LEARNER]
    present = set(np.asarray(table.get("learner", ()), dtype=object).tolist())
    for name in learned:
        if name not in present:
            continue
        rows = results.select(table, learner=name)
        error = rows[MATCHED[name]]
        matched = error <= MATCHED_BELOW
        games = "/".join(LEARNER_GAMES[name])
        out.append(
            bound_finding(
                f"{name} ({LEARNER_INFO[name]}) matches the expert on {games}: "
                f"{MATCHED[name]} <= {MATCHED_BELOW:g}.",
                error,
                MATCHED_BELOW,
                0.0,
            )
        )
        floor = EXPLOITABLE_SCALE / (1.0 - rows["discount"])
        out.append(
            bound_finding(
                f"{name}: where it matches, it is exploitable "
                f"(NashGap >= {EXPLOITABLE_SCALE:g}/(1-gamma)); rows that do not match are "
                "not checked.",
                np.where(matched, floor, np.nan),
                rows["learner_nash_gap"],
                0.0,
            )
        )
    return out


def _agrees(ours: float, expected: float, tolerance: float) -> str:
    if math.isnan(expected):
        return ""
    return "yes" if abs(ours - expected) <= tolerance else "NO"


def _headline(config: CounterexamplesConfig) -> float:
    discounts = list(config.discounts)
    return min(discounts, key=lambda g: abs(g - HEADLINE_DISCOUNT))


def summarize(config: CounterexamplesConfig, table: Table, out_dir: str) -> str:
    del out_dir
    paper_rows = results.select(table, learner=PAPER_LEARNER)
    n = len(paper_rows.get("game", ()))
    found = findings(config, table)
    agree = found[2]
    headline = _headline(config)
    eps = _eps()
    lines = [
        "# counterexamples: the paper's games where matching occupancy measures is not enough",
        "",
    ]
    at = results.select(paper_rows, discount=headline) if n else paper_rows
    gaps = []
    for game in ("lemma1", "theorem2", "lemma2"):
        sel = results.select(at, game=game) if n else at
        if len(sel.get("game", ())):
            gaps.append(f"{game} {results.format_number(sel['learner_nash_gap'][0])}")
    tol = tolerances(headline, eps)
    lines.append(
        f"At gamma = {headline:g}, the hand-made imitators whose occupancy measures match the "
        f"expert's (eps_mu = 0 in Lemma 1, eps_rho = 0 in Theorem 2) or whose BC error is tiny "
        f"(Lemma 2) have NashGap(learner) = {', '.join(gaps)}. Of {agree.checked} computed "
        f"numbers with a closed form, over {len(config.discounts)} discount(s), "
        f"{agree.checked - agree.violations} agree with it and {agree.violations} do not. "
        f"Tolerances (machine epsilon {eps:.3g}): eps_* and BR shifts absolutely, "
        f"4 eps (1+gamma)/(1-gamma) ({tol['normalised']:.2g} at gamma = {headline:g}); "
        f"NashGaps relative to the value scale 1/(1-gamma) ({tol['value']:.2g}); k exactly."
    )
    lines += [
        "",
        f"## gamma = {headline:g}, the hand-made imitators, seed 0",
        "",
        "`paper`: what the paper's statements claim; `derived`: the closed form of the "
        "construction built here (formula in the last column).",
        "",
    ]
    rows = []
    for game in config.games:
        sel = results.select(at, game=game, seed=0) if n else at
        if not len(sel.get("game", ())):
            continue
        for col, kind, label in _QUANTITIES:
            derived, ours = sel[f"derived_{col}"][0], sel[col][0]
            paper = sel.get(f"paper_{col}", np.full(1, math.nan))[0]
            if col == "eps_bc" and not math.isnan(sel["paper_max_eps_bc"][0]):
                paper_text = f"<= {results.format_number(sel['paper_max_eps_bc'][0])}"
            else:
                paper_text = "" if math.isnan(paper) else results.format_number(paper)
            if math.isnan(derived) and not paper_text:
                continue
            if col == "chain_length":
                derived, ours = int(derived), int(ours)
            formula = FORMULAS.get((game, col), "")
            agrees = _agrees(float(ours), float(derived), float(tolerances(headline, eps)[kind]))
            rows.append((game, f"{headline:g}", label, paper_text, derived, ours, agrees, formula))
    lines.append(
        results.markdown_table(
            ["game", "gamma", "quantity", "paper", "derived", "ours", "agrees", "formula"], rows
        )
    )
    lines += ["## NashGap(learner) at every discount (hand-made imitators)", ""]
    rows = []
    for game in config.games:
        for gamma in config.discounts:
            sel = results.select(paper_rows, game=game, discount=gamma, seed=0) if n else {}
            if not len(sel.get("game", ())):
                continue
            derived, ours = sel["derived_learner_nash_gap"][0], sel["learner_nash_gap"][0]
            agrees = _agrees(ours, derived, float(tolerances(gamma, eps)["value"]))
            rows.append((game, f"{gamma:g}", derived, ours, agrees))
    lines.append(results.markdown_table(["game", "gamma", "derived", "ours", "agrees"], rows))
    others = [name for name in config.learners if name != PAPER_LEARNER]
    if others:
        lines += [
            "## Learned imitators (median over seeds)",
            "",
            "What each knows and where it starts:",
            "",
            *(f"- `{name}`: {LEARNER_INFO[name]}." for name in others),
            "",
        ]
        rows = []
        for learner in others:
            for game in config.games:
                for gamma in config.discounts:
                    sel = results.select(table, game=game, discount=gamma, learner=learner)
                    if not len(sel.get("game", ())):
                        continue
                    rows.append(
                        (
                            game,
                            f"{gamma:g}",
                            learner,
                            *reporting.column_medians(
                                sel,
                                ("eps_mu", "eps_rho", "eps_bc", "learner_nash_gap"),
                                nan="propagate",
                            ),
                        )
                    )
        lines.append(
            results.markdown_table(
                ["game", "gamma", "learner", "eps_mu", "eps_rho", "eps_BC", "NashGap"], rows
            )
        )
    if "converged" in table and not bool(np.all(table["converged"])):
        bad = int(np.sum(~np.asarray(table["converged"], dtype=bool)))
        lines.append(f"**Warning:** {bad} rows have a best-response solve that did not converge.\n")
    return "\n".join(lines)


def plot(config: CounterexamplesConfig, table: Table, out_dir: str) -> list[str]:
    fig = results.new_figure(figsize=(6.4, 4.6), layout="constrained")
    ax = fig.add_subplot()
    style = dict(zip(GAMES, zip(reporting.COLORS, reporting.MARKERS)))  # (colour, marker) by game
    fine = np.linspace(min(config.discounts), max(config.discounts), 200)
    for game in config.games:
        sel = results.select(table, game=game, learner=PAPER_LEARNER, seed=0)
        if not len(sel.get("game", ())):
            continue
        color, marker = style[game]
        order = np.argsort(sel["discount"])
        gammas, derived = sel["discount"][order], sel["derived_learner_nash_gap"][order]
        if game != "lemma2" and len(gammas) > 1:  # Lemma 2's formula jumps with k(gamma)
            curve = [derived_values(game, g, 0.0)["derived_learner_nash_gap"] for g in fine]
            ax.plot(fine, curve, "-", color=color, alpha=0.5, linewidth=1)
        ax.plot(gammas, derived, "x", color=color, markersize=9, label=f"{game}: closed form")
        ax.plot(
            gammas,
            sel["learner_nash_gap"][order],
            marker,
            color=color,
            markerfacecolor="none",
            markersize=10,
            label=f"{game}: jaxmail",
        )
    for learner, line in zip([x for x in config.learners if x != PAPER_LEARNER], ("--", ":")):
        for game in config.games:
            sel = results.select(table, game=game, learner=learner)
            if not len(sel.get("game", ())):
                continue
            gammas = np.unique(sel["discount"])
            medians = [
                reporting.median(sel["learner_nash_gap"][sel["discount"] == g], nan="propagate")
                for g in gammas
            ]
            ax.plot(gammas, medians, line, marker=".", color=style[game][0],
                    label=f"{game}: {learner} (median)")  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("discount gamma")
    ax.set_ylabel("NashGap of the imitator")
    ax.set_title("Counterexamples: the imitator's NashGap, closed form vs jaxmail")
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="x-small", ncol=2)
    return [results.save_figure(fig, os.path.join(out_dir, "nash_gap_vs_discount.png"))]


EXPERIMENT = register(
    Experiment(
        name="counterexamples",
        description="Lemma 1, Theorem 2, Lemma 2 games: exploitable imitators, paper vs ours",
        config_type=CounterexamplesConfig,
        settings=settings,
        run_chunk=run_chunk,
        summarize=summarize,
        plot=plot,
        findings=findings,
    )
)
