"""Experiment ``demonstrations``: NashGap against the number of expert demonstrations N.

What the paper lacks (docs/theory.md §5): policies LEARNED from demonstrations rather than
synthetic perturbations, NashGap against the number of demonstrations, more than two
players, general-sum games, general-sum games with an exact (certified) Nash expert. Four
learners on five game families, all dataset sizes of a seed in one compiled call.

Families (one setting each):

* ``"general_sum"``: a random ``n``-player general-sum game (:func:`jaxmail.games.random_game`,
  ``S`` states, ``A`` actions each, ``R ~ U[-1, 1]``); expert: the logit QRE at temperature
  ``tau`` (:func:`jaxmail.equilibria.logit_qre`).
* ``"general_sum_nash"``: the same generator (``n = nash_players``, default 2); expert: a Nash
  equilibrium by :func:`jaxmail.equilibria.qre_homotopy`
  (:func:`jaxmail.experiments.families.nash_expert`). Its NashGap is CERTIFIED, not assumed
  0: a seed counts only when the homotopy's status is ``CONVERGED``
  (the certificate :func:`jaxmail.nash_gap` of its policy is at most ``gap_tol``, column
  ``expert_gap_tol``). The rows of the other seeds are left out of every table, figure and
  finding, and counted (:func:`certification`, :func:`certified_rows`). Measured in float32
  (gamma = 0.9, 64 games, ``n = 2``, ``A = 2``): 63 of 64 certified at S = 5, 53 at S = 8
  (the others lose the path or end with NashGap above gap_tol = 1.2e-3); its compilation
  adds about 18 s of CPU to a program, its solve ~0.02 s per game.
* ``"zero_sum"``: a random two-player zero-sum game (:func:`jaxmail.games.zero_sum_game`);
  expert: the same logit QRE solver at the same ``tau``. Measured on 32 such games (S = 5,
  A = 2, gamma = 0.9, tau = 0.2, float32): it converges on every one, as does
  :func:`jaxmail.equilibria.soft_nash_vi`, both compile in about 9 s and their experts' NashGaps
  agree (median 0.426 vs 0.428; they solve slightly different regularised games, the
  ``"own"`` and ``"zero_sum"`` conventions of :mod:`jaxmail.equilibria`). The QRE wins because
  it is the solver the general-sum family compiles anyway: with ``num_players = 2`` the three
  random families share one program (below).
* ``"dominant"``: the docs/theory.md §4 dominant-strategy family
  (:func:`jaxmail.games.dominant_strategy_game`, ``n`` players); expert: the dominant strategy
  (NashGap 0, Lemma 3 applies to every learner).
* ``"tag"``: the paper's Tag game (:func:`jaxmail.games.tag`, 2x3 grid, ``gamma = 0.8``, 72
  states, 4 moves); expert: soft Nash value iteration at ``tau = 0.1`` (the paper's Appendix E
  expert). ONE fixed game, so its expert is solved once per process (cached), outside the seed
  vmap, and passed to every seed; the seeds differ only in their demonstrations.

Compiled programs (compilation, 20-30 s of CPU per program on 2 cores, is most of the run
time): random families whose games have the same shapes (the same player count) share ONE
program, with the family a traced index into ``lax.switch`` over the generators and the expert
solvers (:func:`program_families`): by default the Nash family (``n = 2``) joins the zero-sum
program, and the homotopy is compiled into it only; Tag is a second (third) program, plus its
expert's solve. Every learner and every dataset size of a family is in its program. The Nash
family costs about 15-20 s of CPU (2 cores, busy), mostly the homotopy's compilation:
measured, ``jaxmail run demonstrations --quick`` 32 -> 46 s, and the default zero-sum
program alone 30 -> 48 s with the Nash family (31 of its 32 experts certified).

Per seed (one ``jax.vmap`` lane of :func:`jaxmail.experiments.sharding.map_seeds`):

1. the game and its expert (random families), or the shared Tag game and expert;
2. ``N_max = max(dataset_sizes)`` expert trajectories with Geometric(1-gamma) lengths capped at
   ``horizon`` (:func:`jaxmail.data.sample_demonstrations`), sampled once;
3. for every ``N`` (``jax.vmap`` over the sizes, ``data.truncate(N)``) every learner:

   * ``"bc"``: closed-form BC with additive ``bc_smoothing`` (0: the MLE; unseen states uniform);
   * ``"bc_gradient"``: gradient BC on logits with an entropy bonus ``gradient_entropy`` and an
     L2 penalty ``gradient_l2`` (``gradient_steps`` Adam(0.1) steps);
   * ``"measure_matching"``: joint state-action occupancy matching, ``KL(rho_data || rho_pi)``
     (``matching_steps`` Adam(0.05) steps, entropy ``matching_entropy``);
   * ``"ma_gail"``: tabular MA-GAIL with decentralised discriminators (``gail_steps``
     iterations, entropy ``gail_entropy``); its discriminator key is the seed's, the same for
     every ``N``;

4. the metrics of every learned policy and of the expert (``jax.vmap`` over the learners with
   the expert appended, so each metric is traced once): ``eps_BC`` (:func:`jaxmail.bc_error`),
   ``eps_rho`` (:func:`jaxmail.occupancy_error`), NashGap (:func:`jaxmail.nash_gap`), ValueGap
   (:func:`jaxmail.value_gap`, signed: ``max_i (V_i^E - V_i^pi)``).

Columns (one row per seed, learner and ``N``, in that order): ``learner``, ``num_trajectories``
(``N``), ``num_samples`` (state-action pairs in the ``N`` trajectories), ``eps_bc``,
``eps_rho``, ``nash_gap``, ``expert_nash_gap`` (the expert's own NashGap in the unregularised
game: 0 for the dominant expert, positive for the regularised ones), ``value_gap``,
``converged`` (the best-response solves of the learner's NashGap), ``expert_converged`` (the
expert's solver, and the best-response solves of its NashGap), ``reward_bound`` (the game's
``r_max = max |R|``, the scale of every bound, :func:`jaxmail.theory.reward_bound`),
``expert_gap_tol`` (the tolerance the Nash expert's certificate had to meet; NaN for the other
experts).

What the learners know: closed-form and gradient BC see only the ``N`` demonstrations (offline).
Measure matching and MA-GAIL, as implemented here, are MODEL-BASED with unlimited environment
access: they differentiate the EXACT occupancy measure of their policy through the TRUE
transition tensor, and only their target (the expert's measure) comes from the demonstrations.
The comparison at equal ``N`` is therefore unequal, and every table says so
(:data:`LEARNER_INFO`).

Findings (:func:`findings`): the two known value-gap bounds against the measured value gaps of
every learned policy (evidence: a wrong metric breaks them); Lemma 3 and Corollary 3 on the
dominant-strategy family, reported as identities (that family's action-independent transitions
cap NashGap/bound at ``c (1-gamma)/(2n-1)``, so they cannot fail there); the count of certified
Nash experts (a seed whose expert is not certified is a violation of that claim and enters no
other). This experiment estimates no delta, so it does not test Lemma 4: ``continuity`` does,
with the same Nash expert (family ``general_nash``).

Shapes: ``B`` seeds, ``L`` learners, ``K`` dataset sizes; ``n`` players, ``S`` states.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import jaxmail as jm
from jaxmail import _linalg
from jaxmail.experiments import families as game_families
from jaxmail.experiments import reporting, results
from jaxmail.experiments.base import Config, Experiment, Setting, Table, register
from jaxmail.experiments.findings import Finding, bound_finding, bound_margin
from jaxmail.experiments.results import violation_tolerance
from jaxmail.experiments.rules import DISTINCT, NON_EMPTY, each, field, integer, number, one_of
from jaxmail.experiments.sharding import map_seeds
from jaxmail.metrics import imitation_report

FAMILIES = ("general_sum", "general_sum_nash", "zero_sum", "dominant", "tag")
LEARNERS = ("bc", "bc_gradient", "measure_matching", "ma_gail")

FAMILY_LABELS = {
    "general_sum": "random general-sum",
    "general_sum_nash": "random general-sum, Nash expert",
    "zero_sum": "random zero-sum",
    "dominant": "dominant-strategy",
    "tag": "Tag 2x3 (paper's game)",
}
LEARNER_LABELS = {
    "bc": "BC (closed form)",
    "bc_gradient": "BC (gradient, entropy + L2)",
    "measure_matching": "measure matching (joint rho, KL; model-based)",
    "ma_gail": "MA-GAIL (decentralised; model-based)",
}
# What each learner knows (module docstring): the summary states it beside every table.
LEARNER_INFO = {
    "bc": "offline: the N demonstrations only",
    "bc_gradient": "offline: the N demonstrations only",
    "measure_matching": (
        "model-based: the true transitions and its policy's exact occupancy; the target "
        "measure from the N demonstrations"
    ),
    "ma_gail": (
        "model-based: the true transitions and its policy's exact occupancy; the expert's "
        "measure from the N demonstrations"
    ),
}

# Tag as in the paper's Appendix E (docs/theory.md §5).
TAG_ROWS, TAG_COLS, TAG_DISCOUNT = 2, 3, 0.8


@dataclasses.dataclass(frozen=True)
class DemonstrationsConfig(Config):
    """Configuration of ``demonstrations``.

    Attributes:
      families: game families, one setting each: ``"general_sum"``, ``"general_sum_nash"``,
        ``"zero_sum"``, ``"dominant"``, ``"tag"``.
      learners: ``"bc"``, ``"bc_gradient"``, ``"measure_matching"``, ``"ma_gail"`` (all in the
        same compiled program of a family).
      num_players: ``n`` of the general-sum and dominant-strategy families (zero-sum and Tag
        have two).
      nash_players: ``n`` of the ``"general_sum_nash"`` family (default 2: it then shares the
        two-player program; the homotopy expert is cheap and reliable on small games).
      nash_gap_tol: the certificate the Nash expert must meet, ``NashGap <= nash_gap_tol``
        (:func:`jaxmail.equilibria.qre_homotopy`'s ``gap_tol``, an array leaf: a new value
        does not recompile); None: the solver's default ``1000 eps max(1, r_max)/(1-gamma)``
        (:func:`jaxmail.tolerances.nash_gap_zero_tol`, 1.2e-3 in float32 at gamma = 0.9).
      nash_end_temperature: where the homotopy stops without a certificate, in units of
        ``max |R|`` (its ``end_temperature / max|R|``, an array leaf); None: the solver's
        default (:func:`jaxmail.homotopy.default_end_temperature`: 1e-3 in float32, 1e-6 in
        float64). A large value (e.g. 1e3) stops the path near the uniform policy: an
        uncertified expert, on purpose (tests).
      num_states: ``S`` of the random families.
      num_actions: ``A``, every player, of the random families.
      discount: ``gamma`` of the random families (Tag keeps the paper's 0.8).
      temperature: ``tau`` of the logit-QRE expert (general-sum and zero-sum families).
      tag_temperature: ``tau`` of Tag's soft-Nash expert (the paper's 0.1).
      own_weight: the dominant-strategy generator's share of the reward that depends on the
        player's own action.
      dataset_sizes: the numbers ``N`` of expert trajectories.
      horizon: cap on a trajectory's (geometric) length.
      bc_smoothing: closed-form BC's additive smoothing (0 is the MLE).
      gradient_steps, gradient_entropy, gradient_l2: gradient BC's Adam steps, entropy bonus
        and L2 penalty on the logits.
      matching_steps, matching_entropy: measure matching's Adam steps and entropy bonus.
      gail_steps, gail_entropy: MA-GAIL's iterations and each player's entropy weight.
    """

    seeds: int = 32
    chunk_size: int = 32
    families: tuple[str, ...] = field(FAMILIES, NON_EMPTY, one_of(FAMILIES), DISTINCT)
    learners: tuple[str, ...] = field(LEARNERS, NON_EMPTY, one_of(LEARNERS), DISTINCT)
    num_players: int = field(3, integer(">= 1"))
    nash_players: int = field(2, integer(">= 1"))
    nash_gap_tol: float | None = field(None, number("> 0", none="the solver's default"))
    nash_end_temperature: float | None = field(None, number("> 0", none="the solver's default"))
    num_states: int = field(5, integer(">= 1"))
    num_actions: int = field(2, integer(">= 1"))
    discount: float = field(0.9, number("(0, 1)"))
    temperature: float = field(0.2, number("> 0"))
    tag_temperature: float = field(0.1, number("> 0"))
    own_weight: float = field(0.5, number("[0, 1]"))
    dataset_sizes: tuple[int, ...] = field((1, 4, 16, 64, 256), NON_EMPTY, each(integer(">= 1")))
    horizon: int = field(100, integer(">= 1"))
    bc_smoothing: float = field(0.0, number(">= 0"))
    gradient_steps: int = field(300, integer(">= 0"))
    gradient_entropy: float = field(0.01, number(">= 0"))
    gradient_l2: float = field(0.01, number(">= 0"))
    matching_steps: int = field(300, integer(">= 0"))
    matching_entropy: float = field(0.0, number(">= 0"))
    gail_steps: int = field(200, integer(">= 0"))
    gail_entropy: float = field(0.01, number(">= 0"))

    QUICK = {
        "seeds": 4,
        "chunk_size": 4,
        "families": ("general_sum", "general_sum_nash", "dominant"),
        "num_players": 2,
        "num_states": 3,
        "dataset_sizes": (1, 8, 64),
        "horizon": 40,
        "gradient_steps": 20,
        "matching_steps": 20,
        "gail_steps": 10,
    }


def settings(config: DemonstrationsConfig) -> list[Setting]:
    return [{"family": family} for family in config.families]


def family_discount(config: DemonstrationsConfig, family: str) -> float:
    """``gamma`` of a family: the paper's 0.8 for Tag, ``config.discount`` otherwise."""
    return TAG_DISCOUNT if family == "tag" else config.discount


