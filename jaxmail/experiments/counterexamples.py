"""Experiment ``counterexamples``: the paper's three counterexample games (PAPER.md §4).

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
``br_shift_0`` (player 0's BR shift against the learner), ``converged``, and the paper's value
of each quantity where the paper states one (``paper_*``, NaN where it does not).

Learners: :data:`LEARNERS` maps a name to ``learner(key, example, config) -> policy`` (traced,
one seed; ``example`` a :class:`~jaxmail.games.counterexamples.Counterexample` whose ``learner``
field is the paper's hand-made imitator). The configuration's ``learners`` picks which ones run;
each is one more setting column value. A learned imitator (measure matching, BC from
demonstrations) is added by registering its function here and naming it in ``learners``. The
``paper_*`` columns describe the hand-made learner only (:data:`PAPER_LEARNER`); other learners
carry NaN there.
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
from jaxmail.experiments import results
from jaxmail.experiments.base import Config, Experiment, Setting, Table, register
from jaxmail.experiments.sharding import map_seeds
from jaxmail.games import counterexamples as cx

GAMES = ("lemma1", "theorem2", "theorem2_exact", "lemma2")
PAPER_LEARNER = "hand-made"
HEADLINE_DISCOUNT = 0.9  # the paper's discount; the summary's first table uses it

Learner = Callable[[jax.Array, cx.Counterexample, Config], tuple[jax.Array, ...]]


def _hand_made(key: jax.Array, example: cx.Counterexample, config: Config):
    """The paper's imitator, as built by :mod:`jaxmail.games.counterexamples`."""
    del key, config
    return example.learner


def _matching(measure: str) -> Learner:
    """Measure matching against the expert's EXACT ``measure``, from near the hand-made learner.

    The start is the hand-made learner mixed with Dirichlet noise (weight ``matching_noise``,
    drawn from the seed's key), so that it does not match the expert and the learner must move;
    then ``matching_steps`` adam steps (``jm.imitation.measure_matching``).
    """

    def learner(key: jax.Array, example: cx.Counterexample, config: Config):
        start = jm.imitation.perturb_policy(key, example.learner, config.matching_noise)
        return jm.imitation.measure_matching(
            example.game, example.expert, measure=measure, steps=config.matching_steps, init=start
        )

    return learner


LEARNERS: dict[str, Learner] = {
    PAPER_LEARNER: _hand_made,
    "state-matching": _matching("state"),
    "state-action-matching": _matching("state_action"),
}


@dataclasses.dataclass(frozen=True)
class CounterexamplesConfig(Config):
    """Configuration of ``counterexamples``.

    Attributes:
      games: which of :data:`GAMES` to run.
      discounts: the discounts ``gamma``.
      learners: names in :data:`LEARNERS`: the paper's ``"hand-made"`` imitators, and learned
        ones, ``"state-matching"`` / ``"state-action-matching"`` (measure matching of the state
        or the joint state-action occupancy, started near the hand-made imitator), each run on
        the games of :data:`LEARNER_GAMES`.
      lemma2_epsilon: Lemma 2's target BC error ``eps``.
      matching_steps: adam steps of the measure-matching learners.
      matching_noise: weight of the Dirichlet noise mixed into their start.
    """

    seeds: int = 4
    chunk_size: int = 4
    games: tuple[str, ...] = GAMES
    discounts: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95, 0.99)
    learners: tuple[str, ...] = (PAPER_LEARNER, "state-matching", "state-action-matching")
    lemma2_epsilon: float = 0.05
    matching_steps: int = 1000
    matching_noise: float = 0.2

    QUICK = {"discounts": (0.9,), "learners": (PAPER_LEARNER,), "seeds": 1, "chunk_size": 1}

    def __post_init__(self):
        super().__post_init__()
        for name in self.games:
            if name not in GAMES:
                raise ValueError(f"games: unknown game {name!r}; known: {list(GAMES)}")
        for name in self.learners:
            if name not in LEARNERS:
                raise ValueError(f"learners: unknown learner {name!r}; known: {list(LEARNERS)}")
        for g in self.discounts:
            if not 0.0 < g < 1.0:
                raise ValueError(f"discounts: every discount must lie in (0, 1), got {g}")
        if not self.lemma2_epsilon > 0:
            raise ValueError(f"lemma2_epsilon: must be > 0, got {self.lemma2_epsilon}")