def family_players(config: DemonstrationsConfig, family: str) -> int:
    """``n`` of a family: ``config.nash_players`` for the Nash family, two for zero-sum and
    Tag, ``config.num_players`` otherwise."""
    if family == "general_sum_nash":
        return config.nash_players
    return config.num_players if family in ("general_sum", "dominant") else 2


# ----------------------------------------------------------------------------------------------
# The experts.


def program_families(config: DemonstrationsConfig, family: str) -> tuple[str, ...]:
    """The families that share ``family``'s compiled program (in ``config.families`` order).

    Random families whose games have the same shapes (the same player count) are one program:
    the family is a traced index into a ``lax.switch`` over the generators, so the expensive
    parts (expert solver, sampler, learners, metrics) compile once for all of them. Tag is its
    own program.
    """
    if family == "tag":
        return ("tag",)
    n = family_players(config, family)
    return tuple(f for f in config.families if f != "tag" and family_players(config, f) == n)


FAMILY_OF = {  # the table's family names -> (generator, expert) (experiments/families.py)
    "general_sum": game_families.Family("general_sum", "qre"),
    "general_sum_nash": game_families.Family("general_sum", "nash"),
    "zero_sum": game_families.Family("zero_sum", "qre"),
    "dominant": game_families.Family("dominant", "exact"),
}


def _random_family(key, index, hyper, *, group, num_players, num_states, num_actions):
    """A game of family ``group[index]`` and its expert: ``(game, expert, converged, gap_tol)``.

    ``gap_tol``: the tolerance of the Nash expert's certificate (NaN for the other experts).
    ``index`` is traced but the same for every seed (:func:`game_families.draw`).
    """
    out = game_families.draw(
        key,
        index,
        [FAMILY_OF[f] for f in group],
        num_players=num_players,
        num_states=num_states,
        num_actions=num_actions,
        discount=hyper["discount"],
        own_weight=hyper["own_weight"],
        temperature=hyper["temperature"],
        nash_gap_tol=hyper["nash_gap_tol"],
        nash_end_temperature=hyper["nash_end_temperature"],
    )
    return out.game, out.expert, out.converged, out.gap_tol


# ----------------------------------------------------------------------------------------------
# One seed.


def _learn(learner, key, game, data, hyper, steps):
    """One learner's policy from ``data`` (``n`` arrays ``[S, A_i]``)."""
    if learner == "bc":
        return jm.imitation.behavior_cloning(game, data, smoothing=hyper["bc_smoothing"]).policy
    if learner == "bc_gradient":
        return jm.imitation.gradient_behavior_cloning(
            game,
            data,
            steps=steps["gradient_steps"],
            entropy=hyper["gradient_entropy"],
            l2=hyper["gradient_l2"],
        ).policy
    if learner == "measure_matching":
        return jm.imitation.measure_matching(
            game,
            data,
            measure="state_action",
            divergence="kl",
            entropy=hyper["matching_entropy"],
            steps=steps["matching_steps"],
        ).policy
    return jm.imitation.ma_gail(
        key,
        game,
        data,
        discriminator="decentralised",
        entropy=hyper["gail_entropy"],
        steps=steps["gail_steps"],
    ).policy