# The games each learned imitator runs on: the matching failure that game is about (Lemma 1:
# state occupancies; Theorem 2: state-action occupancies). Lemma 2 is about BC, not matching.
LEARNER_GAMES = {
    "state-matching": ("lemma1",),
    "state-action-matching": ("theorem2", "theorem2_exact"),
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


def paper_values(game: str, discount: float, epsilon: float) -> dict[str, float]:
    """The paper's numbers for the hand-made learner (PAPER.md §3-4), NaN where it has none."""
    g = discount
    nan = math.nan
    out = dict.fromkeys(
        (
            "paper_chain_length",
            "paper_eps_mu",
            "paper_eps_rho",
            "paper_eps_bc",
            "paper_expert_nash_gap",
            "paper_learner_nash_gap",
            "paper_br_shift_0",
        ),
        nan,
    )
    if game == "lemma1":
        out.update(paper_eps_mu=0.0, paper_expert_nash_gap=0.0)
        out["paper_learner_nash_gap"] = (5.0 / 3.0) / (1.0 - g)
    elif game == "theorem2":
        out.update(paper_eps_mu=0.0, paper_eps_rho=0.0, paper_expert_nash_gap=g)
        out["paper_learner_nash_gap"] = g / (1.0 - g)
    elif game == "theorem2_exact":
        out.update(paper_eps_mu=0.0, paper_eps_rho=0.0, paper_expert_nash_gap=0.0)
        out["paper_learner_nash_gap"] = g**2 / (1.0 - g)
    elif game == "lemma2":
        k = math.ceil(math.log((epsilon / 2.0) * (1.0 - g)) / math.log(g))
        out.update(paper_chain_length=float(k), paper_expert_nash_gap=0.0, paper_br_shift_0=2.0)
        out["paper_eps_bc"] = 2.0 * g ** (k + 1)
        out["paper_learner_nash_gap"] = (g - g ** (k + 1)) / (1.0 - g)
    return out


def _measure(key, game, expert, learner, *, learner_name, config):
    """One seed: the learner's errors, both Nash gaps and player 0's BR shift.

    The solves of successive metrics are chained with ``_linalg.after`` so that no two LAPACK
    calls of this program are independent (jaxlib 0.10 CPU deadlock, see jaxmail/_linalg.py).
    """
    example = cx.Counterexample(game, expert, learner)
    policy = LEARNERS[learner_name](key, example, config)
    out = {}

    def chained(pi, dep):
        return tuple(_linalg.after(p, dep) for p in pi)

    out["eps_mu"] = jm.state_occupancy_error(game, policy, expert)
    out["eps_rho"] = jm.occupancy_error(game, chained(policy, out["eps_mu"]), expert)
    out["eps_bc"] = jm.bc_error(game, chained(policy, out["eps_rho"]), expert)
    gap_e = jm.nash_gap(game, chained(expert, out["eps_bc"]))
    gap_l = jm.nash_gap(game, chained(policy, gap_e.nash_gap))
    shift = jm.best_response_shift(game, chained(policy, gap_l.nash_gap), expert)
    out.update(
        expert_nash_gap=gap_e.nash_gap,
        learner_nash_gap=gap_l.nash_gap,
        learner_nash_conv=gap_l.nash_conv,
        br_shift_0=shift[0],
        converged=jnp.all(gap_e.converged) & jnp.all(gap_l.converged),
    )
    return out


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
    columns = map_seeds(
        _measure,
        keys,
        example.game,
        example.expert,
        example.learner,
        learner_name=learner,
        config=config,
    )
    batch = len(keys)
    num_states = example.game.num_states
    fixed = {
        "num_states": num_states,
        "chain_length": num_states - 2 if game == "lemma2" else 0,
    }
    paper = paper_values(game, gamma, config.lemma2_epsilon)
    if learner != PAPER_LEARNER:
        paper = dict.fromkeys(paper, math.nan)
    out = {k: np.full(batch, v) for k, v in fixed.items()}
    out.update({k: columns[k] for k in _MEASURED})
    out.update({k: np.full(batch, v) for k, v in paper.items()})
    return out


# ----------------------------------------------------------------------------------------------
# Summary and plots.

_QUANTITIES = (  # (column, paper column, label)
    ("chain_length", "paper_chain_length", "chain length k"),
    ("eps_mu", "paper_eps_mu", "eps_mu"),
    ("eps_rho", "paper_eps_rho", "eps_rho"),
    ("eps_bc", "paper_eps_bc", "eps_BC"),
    ("expert_nash_gap", "paper_expert_nash_gap", "NashGap(expert)"),
    ("learner_nash_gap", "paper_learner_nash_gap", "NashGap(learner)"),
    ("br_shift_0", "paper_br_shift_0", "BR shift of player 0"),
)


def _agrees(ours: float, paper: float, gamma: float) -> bool:
    """Within float32 tolerance: values are sums of size <= 1/(1-gamma)."""
    return abs(ours - paper) <= 1e-4 / (1.0 - gamma) + 1e-4 * abs(paper)


def _headline(config: CounterexamplesConfig) -> float:
    discounts = list(config.discounts)
    return min(discounts, key=lambda g: abs(g - HEADLINE_DISCOUNT))


def summarize(config: CounterexamplesConfig, table: Table, out_dir: str) -> str:
    del out_dir
    paper_rows = results.select(table, learner=PAPER_LEARNER)
    n = len(paper_rows.get("game", ()))
    compared = mismatches = 0
    for r in range(n):
        for col, paper_col, _ in _QUANTITIES:
            paper = paper_rows[paper_col][r]
            if not math.isnan(paper):
                compared += 1
                mismatches += not _agrees(paper_rows[col][r], paper, paper_rows["discount"][r])
    headline = _headline(config)
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
    lines.append(
        f"At gamma = {headline:g}, learners whose occupancy measures match the expert's "
        f"(eps_mu = 0 in Lemma 1, eps_rho = 0 in Theorem 2) or whose BC error is tiny (Lemma 2) "
        f"are highly exploitable: NashGap(learner) = {', '.join(gaps)}. "
        f"{compared - mismatches} of {compared} numbers that the paper states (or gives a formula "
        f"for), over {len(config.discounts)} discount(s), agree with ours within "
        f"1e-4/(1-gamma) + 1e-4 relative; {mismatches} do not."
    )
    lines += ["", f"## gamma = {headline:g} (the paper's figures), seed 0", ""]
    rows = []
    for game in config.games:
        sel = results.select(at, game=game, seed=0) if n else at
        if not len(sel.get("game", ())):
            continue
        for col, paper_col, label in _QUANTITIES:
            if game != "lemma2" and col == "chain_length":
                continue
            paper, ours = sel[paper_col][0], sel[col][0]
            if col == "chain_length":
                paper, ours = int(paper), int(ours)
            rows.append((game, f"{headline:g}", label, paper, ours))
    lines.append(results.markdown_table(["game", "gamma", "quantity", "paper", "ours"], rows))
    lines += ["## NashGap(learner) at every discount", ""]
    rows = []
    for game in config.games:
        for gamma in config.discounts:
            sel = results.select(paper_rows, game=game, discount=gamma, seed=0) if n else {}
            if not len(sel.get("game", ())):
                continue
            paper, ours = sel["paper_learner_nash_gap"][0], sel["learner_nash_gap"][0]
            rows.append(
                (game, f"{gamma:g}", paper, ours, "yes" if _agrees(ours, paper, gamma) else "NO")
            )
    lines.append(results.markdown_table(["game", "gamma", "paper", "ours", "agrees"], rows))
    others = [name for name in config.learners if name != PAPER_LEARNER]
    if others:
        lines += ["## Other learners (median over seeds)", ""]
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
                            *(
                                float(np.median(sel[c]))
                                for c in ("eps_mu", "eps_rho", "eps_bc", "learner_nash_gap")
                            ),
                        )
                    )
        lines.append(
            results.markdown_table(
                ["game", "gamma", "learner", "eps_mu", "eps_rho", "eps_BC", "NashGap"], rows
            )
        )
    if "converged" in table and not bool(np.all(table["converged"])):
        lines.append("**Warning:** some best-response solves did not converge.\n")
    return "\n".join(lines)