def _metrics(game, policy, expert):
    """eps_BC, eps_rho, NashGap, ValueGap of one policy (one imitation report)."""
    report = imitation_report(game, policy, expert=expert)
    return {
        "eps_bc": report.bc_error,
        "eps_rho": report.occupancy_error,
        "nash_gap": report.nash_gap.nash_gap,
        "value_gap": report.value_gap,
        "converged": report.converged,
    }


def _one_seed(
    key,
    shared,
    index,
    sizes,
    hyper,
    *,
    group,
    learners,
    num_players,
    num_states,
    num_actions,
    num_trajectories,
    horizon,
    steps,
):
    key_game, key_data, key_gail = jax.random.split(key, 3)
    if group == ("tag",):
        game, expert, expert_converged = shared
        gap_tol = jnp.asarray(jnp.nan, game.dtype)
    else:
        game, expert, expert_converged, gap_tol = _random_family(
            key_game,
            index,
            hyper,
            group=group,
            num_players=num_players,
            num_states=num_states,
            num_actions=num_actions,
        )
    data = jm.data.sample_demonstrations(
        key_data,
        game,
        expert,
        num_trajectories=num_trajectories,
        horizon=horizon,
        lengths="geometric",
    )
    steps = dict(steps)

    def one_size(size):
        subset = data.truncate(size)
        policies = []
        dependency = subset.weights
        for learner in learners:  # chained: no two learners' solves side by side
            policy = _learn(learner, key_gail, game, subset, hyper, steps)
            policy = _linalg.after_tree(policy, dependency)
            dependency = policy[0]
            policies.append(policy)
        # The expert rides along as an extra "learner" (its metrics: eps = 0 and its own
        # NashGap), so that nash_gap is traced and compiled once for all of them.
        policies.append(_linalg.after_tree(expert, dependency))
        stacked = jax.tree_util.tree_map(lambda *x: jnp.stack(x), *policies)  # n x [L+1, S, A_i]
        metrics = jax.vmap(lambda pi: _metrics(game, pi, expert))(stacked)
        return subset.num_samples, metrics

    num_samples, metrics = jax.vmap(one_size)(sizes)  # [K], {name: [K, L + 1]}
    expert_metrics = jax.tree_util.tree_map(lambda x: x[0, -1], metrics)
    expert_metrics["reward_bound"] = jm.theory.reward_bound(game)
    expert_metrics["gap_tol"] = gap_tol
    metrics = jax.tree_util.tree_map(lambda x: x[:, :-1], metrics)
    return num_samples, metrics, expert_metrics, expert_converged


def _or_nan(value: float | None) -> float:
    """A None option as NaN, so that it stays an array leaf (the solver's default, in-program)."""
    return math.nan if value is None else value


def run_chunk(
    config: DemonstrationsConfig, setting: Setting, keys: jax.Array
) -> dict[str, np.ndarray]:
    family = setting["family"]
    dtype = jnp.zeros(()).dtype
    sizes = np.asarray(config.dataset_sizes, dtype=np.int32)
    hyper = {
        name: jnp.asarray(value, dtype)
        for name, value in (
            ("discount", family_discount(config, family)),
            ("temperature", config.temperature),
            ("own_weight", config.own_weight),
            ("nash_gap_tol", _or_nan(config.nash_gap_tol)),
            ("nash_end_temperature", _or_nan(config.nash_end_temperature)),
            ("bc_smoothing", config.bc_smoothing),
            ("gradient_entropy", config.gradient_entropy),
            ("gradient_l2", config.gradient_l2),
            ("matching_entropy", config.matching_entropy),
            ("gail_entropy", config.gail_entropy),
        )
    }
    shared = None
    if family == "tag":  # the paper's Tag expert, solved once per process
        tag = game_families.tag_expert(TAG_ROWS, TAG_COLS, TAG_DISCOUNT, config.tag_temperature)
        shared = (tag.game, tag.policy, tag.converged)
    group = program_families(config, family)
    # The largest dataset is sampled once; smaller ones are masks on it (Dataset.truncate).
    num_samples, metrics, expert, expert_converged = map_seeds(
        _one_seed,
        keys,
        shared,
        np.int32(group.index(family)),
        sizes,
        hyper,
        group=group,
        learners=tuple(config.learners),
        num_players=family_players(config, family),
        num_states=config.num_states,
        num_actions=config.num_actions,
        num_trajectories=int(sizes.max()),
        horizon=config.horizon,
        steps=(
            ("gradient_steps", config.gradient_steps),
            ("matching_steps", config.matching_steps),
            ("gail_steps", config.gail_steps),
        ),
    )
    batch, num_learners = len(keys), len(config.learners)
    shape = (batch, num_learners, len(sizes))

    def per_row(x):  # [B, K, L] -> [B, L, K]
        return np.swapaxes(np.asarray(x), 1, 2)

    out = {
        "learner": np.broadcast_to(np.asarray(config.learners)[None, :, None], shape),
        "num_trajectories": np.broadcast_to(sizes[None, None, :], shape),
        "num_samples": np.broadcast_to(np.asarray(num_samples)[:, None, :], shape),
    }
    for name in ("eps_bc", "eps_rho", "nash_gap"):
        out[name] = per_row(metrics[name])
    out["expert_nash_gap"] = np.broadcast_to(expert["nash_gap"][:, None, None], shape)
    out["reward_bound"] = np.broadcast_to(np.asarray(expert["reward_bound"])[:, None, None], shape)
    out["expert_gap_tol"] = np.broadcast_to(np.asarray(expert["gap_tol"])[:, None, None], shape)
    out["value_gap"] = per_row(metrics["value_gap"])
    out["converged"] = per_row(metrics["converged"])
    expert_converged = np.asarray(expert_converged) & np.asarray(expert["converged"])
    out["expert_converged"] = np.broadcast_to(expert_converged[:, None, None], shape)
    return out


# ----------------------------------------------------------------------------------------------
# Summary and plots.


def excess_margin(discount) -> float:
    """NashGap counts as "above the expert's" when the median excess is over ``0.01/(1-gamma)``,
    1% of the largest value ``1/(1-gamma)`` (rewards in ``[-1, 1]``)."""
    return 0.01 / (1.0 - float(discount))


# A NaN row carries into its median: every learner's row is defined, so a NaN is news.
_median = functools.partial(reporting.median, nan="propagate")


def medians(table: Table, family: str, learner: str, column: str, sizes) -> np.ndarray:
    """``[K]`` medians over seeds of ``column`` at each ``N`` (NaN where there are no rows)."""
    sel = results.select(table, family=family, learner=learner)
    return np.asarray(
        [_median(sel[column][sel["num_trajectories"] == n]) for n in sizes], dtype=float
    )


class Certification(NamedTuple):
    """The Nash family's certificates, one entry per seed (:func:`certification`).

    Attributes:
      seeds: ``[M]`` the seed of each game of the family.
      certified: ``[M]`` bool: the homotopy certified ``NashGap <= gap_tol`` (and the
        best-response solves of the expert's NashGap converged).
      nash_gap: ``[M]`` the expert's NashGap (its certificate).
      gap_tol: ``[M]`` the tolerance the certificate had to meet.
    """

    seeds: np.ndarray
    certified: np.ndarray
    nash_gap: np.ndarray
    gap_tol: np.ndarray

    @property
    def excluded(self) -> int:
        """Seeds whose expert was not certified: their rows are left out of every table and
        finding but the certification count."""
        return int(np.sum(~self.certified))

    def finding(self, unit: str) -> Finding:
        """The count of certified experts as a :class:`Finding`: one row per game, a
        violation per uncertified expert; margin: the largest NashGap / gap_tol.

        ``unit``: what a game is called in the claim (``"seed"``, ``"game"``).
        """
        ratio = self.nash_gap / self.gap_tol
        ratio = ratio[np.isfinite(ratio)]
        return Finding(
            "The general-sum Nash experts (qre_homotopy) are certified: their NashGap is at "
            f"most gap_tol (a {unit} whose expert is not is left out of every other claim).",
            len(self.seeds),
            self.excluded,
            in_sample=False,
            margin=float(np.max(ratio)) if ratio.size else math.nan,
            evidence=True,
            why=f"one row per {unit}; margin: the largest NashGap / gap_tol",
        )

    def sentence(self) -> str:
        """``"k of m Nash experts certified (NashGap <= gap_tol, largest ...); j excluded"``."""
        m = len(self.seeds)
        top = _fmt(float(np.max(self.nash_gap[self.certified]))) if self.certified.any() else "-"
        tol = _fmt(float(np.max(self.gap_tol))) if m else "-"
        text = (
            f"{m - self.excluded} of {m} Nash experts certified by the homotopy (NashGap <= "
            f"gap_tol = {tol}; largest certified NashGap {top})"
        )
        if not self.excluded:
            return text + "; none is excluded"
        which = "one and its" if self.excluded == 1 else "ones and their"
        return (
            f"{text}; the {self.excluded} uncertified {which} rows are excluded from every "
            "table, figure and finding but this count"
        )


def certification(table: Table, family: str = "general_sum_nash") -> Certification:
    """The certificates of ``family``'s experts, one per game (empty when it is absent).

    A game is a ``seed`` (and, where the table has it, a ``num_players``); ``table`` needs the
    columns ``expert_converged``, ``expert_nash_gap`` and ``expert_gap_tol``.
    """
    sel = results.select(table, family=family)
    keys = [np.asarray(sel[k], dtype=np.int64) for k in ("num_players", "seed") if k in sel]
    games = np.stack(keys, axis=1) if keys else np.zeros((0, 1), np.int64)
    _, first = np.unique(games, axis=0, return_index=True)
    return Certification(
        np.asarray(sel["seed"], dtype=np.int64)[first],
        np.asarray(sel["expert_converged"], dtype=bool)[first],
        np.asarray(sel["expert_nash_gap"], dtype=float)[first],
        np.asarray(sel["expert_gap_tol"], dtype=float)[first],
    )


def certified_rows(table: Table, family: str = "general_sum_nash") -> Table:
    """``table`` without the rows of ``family``'s games whose expert was not certified.

    A bound or statement about an exact Nash expert counts only experts whose certificate met
    the tolerance; the others are counted by :func:`certification`, never dropped silently.
    """
    if not len(table.get("family", ())):
        return table
    drop = (np.asarray(table["family"]) == family) & ~np.asarray(
        table["expert_converged"], dtype=bool
    )
    return {name: column[~drop] for name, column in table.items()}


_fmt = results.format_number  # one number as the tables write it


def _gap_tol_text(config: DemonstrationsConfig) -> str:
    if config.nash_gap_tol is None:
        return "1000 eps max(1, r_max)/(1-gamma), the solver's default"
    return f"{config.nash_gap_tol:g}"


def _present(table: Table, config: DemonstrationsConfig):
    families = [f for f in config.families if np.any(table["family"] == f)]
    learners = [m for m in config.learners if np.any(table["learner"] == m)]
    return families, learners


def _overview(config, table, families, learners, sizes) -> str:
    """The opening sentences: does NashGap fall, who is best at the largest N."""
    first, last = sizes[0], sizes[-1]
    pairs = [(f, m) for f in families for m in learners]
    falls = [
        (f, m)
        for f, m in pairs
        if medians(table, f, m, "nash_gap", [last])[0]
        < medians(table, f, m, "nash_gap", [first])[0]
    ]
    flat = [f"{FAMILY_LABELS[f]} / {m}" for f, m in pairs if (f, m) not in falls]
    text = (
        f"Median NashGap falls from N = {first} to N = {last} trajectories for {len(falls)} of "
        f"{len(pairs)} (family, learner) pairs"
        + (f" (not for {', '.join(flat)})" if flat else "")
        + "."
    )
    best = []
    for f in families:
        at_last = {m: medians(table, f, m, "nash_gap", [last])[0] for m in learners}
        winner = min(at_last, key=at_last.get)
        best.append(f"{FAMILY_LABELS[f]}: {LEARNER_LABELS[winner]} ({_fmt(at_last[winner])})")
    text += f" Lowest median NashGap at N = {last}: " + "; ".join(best) + "."
    return text