def plot(config: CounterexamplesConfig, table: Table, out_dir: str) -> list[str]:
    fig = results.new_figure(figsize=(6.4, 4.6), layout="constrained")
    ax = fig.add_subplot()
    style = dict(zip(GAMES, zip(("tab:blue", "tab:orange", "tab:green", "tab:red"), "os^D")))
    fine = np.linspace(min(config.discounts), max(config.discounts), 200)
    for game in config.games:
        sel = results.select(table, game=game, learner=PAPER_LEARNER, seed=0)
        if not len(sel.get("game", ())):
            continue
        color, marker = style[game]
        order = np.argsort(sel["discount"])
        gammas, paper = sel["discount"][order], sel["paper_learner_nash_gap"][order]
        if game != "lemma2" and len(gammas) > 1:  # Lemma 2's formula jumps with k(gamma)
            curve = [paper_values(game, g, 0.0)["paper_learner_nash_gap"] for g in fine]
            ax.plot(fine, curve, "-", color=color, alpha=0.5, linewidth=1)
        ax.plot(gammas, paper, "x", color=color, markersize=9, label=f"{game}: paper")
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
            medians = [np.median(sel["learner_nash_gap"][sel["discount"] == g]) for g in gammas]
            ax.plot(gammas, medians, line, marker=".", color=style[game][0],
                    label=f"{game}: {learner} (median)")  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("discount gamma")
    ax.set_ylabel("NashGap of the imitator")
    ax.set_title("Counterexamples: the imitator's NashGap, paper vs jaxmail")
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
    )
)