def _family_finding(config, table, family, learners, sizes) -> str:
    sel = results.select(table, family=family)
    expert = _median(sel["expert_nash_gap"])
    gamma = family_discount(config, family)
    n = family_players(config, family)
    kind = {
        "dominant": "an exact equilibrium",
        "general_sum_nash": "a Nash equilibrium certified by qre_homotopy",
    }.get(family, "a regularised equilibrium")
    falls = []
    for learner in learners:
        gap = medians(table, family, learner, "nash_gap", sizes)
        falls.append(f"{LEARNER_LABELS[learner]} {_fmt(gap[0])} -> {_fmt(gap[-1])}")
    parts = [
        f"**{FAMILY_LABELS[family]}** (n = {n}, gamma = {gamma:g}; expert's NashGap "
        f"{_fmt(expert)}, {kind}). Median NashGap from N = {sizes[0]} to N = {sizes[-1]}: "
        + "; ".join(falls)
        + "."
    ]
    if "bc" in learners:
        bc = medians(table, family, "bc", "nash_gap", sizes)
        better = []
        for learner in learners:
            if learner == "bc":
                continue
            gap = medians(table, family, learner, "nash_gap", sizes)
            wins = [int(k) for k, g, b in zip(sizes, gap, bc) if g < b]
            if wins:
                better.append(f"{LEARNER_LABELS[learner]} at N in {wins}")
        parts.append(
            "Lower median NashGap than closed-form BC: "
            + ("; ".join(better) if better else "no other learner at any N")
            + "."
        )
    if "bc" in learners:
        eps = medians(table, family, "bc", "eps_bc", sizes)
        rises = [k for k in range(len(sizes) - 1) if eps[k + 1] > eps[k] + 1e-3]
        if rises:
            k0, k1 = rises[0], rises[-1] + 1
            parts.append(
                f"Closed-form BC's median eps_BC rises with N from N = {sizes[k0]} to "
                f"N = {sizes[k1]} ({_fmt(eps[k0])} -> {_fmt(eps[k1])}): consistent with the "
                "MLE's one-hot estimate at a state seen once lying farther from a mixed expert "
                "(E||e_a - p||_1 = 2(1 - sum_a p(a)^2)) than the uniform policy it plays at "
                "unseen states."
            )
    margin = excess_margin(gamma)
    above = []
    for learner in learners:
        rows = results.select(sel, learner=learner, num_trajectories=sizes[-1])
        excess = _median(rows["nash_gap"] - rows["expert_nash_gap"])
        if excess > margin:
            above.append(f"{LEARNER_LABELS[learner]} (+{_fmt(excess)})")
    parts.append(
        f"Still above the expert's NashGap at N = {sizes[-1]} (median excess over "
        f"{_fmt(margin)} = 0.01/(1-gamma)): " + (", ".join(above) if above else "none") + "."
    )
    return " ".join(parts)


def _value_gap_bounds(config, family, sel):
    n = family_players(config, family)
    return jm.theory.value_gap_bounds(
        sel["eps_bc"],
        sel["eps_rho"],
        n,
        family_discount(config, family),
        reward_bound=sel["reward_bound"],
    )


COROLLARY3_EPSILON = 0.1  # Corollary 3's eps, times r_max/(1-gamma): 10% of the value scale


def _corollary3(config, sel) -> dict[str, float]:
    """Corollary 3 on the dominant-strategy rows ``sel``.

    ``epsilon = COROLLARY3_EPSILON r_max/(1-gamma)``; the corollary's threshold
    ``eps (1-gamma)^2 / ((2n-1) r_max)``; the empirical threshold: the largest eps_BC such that
    every row with eps_BC at most it has NashGap <= eps. ``checked``: rows under the corollary's
    threshold; ``violations``: those with NashGap > eps (+ tolerance).
    """
    gamma = config.discount
    n = family_players(config, "dominant")
    r_max = float(np.max(sel["reward_bound"])) if len(sel["reward_bound"]) else 1.0
    epsilon = COROLLARY3_EPSILON * r_max / (1.0 - gamma)
    threshold = float(jm.theory.corollary3_threshold(epsilon, n, gamma, reward_bound=r_max))
    order = np.argsort(sel["eps_bc"], kind="stable")
    eps_bc, gap = sel["eps_bc"][order], sel["nash_gap"][order]
    bad = np.flatnonzero(gap > epsilon)
    empirical = float(eps_bc[bad[0] - 1]) if len(bad) and bad[0] > 0 else math.nan
    if not len(bad):
        empirical = float(eps_bc[-1]) if len(eps_bc) else math.nan
    under = eps_bc <= threshold
    violations = int(np.sum(under & (gap > epsilon + violation_tolerance(gamma))))
    return {
        "epsilon": epsilon,
        "threshold": threshold,
        "empirical": empirical,
        "checked": int(np.sum(under)),
        "violations": violations,
    }


def findings(config: DemonstrationsConfig, table: Table) -> list[Finding]:
    """The claims ``demonstrations`` checks (module docstring).

    The rows of Nash-family seeds whose expert was not certified are left out of every claim
    (:func:`certified_rows`) and counted by the last one, the certification count.
    """
    out = []
    if not len(table.get("nash_gap", ())):
        return out
    cert = certification(table)
    table = certified_rows(table)
    note = (
        f"the rows of the {cert.excluded} uncertified Nash expert"
        + ("" if cert.excluded == 1 else "s")
        + " are left out (counted by the certification finding)"
        if cert.excluded
        else ""
    )
    families, _ = _present(table, config)
    measured, bc_bound, rho_bound, tol = [], [], [], []
    for family in families:
        sel = results.select(table, family=family)
        bounds = _value_gap_bounds(config, family, sel)
        measured.append(sel["value_gap"])
        bc_bound.append(np.asarray(bounds.bc))
        rho_bound.append(np.asarray(bounds.occupancy))
        gamma = family_discount(config, family)
        tol.append(violation_tolerance(gamma) * sel["reward_bound"])
    measured, tol = np.concatenate(measured), np.concatenate(tol)
    out.append(
        bound_finding(
            "ValueGap <= n r_max eps_BC/(1-gamma)^2 for every learned policy.",
            measured,
            np.concatenate(bc_bound),
            tol,
            why=note,
        )
    )
    out.append(
        bound_finding(
            "ValueGap <= r_max eps_rho/(1-gamma) for every learned policy.",
            measured,
            np.concatenate(rho_bound),
            tol,
            why=note,
        )
    )
    if "dominant" in families:
        sel = results.select(table, family="dominant")
        n = family_players(config, "dominant")
        gamma = config.discount
        ceiling = (1.0 - gamma) / (2 * n - 1)
        why = (
            "the dominant-strategy family's transitions ignore the actions, so NashGap/bound "
            f"<= c (1-gamma)/(2n-1) <= {ceiling:.3g} for any policy"
        )
        bound = jm.theory.lemma3_bound(sel["eps_bc"], n, gamma, reward_bound=sel["reward_bound"])
        out.append(
            bound_finding(
                "Lemma 3 on the dominant-strategy family: NashGap <= (2n-1) r_max "
                "eps_BC/(1-gamma)^2.",
                sel["nash_gap"],
                np.asarray(bound),
                violation_tolerance(gamma) * sel["reward_bound"],
                evidence=False,
                why=why,
            )
        )
        cor = _corollary3(config, sel)
        out.append(
            Finding(
                "Corollary 3 on the dominant-strategy family: every learned policy with eps_BC "
                "<= eps (1-gamma)^2/((2n-1) r_max) is eps-Nash (eps = 0.1 r_max/(1-gamma)).",
                cor["checked"],
                cor["violations"],
                in_sample=False,
                margin=cor["threshold"] / cor["empirical"] if cor["empirical"] else math.nan,
                evidence=False,
                why=why + "; margin: the corollary's threshold / the largest eps_BC under "
                "which every learned policy was eps-Nash",
            )
        )
    if len(cert.seeds):
        out.append(cert.finding("seed"))
    return out


def summarize(config: DemonstrationsConfig, table: Table, out_dir: str) -> str:
    del out_dir
    title = "# demonstrations: NashGap of learned policies vs the number of demonstrations"
    if not len(table.get("nash_gap", ())):
        return reporting.no_results(title)
    lines = [title, ""]
    full = table
    cert = certification(full)
    table = certified_rows(full)  # uncertified Nash experts: counted below, then left out
    families, learners = _present(table, config)
    sizes = [int(n) for n in config.dataset_sizes]
    if families:
        lines += [_overview(config, table, families, learners, sizes), ""]
    if len(cert.seeds):
        lines += [
            "General-sum Nash family: " + cert.sentence() + ". An exact equilibrium is not "
            "assumed: the expert's NashGap is its computed certificate (column "
            "`expert_nash_gap`; the homotopy certified it at most `expert_gap_tol` on every "
            "kept row).",
            "",
        ]
    lines += ["## By family", ""]
    for family in families:
        lines += [_family_finding(config, table, family, learners, sizes), ""]
    rows = []
    for family in families:
        sel = results.select(table, family=family)
        bounds = _value_gap_bounds(config, family, sel)
        tol = violation_tolerance(family_discount(config, family)) * sel["reward_bound"]
        rows.append(
            (
                FAMILY_LABELS[family],
                len(sel["value_gap"]),
                bound_margin(sel["value_gap"], bounds.bc, tol),
                bound_margin(sel["value_gap"], bounds.occupancy, tol),
            )
        )
    lines += [
        "## Bounds against measurements",
        "",
        "Largest ValueGap / (bound + rounding allowance) over every learned policy (all "
        "learners and N; a bound holds while the ratio is at most 1, the findings' margin): "
        "`n r_max eps_BC/(1-gamma)^2` and `r_max eps_rho/(1-gamma)`, with `r_max` the game's "
        "largest |reward| and the allowance 1e-4 r_max/(1-gamma) (float32 rounding).",
        "",
        results.markdown_table(
            ["family", "rows", "ValueGap / (n eps_BC bound)", "ValueGap / (eps_rho bound)"], rows
        ),
    ]
    if "dominant" in families:
        cor = _corollary3(config, results.select(table, family="dominant"))
        lines += [
            "Dominant-strategy family, Corollary 3 (eps_BC <= eps (1-gamma)^2/((2n-1) r_max) "
            f"makes a policy eps-Nash), eps = {_fmt(cor['epsilon'])}: the corollary's "
            f"threshold is {_fmt(cor['threshold'])}; every learned policy with eps_BC up to "
            f"{_fmt(cor['empirical'])} was eps-Nash ({cor['checked']} rows; "
            f"{cor['violations']} below the threshold were not). In this family the "
            "transitions ignore the actions, so neither Lemma 3 nor Corollary 3 can fail "
            "here (an identity, not evidence; `dse-bound` tests them where they can).",
            "",
        ]
    shares = []
    for f in _present(full, config)[0]:  # every seed, certified or not
        share = float(np.mean(results.select(full, family=f)["expert_converged"]))
        shares.append(f"{FAMILY_LABELS[f]} {share:.0%}")
    lines += [
        "Expert solver converged, with its NashGap certificate (share of seeds): "
        + ", ".join(shares)
        + ".",
        "",
    ]
    if not bool(np.all(table["converged"])):
        lines += ["**Warning:** some best-response solves did not converge.", ""]
    lines += [
        "## Setup",
        "",
        "What each learner knows: "
        + "; ".join(f"{LEARNER_LABELS[m]}: {LEARNER_INFO[m]}" for m in learners)
        + ". The comparison at equal N is unequal: the model-based learners use the true "
        "transition tensor (unlimited environment access), BC only the demonstrations.",
        "",
        f"{config.seeds} seeds; N in {sizes} expert trajectories (Geometric(1-gamma) lengths, "
        f"capped at {config.horizon}), one dataset per seed truncated to each N. Random "
        f"families: S = {config.num_states} states, A = {config.num_actions} actions, "
        f"n = {config.num_players} players (zero-sum: 2), gamma = {config.discount:g}; expert "
        f"the logit QRE at tau = {config.temperature:g} (general-sum and zero-sum) or the "
        f"dominant strategy. General-sum Nash family: the same generator with "
        f"n = {config.nash_players}, expert jaxmail.equilibria.qre_homotopy (certified NashGap "
        f"<= gap_tol = {_gap_tol_text(config)}). Tag: 2x3, gamma = {TAG_DISCOUNT:g}, expert "
        "soft Nash value "
        f"iteration at tau = {config.tag_temperature:g}. Learners: BC closed form (smoothing "
        f"{config.bc_smoothing:g}); gradient BC ({config.gradient_steps} Adam steps, entropy "
        f"{config.gradient_entropy:g}, L2 {config.gradient_l2:g}); measure matching (joint "
        f"state-action occupancy, KL, {config.matching_steps} steps, entropy "
        f"{config.matching_entropy:g}); MA-GAIL (decentralised discriminators, "
        f"{config.gail_steps} iterations, entropy {config.gail_entropy:g}).",
        "",
    ]
    for column, title, with_expert in (
        ("nash_gap", "Median NashGap", True),
        ("eps_bc", "Median eps_BC", False),
        ("eps_rho", "Median eps_rho", False),
    ):
        lines += [f"## {title} over seeds, by family, learner and N", ""]
        rows = []
        for family in families:
            expert = _median(results.select(table, family=family)["expert_nash_gap"])
            for learner in learners:
                values = medians(table, family, learner, column, sizes)
                rows.append(
                    (FAMILY_LABELS[family], learner, *values, *((expert,) if with_expert else ()))
                )
        header = ["family", "learner", *(f"N = {n}" for n in sizes)]
        lines.append(
            results.markdown_table(header + (["expert NashGap"] if with_expert else []), rows)
        )
    return "\n".join(lines)


def _plot_metric(config, table, out_dir, column, ylabel, what, name, expert_line):
    families, learners = _present(table, config)
    sizes = np.asarray(config.dataset_sizes)
    colors, markers = reporting.COLORS, reporting.MARKERS  # by the learner's place in LEARNERS
    fig, axes = reporting.panel_grid(
        len(families), max_cols=2, width=6.0, height=4.0, extra_height=0.8
    )
    for ax, family in zip(axes, families):
        for learner in learners:
            k = LEARNERS.index(learner)
            sel = results.select(table, family=family, learner=learner)
            mid, lo, hi = np.asarray(
                [reporting.quartiles(sel[column][sel["num_trajectories"] == n]) for n in sizes]
            ).T
            ax.plot(sizes, mid, marker=markers[k], color=colors[k], label=LEARNER_LABELS[learner])
            ax.fill_between(sizes, lo, hi, color=colors[k], alpha=0.15, linewidth=0)
        if expert_line:
            expert = _median(results.select(table, family=family)["expert_nash_gap"])
            ax.axhline(expert, color="black", linestyle="--", label="expert's NashGap (median)")
        ax.set_xscale("log")
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.minorticks_off()
        ax.set_xlabel("number of expert trajectories N (log scale)")
        ax.set_ylabel(ylabel)
        n = family_players(config, family)
        gamma = family_discount(config, family)
        ax.set_title(f"{FAMILY_LABELS[family]}: n = {n}, gamma = {gamma:g}")
        ax.set_ylim(bottom=0.0)
        ax.grid(True, alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 3))
    fig.suptitle(
        f"{what} of policies learned from N expert trajectories\n"
        f"(line: median over {config.seeds} seeds; band: 25th-75th percentile)"
    )
    return results.save_figure(fig, os.path.join(out_dir, name))


def plot(config: DemonstrationsConfig, table: Table, out_dir: str) -> list[str]:
    table = certified_rows(table)  # as in the summary: uncertified Nash experts left out
    if not len(table.get("nash_gap", ())):
        return []
    return [
        _plot_metric(
            config,
            table,
            out_dir,
            "nash_gap",
            "NashGap",
            "NashGap (max over players of the best-response gain)",
            "nash_gap_vs_demonstrations.png",
            True,
        ),
        _plot_metric(
            config,
            table,
            out_dir,
            "eps_bc",
            "eps_BC",
            "eps_BC (L1 distance to the expert under its occupancy)",
            "bc_error_vs_demonstrations.png",
            False,
        ),
    ]


EXPERIMENT = register(
    Experiment(
        name="demonstrations",
        description="NashGap vs number of demonstrations N: BC, gradient BC, measure matching, "
        "MA-GAIL on four game families",
        config_type=DemonstrationsConfig,
        settings=settings,
        run_chunk=run_chunk,
        summarize=summarize,
        plot=plot,
        findings=findings,
    )
)
