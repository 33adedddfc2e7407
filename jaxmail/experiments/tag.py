"""Experiment ``tag``: the paper's Tag experiment (Appendix E; PAPER.md §3 items 6-8 and §5).

Game: Tag on a ``rows x cols`` grid (default the paper's 2x3, ``gamma = 0.8``, two players,
zero-sum, 72 states; :func:`jaxmail.games.tag`). One setting per temperature ``tau``:

1. Expert: the entropy-regularised equilibrium at ``tau`` (:func:`jaxmail.equilibria.soft_nash_vi`,
   the ``"zero_sum"`` convention), solved once per ``tau`` and process, outside the seed program
   (:func:`tag_expert`); its policy and state occupancy ``d^E`` enter the seed program as
   arguments, so a new ``tau`` reuses the compiled program.
2. Per seed (one compiled program for all seeds of a setting, :func:`map_seeds`; ``jax.vmap``
   over the policies inside):

   * ``K = num_policies`` synthetic imitators, the paper's "BC policies": the expert perturbed
     at every state with Dirichlet(1) noise of level ``eta``
     (:func:`jaxmail.imitation.perturb_policy`), ``eta`` on ``linspace(0, max_noise, K)`` with
     an independent noise draw per policy;
   * ``M = len(dataset_sizes)`` learned imitators: closed-form BC with additive ``smoothing``
     (:func:`jaxmail.imitation.behavior_cloning`) from the first ``N`` of ``max(dataset_sizes)``
     expert trajectories (geometric lengths, capped at ``horizon``), for each ``N``;
   * ``num_episodes`` further expert episodes (the paper: 2000) for the estimate of eps_BC,
     shared by all the seed's policies and held out from BC's training data (so the BC rows'
     estimates are not in-sample). Both sets are one call of
     :func:`jaxmail.data.sample_demonstrations` per seed.

3. For every policy ``pi`` (``K + M`` rows per seed):

   * ``eps_bc``: exact eps_BC (:func:`jaxmail.bc_error`); ``eps_bc_estimate`` and the percentile
     bootstrap interval ``[eps_bc_low, eps_bc_high]`` from the held-out episodes
     (:func:`jaxmail.imitation.estimate_bc_error`; one bootstrap key per seed, shared by its
     policies: common random numbers);
   * ``nash_gap``, ``nash_conv``: the unregularised game (:func:`jaxmail.nash_gap`'s numbers,
     computed with the BR shift from one best-response solve, :func:`gaps_and_shifts`);
   * ``soft_nash_gap``: the regularised game at ``tau``, zero-sum convention
     (:func:`jaxmail.equilibria.soft_nash_gap`), where the expert is an equilibrium;
   * ``br_shift``: ``max_i`` of the BR shift of Def 6 (:func:`jaxmail.best_response_shift`'s):
     unregularised best responses, the farthest from the expert among the near-optimal actions;
   * ``soft_br_shift``: ``max_i E_{s ~ d^E} ||softBR_i(pi_-i)(.|s) - E_i(.|s)||_1`` with the
     (unique) soft best response of the regularised game, ``softmax(Q_i / tau)`` of player ``i``'s
     induced MDP with the zero-sum convention's reward ``r_i - tau H(pi_-i)`` (soft value
     iteration, :func:`soft_best_response_shift`). It is 0 at the expert (a regularised
     equilibrium), unlike ``br_shift``: the soft expert is not an equilibrium of the
     unregularised game, whose best responses are pure;
   * ``delta_envelope``, ``soft_delta_envelope``, ``nash_gap_envelope``: the paper's tight
     curves (:func:`jaxmail.theory.perturbation_envelope`, cumulative maxima over the seed's
     ``K + M`` policies sorted by eps_BC) evaluated at this policy's
     :func:`jaxmail.theory.lemma4_delta_argument` (``eps_BC`` for two players): the largest
     shift (or NashGap) of the seed's policies with no larger eps_BC. Each is a LOWER estimate
     of ``delta`` (or of the tight NashGap curve): it reports what some admissible deviation
     attains, never more;
   * ``lemma4_bound``: ``((2n - 1) eps_BC + delta_envelope) / (1 - gamma)^2``
     (:func:`jaxmail.theory.lemma4_bound`) and ``lemma4_holds``: ``nash_gap <= lemma4_bound``
     within :func:`violation_tolerance`. As ``delta`` is estimated from below, the bound is an
     estimate, not a certificate. Lemma 4 also presumes an exact Nash expert; the soft expert is
     one of the regularised game only (its unregularised NashGap is ``expert_nash_gap``), and
     the check holds for the reason the summary gives;
   * ``expert_nash_gap``, ``expert_soft_nash_gap``: the expert's own gaps (same on every row of
     a setting); ``converged``: every solve of the row (and the expert's) met its tolerance.

Row labels: ``learner`` (``"perturbed"`` or ``"bc"``), ``noise_level`` (``eta``; NaN for BC),
``num_trajectories`` (``N``; 0 for the perturbed policies).

Shapes: ``n`` players, ``S`` states, ``A`` actions per player, ``K`` perturbed policies, ``M``
dataset sizes, ``P = K + M`` policies per seed, ``B`` seeds of a chunk, ``L`` eps_BC levels.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.special import entr, logsumexp

import jaxmail as jm
from jaxmail import _linalg
from jaxmail.best_response import default_set_tol
from jaxmail.experiments import results
from jaxmail.experiments.base import Config, Experiment, Setting, Table, register
from jaxmail.experiments.results import violation_tolerance
from jaxmail.experiments.sharding import map_seeds

PERTURBED = "perturbed"
BC = "bc"
FIGURE_TEMPERATURE = 0.1  # the paper's Fig. 5
NUM_PLAYERS = 2  # the paper's Tag
_SOFT_MAX_ITERS = 1000  # soft value iteration stops at its rounding floor long before


@dataclasses.dataclass(frozen=True)
class TagConfig(Config):
    """Configuration of ``tag``.

    Attributes:
      rows, cols: the grid (the paper: 2 x 3, 72 states).
      discount: ``gamma`` (the paper: 0.8).
      temperatures: the experts' entropy temperatures ``tau``, one setting each (the paper's
        Fig. 5 uses 0.1; Fig. 6 several).
      figure_temperature: the ``tau`` of the Fig. 5 analogue (the nearest of ``temperatures``).
      num_policies: ``K``, perturbed experts per seed (the paper: 400 in [0, 0.4] for Fig. 5,
        250 in [0, 1] for Fig. 6; the defaults pool 16 x 125 = 2000 over [0, 1] per ``tau``,
        800 of them in [0, 0.4]).
      max_noise: the largest noise level ``eta`` (levels ``linspace(0, max_noise, K)``).
      num_episodes: held-out expert episodes per seed for the eps_BC estimate (the paper: 2000).
      num_bootstrap: bootstrap replicates of that estimate's interval.
      confidence: the interval's coverage.
      dataset_sizes: the numbers ``N`` of expert trajectories BC learns from.
      smoothing: BC's additive smoothing ``alpha`` (0 is the maximum-likelihood estimate).
      horizon: cap on an episode's geometric length (``Pr(L > 50) = 0.8^50 = 1.4e-5``).
      levels: the eps_BC levels at which the summary reads the tight curves.
    """

    seeds: int = 16
    chunk_size: int = 8
    rows: int = 2
    cols: int = 3
    discount: float = 0.8
    temperatures: tuple[float, ...] = (0.05, 0.1, 0.3, 1.0)
    figure_temperature: float = FIGURE_TEMPERATURE
    num_policies: int = 125
    max_noise: float = 1.0
    num_episodes: int = 2000
    num_bootstrap: int = 500
    confidence: float = 0.95
    dataset_sizes: tuple[int, ...] = (1, 10, 100, 1000)
    smoothing: float = 0.5
    horizon: int = 50
    levels: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4)

    QUICK = {
        "seeds": 2,
        "chunk_size": 2,
        "temperatures": (0.1, 1.0),
        "num_policies": 16,
        "num_episodes": 200,
        "num_bootstrap": 50,
        "dataset_sizes": (1, 10, 100),
        "horizon": 30,
    }

    def __post_init__(self):
        super().__post_init__()
        for name in ("rows", "cols", "num_policies", "num_episodes", "horizon"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.rows * self.cols < 2:
            raise ValueError(f"rows, cols: the grid needs 2 cells, got {self.rows}x{self.cols}")
        if not 0.0 < self.discount < 1.0:
            raise ValueError(f"discount: must lie in (0, 1), got {self.discount}")
        if not self.temperatures or not all(t > 0 for t in self.temperatures):
            raise ValueError(
                f"temperatures: expected a non-empty list of numbers > 0, got {self.temperatures}"
            )
        if not self.figure_temperature > 0:
            raise ValueError(f"figure_temperature: must be > 0, got {self.figure_temperature}")
        if not 0.0 <= self.max_noise <= 1.0:
            raise ValueError(f"max_noise: must lie in [0, 1], got {self.max_noise}")
        if self.num_bootstrap < 0:
            raise ValueError(f"num_bootstrap: must be >= 0, got {self.num_bootstrap}")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence: must lie in (0, 1), got {self.confidence}")
        if not self.dataset_sizes or min(self.dataset_sizes) < 1:
            raise ValueError(
                f"dataset_sizes: expected a non-empty list of ints >= 1, got {self.dataset_sizes}"
            )
        if self.smoothing < 0:
            raise ValueError(f"smoothing: must be >= 0, got {self.smoothing}")
        if not self.levels or not all(x >= 0 for x in self.levels):
            raise ValueError(
                f"levels: expected a non-empty list of numbers >= 0, got {self.levels}"
            )


def settings(config: TagConfig) -> list[Setting]:
    return [{"temperature": float(tau)} for tau in config.temperatures]


# ----------------------------------------------------------------------------------------------
# The expert (once per temperature and process).


class TagExpert(NamedTuple):
    """The Tag game and its soft Nash expert at one temperature.

    Attributes:
      game: the Tag game.
      policy: two arrays ``[S, A]``, the regularised equilibrium.
      occupancy: ``[S]`` the expert's state occupancy ``d^E``.
      nash_gap: ``[]`` its NashGap in the unregularised game.
      soft_nash_gap: ``[]`` its NashGap in the regularised game (~0).
      converged: ``[]`` bool: the solver and both certificates converged.
    """

    game: jm.MarkovGame
    policy: tuple[jax.Array, ...]
    occupancy: jax.Array
    nash_gap: jax.Array
    soft_nash_gap: jax.Array
    converged: jax.Array


@functools.lru_cache(maxsize=32)
def _tag_expert(rows, cols, discount, temperature, dtype):
    del dtype  # part of the cache key: the arrays follow the run's x64 mode
    game = jm.games.tag(rows, cols, discount=discount)
    eq = jm.equilibria.soft_nash_vi(game, temperature=temperature)
    occupancy = jm.state_occupancy(game, eq.policy)
    converged = eq.converged & jnp.all(eq.nash_gap.converged) & jnp.all(eq.soft_nash_gap.converged)
    return TagExpert(
        game, eq.policy, occupancy, eq.nash_gap.nash_gap, eq.soft_nash_gap.nash_gap, converged
    )


def tag_expert(config: TagConfig, temperature: float) -> TagExpert:
    """The game and the expert of one setting, computed once per process (deterministic)."""
    dtype = jnp.zeros(()).dtype.name
    return _tag_expert(config.rows, config.cols, config.discount, float(temperature), dtype)


# ----------------------------------------------------------------------------------------------
# Kernels of one seed.


def _entropy(p):
    return jnp.sum(entr(p), axis=-1)


def gaps_and_shifts(game, policy, expert, occupancy):
    """NashGap, NashConv and every player's BR shift from ONE best-response solve.

    The same numbers as :func:`jaxmail.nash_gap` and :func:`jaxmail.best_response_shift`,
    which would each solve every player's induced MDP (twice the policy iterations, and twice
    their compilation): from :func:`jaxmail.best_responses`,
    ``g_i = V_i^{*, pi_-i}(mu0) - V_i^pi(mu0)``, and player ``i``'s shift is
    ``d^E . ||e_a(s) - E_i(.|s)||_1`` with ``a(s)`` the near-optimal action (``Q_i^*(s, a) >=
    V_i^*(s) - tol``, ``tol`` :func:`jaxmail.best_response.default_set_tol`) of least expert
    mass (PAPER.md §2). ``tests/test_experiment_tag.py`` checks both against the library.

    Args:
      game: one game.
      policy: ``n`` arrays ``[S, A_i]``.
      expert: ``n`` arrays ``[S, A_i]``.
      occupancy: ``[S]`` the expert's state occupancy ``d^E``.

    Returns:
      ``(nash_gap [], nash_conv [], shifts [n], converged [])``.
    """
    responses, v_pi = jm.best_responses(game, policy)
    best = jnp.stack([br.values for br in responses]) @ game.initial
    gains = best - v_pi @ game.initial
    tol = default_set_tol(game.dtype, game.discount, jnp.max(jnp.abs(game.reward)))
    shifts = []
    for br, e in zip(responses, expert):
        q = br.q_values
        near = q >= jnp.max(q, axis=-1, keepdims=True) - tol
        far = jax.nn.one_hot(jnp.argmin(jnp.where(near, e, jnp.inf), axis=-1), e.shape[-1])
        shifts.append(occupancy @ jnp.sum(jnp.abs(far.astype(e.dtype) - e), axis=-1))
    converged = jnp.all(jnp.stack([br.converged for br in responses]))
    return jnp.max(gains), jnp.sum(gains), jnp.stack(shifts), converged


def soft_best_response_shift(game, policy, expert, occupancy, temperature):
    """Every player's BR shift with SOFT best responses of the regularised game, ``[n]``.

    Player ``i``'s soft best response to ``pi_-i`` in the zero-sum convention (two players) is
    ``softmax(Q_i / tau)`` with ``Q_i = r_i - tau H(pi_-i) + gamma P_i V_i`` and ``V_i`` the fixed
    point of ``V = tau logsumexp(Q_i / tau)`` (soft value iteration on the induced MDP
    ``(P_i, r_i)``, a ``gamma``-contraction; no linear solves; all players in one loop, action
    axes padded to ``max_i A_i``). The shift is ``d^E . ||softBR_i(.|s) - E_i(.|s)||_1``; at a
    regularised equilibrium it is 0.

    Args:
      game: one two-player game.
      policy: two arrays ``[S, A_i]``.
      expert: two arrays ``[S, A_i]``.
      occupancy: ``[S]`` the expert's state occupancy ``d^E``.
      temperature: ``tau > 0``.

    Returns:
      ``(shifts [n], converged [])``: converged when the value error bound
      ``gamma / (1 - gamma) ||T V - V||_inf`` is at most ``64 eps scale / (1 - gamma)`` for
      every player (``scale = max|r| + tau log max_i A_i``).
    """
    gamma, dtype = game.discount, game.dtype
    a_max, s = max(game.num_actions), game.num_states
    total = sum(_entropy(p) for p in policy)  # [S]
    mdps = jm.induced_mdps(game, policy)

    def padded(x, axis):
        widths = [(0, 0)] * x.ndim
        widths[axis] = (0, a_max - x.shape[axis])
        return jnp.pad(x, widths)

    transition = jnp.stack([padded(m.transition, 1) for m in mdps])  # [n, S, A, S]
    # The zero-sum convention's state term -tau H(pi_-i(.|s)) (two players: the other one).
    reward = jnp.stack(
        [
            padded(m.reward - temperature * (total - _entropy(p))[:, None], 1)
            for m, p in zip(mdps, policy)
        ]
    )  # [n, S, A]
    mask = jnp.stack(
        [jnp.broadcast_to(jnp.arange(a_max) < a, (s, a_max)) for a in game.num_actions]
    )
    scale = jnp.max(jnp.abs(reward)) + temperature * np.log(a_max)
    tol = 64.0 * jnp.finfo(dtype).eps * jnp.maximum(scale, 1.0) / (1.0 - gamma)
    ratio = gamma / (1.0 - gamma)
    low = jnp.finfo(dtype).min * 0.5

    def logits(v):
        q = reward + gamma * jnp.einsum("nsat,nt->nsa", transition, v)
        return jnp.where(mask, q / temperature, low)

    def cond(carry):
        _, step, previous, k = carry
        going = jnp.any(ratio * step > tol) & jnp.any(step < previous) & (k < _SOFT_MAX_ITERS)
        return (k < 2) | going

    def body(carry):
        v, step, _, k = carry
        new = temperature * logsumexp(logits(v), axis=-1)
        return new, jnp.max(jnp.abs(new - v), axis=-1), step, k + 1

    n = game.num_players
    inf = jnp.full((n,), jnp.inf, dtype)
    init = (jnp.zeros((n, s), dtype), inf, inf, jnp.asarray(0, jnp.int32))
    v, step, _, _ = lax.while_loop(cond, body, init)
    soft = jax.nn.softmax(logits(v), axis=-1)
    shifts = [
        occupancy @ jnp.sum(jnp.abs(soft[i, :, : e.shape[-1]] - e), axis=-1)
        for i, e in enumerate(expert)
    ]
    return jnp.stack(shifts), jnp.all(ratio * step <= tol)


def _envelope_at(bc_errors, values, at):
    """``max { values[k] : bc_errors[k] <= at[j] }`` for every ``j`` (the paper's tight curve)."""
    env = jm.theory.perturbation_envelope(bc_errors, values)
    index = jnp.searchsorted(env.bc_errors, at, side="right") - 1
    return jnp.where(index >= 0, env.envelope[jnp.maximum(index, 0)], jnp.nan)


def _one_seed(
    key,
    game,
    expert,
    occupancy,
    noise_levels,
    sizes,
    temperature,
    smoothing,
    confidence,
    *,
    num_episodes,
    num_train,
    horizon,
    num_bootstrap,
):
    """One seed: ``K`` perturbed experts and ``M`` BC policies, measured (module docstring).

    Args:
      key: the seed's PRNG key (consumed: noise, demonstrations, bootstrap).
      game, expert, occupancy: the setting's game, expert policy and ``d^E`` (shared).
      noise_levels: ``[K]`` the levels ``eta``.
      sizes: ``[M]`` int dataset sizes ``N``.
      temperature, smoothing, confidence: scalars (array leaves: no recompilation per tau).
      num_episodes, num_train, horizon, num_bootstrap: static sizes.

    Returns:
      A dict of ``[P]`` columns (``P = K + M``, the perturbed policies first).
    """
    key_noise, key_data, key_boot = jax.random.split(key, 3)
    num_policies = noise_levels.shape[0]
    perturbed = jax.vmap(jm.imitation.perturb_policy, in_axes=(0, None, 0))(
        jax.random.split(key_noise, num_policies), expert, noise_levels
    )
    # One sample of expert episodes: the first num_episodes are held out for the eps_BC
    # estimate, BC learns from the first N of the others.
    data = jm.data.sample_demonstrations(
        key_data,
        game,
        expert,
        num_trajectories=num_episodes + num_train,
        horizon=horizon,
        lengths="geometric",
    )
    held_out = jax.tree_util.tree_map(lambda x: x[:num_episodes], data)
    train = jax.tree_util.tree_map(lambda x: x[num_episodes:], data)
    cloned = jax.vmap(
        lambda size: jm.imitation.behavior_cloning(game, train.truncate(size), smoothing=smoothing)
    )(sizes)
    policies = tuple(jnp.concatenate([p, c]) for p, c in zip(perturbed, cloned))  # [P, S, A]

    def measure(policy):
        # Every solve waits for the previous one (jaxlib 0.10 CPU deadlock, jaxmail/_linalg.py).
        eps = jm.bc_error(game, policy, expert)
        estimate = jm.imitation.estimate_bc_error(
            key_boot,
            game,
            held_out,
            policy,
            expert,
            num_bootstrap=num_bootstrap,
            confidence=confidence,
        )
        gap, conv, shift, converged = gaps_and_shifts(
            game, tuple(_linalg.after(p, eps) for p in policy), expert, occupancy
        )
        soft_gap = jm.equilibria.soft_nash_gap(
            game,
            tuple(_linalg.after(p, shift) for p in policy),
            temperature=temperature,
            zero_sum=True,
        )
        soft_shift, soft_converged = soft_best_response_shift(
            game, policy, expert, occupancy, temperature
        )
        return {
            "eps_bc": eps,
            "eps_bc_estimate": estimate.estimate,
            "eps_bc_low": estimate.low,
            "eps_bc_high": estimate.high,
            "nash_gap": gap,
            "nash_conv": conv,
            "soft_nash_gap": soft_gap.nash_gap,
            "br_shift": jnp.max(shift),
            "soft_br_shift": jnp.max(soft_shift),
            "converged": converged & jnp.all(soft_gap.converged) & soft_converged,
        }

    out = jax.vmap(measure)(policies)
    eps = out["eps_bc"]
    at = jm.theory.lemma4_delta_argument(eps, game.num_players)
    out["delta_envelope"] = _envelope_at(eps, out["br_shift"], at)
    out["soft_delta_envelope"] = _envelope_at(eps, out["soft_br_shift"], at)
    out["nash_gap_envelope"] = _envelope_at(eps, out["nash_gap"], eps)
    out["lemma4_bound"] = jm.theory.lemma4_bound(
        eps, out["delta_envelope"], game.num_players, game.discount
    )
    return out


_MEASURED = (
    "eps_bc",
    "eps_bc_estimate",
    "eps_bc_low",
    "eps_bc_high",
    "nash_gap",
    "nash_conv",
    "soft_nash_gap",
    "br_shift",
    "soft_br_shift",
    "delta_envelope",
    "soft_delta_envelope",
    "nash_gap_envelope",
    "lemma4_bound",
)


def run_chunk(config: TagConfig, setting: Setting, keys: jax.Array) -> dict[str, np.ndarray]:
    tau = setting["temperature"]
    expert = tag_expert(config, tau)
    dtype = expert.game.dtype
    noise = np.linspace(0.0, config.max_noise, config.num_policies)
    sizes = np.asarray(config.dataset_sizes, dtype=np.int32)
    columns = map_seeds(
        _one_seed,
        keys,
        expert.game,
        expert.policy,
        expert.occupancy,
        jnp.asarray(noise, dtype),
        sizes,
        jnp.asarray(tau, dtype),
        jnp.asarray(config.smoothing, dtype),
        jnp.asarray(config.confidence, dtype),
        num_episodes=config.num_episodes,
        num_train=int(sizes.max()),
        horizon=config.horizon,
        num_bootstrap=config.num_bootstrap,
    )
    shape = columns["eps_bc"].shape  # [B, K + M]
    k, m = config.num_policies, len(sizes)
    out = {
        "learner": np.broadcast_to(np.array([PERTURBED] * k + [BC] * m), shape),
        "noise_level": np.broadcast_to(
            np.concatenate([noise.astype(columns["eps_bc"].dtype), np.full(m, np.nan)]), shape
        ),
        "num_trajectories": np.broadcast_to(np.concatenate([np.zeros(k, np.int64), sizes]), shape),
    }
    out.update({name: columns[name] for name in _MEASURED})
    tolerance = violation_tolerance(config.discount)
    out["lemma4_holds"] = columns["nash_gap"] <= columns["lemma4_bound"] + tolerance
    out["expert_nash_gap"] = np.full(shape, np.asarray(expert.nash_gap))
    out["expert_soft_nash_gap"] = np.full(shape, np.asarray(expert.soft_nash_gap))
    out["converged"] = columns["converged"] & bool(expert.converged)
    return out


# ----------------------------------------------------------------------------------------------
# Summary and plots.


def pooled_envelope(bc_errors, values, at) -> np.ndarray:
    """``max { values[k] : bc_errors[k] <= at[j] }`` in NumPy (NaN where no policy qualifies).

    The paper's tight curve over policies pooled from several seeds: ``bc_errors`` and
    ``values`` are ``[K]``, ``at`` is ``[L]`` (or a scalar); returns ``[L]``.
    """
    bc_errors, values = np.asarray(bc_errors, float), np.asarray(values, float)
    at = np.atleast_1d(np.asarray(at, float))
    if not len(bc_errors):
        return np.full(at.shape, np.nan)
    order = np.argsort(bc_errors, kind="stable")
    running = np.maximum.accumulate(values[order])
    index = np.searchsorted(bc_errors[order], at, side="right") - 1
    return np.where(index >= 0, running[np.maximum(index, 0)], np.nan)


def _figure_temperature(config: TagConfig) -> float:
    return min(config.temperatures, key=lambda t: abs(t - config.figure_temperature))


def _trend(values) -> str:
    """``"decreasing"``, ``"increasing"`` or ``"not monotone"`` (ties allowed), in order."""
    v = np.asarray(list(values), float)
    if len(v) < 2 or np.any(np.isnan(v)):
        return "not comparable"
    if np.all(np.diff(v) <= 0):
        return "decreasing"
    if np.all(np.diff(v) >= 0):
        return "increasing"
    return "not monotone"


def _numbers(values) -> str:
    return ", ".join(results.format_number(float(v)) for v in values)


def _level_trends(per_tau, taus, column, levels) -> str:
    """How the pooled envelope of ``column`` moves with tau at each eps_BC level."""
    curves = np.array(
        [pooled_envelope(per_tau[t]["eps_bc"], per_tau[t][column], levels) for t in taus]
    )  # [tau, L]
    trends = [_trend(curves[:, j]) for j in range(len(levels))]
    if len(set(trends)) == 1:
        return f"{trends[0]} in tau at every level"
    return "; ".join(f"{trend} at {level:g}" for trend, level in zip(trends, levels))


def summarize(config: TagConfig, table: Table, out_dir: str) -> str:
    del out_dir
    total = len(table.get("nash_gap", ()))
    lines = [
        "# tag: exploitability of imitators of a soft Nash expert in Tag (the paper's App. E)",
        "",
    ]
    if not total:
        return "\n".join(lines + ["No results."]) + "\n"
    taus = [t for t in config.temperatures if len(results.select(table, temperature=t)["seed"])]
    holds = table["lemma4_holds"].astype(bool)
    perturbed = results.select(table, learner=PERTURBED)
    bc = results.select(table, learner=BC)
    per_tau = {t: results.select(perturbed, temperature=t) for t in taus}

    def at_zero(t, column):
        return float(pooled_envelope(per_tau[t]["eps_bc"], per_tau[t][column], 0.0)[0])

    delta_max = [float(np.max(per_tau[t]["br_shift"])) for t in taus]
    soft_delta_max = [float(np.max(per_tau[t]["soft_br_shift"])) for t in taus]
    ratio = table["nash_gap"] / np.maximum(table["lemma4_bound"], np.finfo(float).tiny)
    levels = np.asarray(config.levels, float)
    lines.append(
        f"Tag {config.rows}x{config.cols} (gamma = {config.discount:g}, zero-sum), soft Nash "
        f"experts at tau = {', '.join(f'{t:g}' for t in taus)}: over {len(perturbed['seed'])} "
        f"perturbed experts (eps_BC up to "
        f"{results.format_number(float(np.max(perturbed['eps_bc'])))}) and {len(bc['seed'])} BC "
        f"policies, the unregularised NashGap reached "
        f"{results.format_number(float(np.max(table['nash_gap'])))} (the experts' own: "
        f"{_numbers(per_tau[t]['expert_nash_gap'][0] for t in taus)}). The Lemma 4 estimate "
        f"NashGap <= ((2n-1) eps_BC + delta_env(eps_BC)) / (1-gamma)^2 held on "
        f"{int(holds.sum())} of {total} rows ({int((~holds).sum())} violations, tolerance "
        f"1e-4/(1-gamma)), loosely: NashGap / bound is at most "
        f"{results.format_number(float(np.max(ratio)))}."
    )
    soft_levels = _level_trends(per_tau, taus, "soft_br_shift", levels)
    claim = (
        _trend(soft_delta_max) == "decreasing" and soft_levels == "decreasing in tau at every level"
    )
    if len(taus) < 2:
        verdict = "one temperature, nothing to compare"
    else:
        verdict = "the claim holds" if claim else "the claim does not hold everywhere"
    lines += [
        "",
        f"The paper's claim, higher tau gives lower delta, depends on which best responses "
        f"delta measures. With the soft best responses of the regularised game (the game the "
        f"expert solves), the delta envelope's maximum per tau is {_numbers(soft_delta_max)} "
        f"({_trend(soft_delta_max)} in tau), and at the common eps_BC levels "
        f"{list(config.levels)} it is {soft_levels}: {verdict}. With the unregularised best "
        f"responses of Def 6 it is {_numbers(delta_max)} ({_trend(delta_max)} in tau; "
        f"{_level_trends(per_tau, taus, 'br_shift', levels)}), and already "
        f"{_numbers(at_zero(t, 'br_shift') for t in taus)} at eps_BC = 0: the soft expert is not "
        f"an equilibrium of the unregularised game, its best responses there are pure, and a "
        f"flatter (higher-tau) expert lies farther from every pure action. That delta(0) > 0, "
        f"divided by (1-gamma)^2, is also why the Lemma 4 estimate holds with a wide margin. "
        f"The soft delta at eps_BC = 0 ({_numbers(at_zero(t, 'soft_br_shift') for t in taus)}) "
        f"is the expert's own inaccuracy: it is a regularised equilibrium up to its solver's "
        f"tolerance and the dtype (about 1e-7 in float64).",
    ]
    bc_lines = []
    for t in taus:
        sel = results.select(bc, temperature=t)
        medians = [
            float(np.median(results.select(sel, num_trajectories=n)["eps_bc"]))
            for n in config.dataset_sizes
        ]
        gaps = [
            float(np.median(results.select(sel, num_trajectories=n)["nash_gap"]))
            for n in config.dataset_sizes
        ]
        bc_lines.append(
            f"tau = {t:g}: eps_BC {_numbers(medians)} ({_trend(medians)}), NashGap {_numbers(gaps)}"
        )
    explanation = (
        " Where eps_BC does not decrease with N, few trajectories leave most states unvisited, "
        "where BC plays its uniform prior, and that prior is closer to a flat expert than the "
        "empirical frequencies of a few visits are."
        if any("(decreasing)" not in line for line in bc_lines)
        else ""
    )
    lines += [
        "",
        f"BC from N = {list(config.dataset_sizes)} expert trajectories (medians over seeds): "
        + "; ".join(bc_lines)
        + "."
        + explanation,
        "",
        "Caveat: delta_env is the paper's estimator, a cumulative max of BR shifts over the "
        "policies sorted by eps_BC (per seed, over its perturbed and BC policies, for the CSV's "
        "Lemma 4 column; pooled over seeds, perturbed policies only, in the tables). It is a "
        "LOWER estimate of delta, so the Lemma 4 curve is an estimate of the bound, not a "
        "certified bound. Lemma 4 also assumes an exact Nash expert; the soft expert is one of "
        "the regularised game only.",
        "",
        "## Per temperature (perturbed experts, pooled over seeds)",
        "",
    ]
    rows = []
    for t in taus:
        sel, all_rows = per_tau[t], results.select(table, temperature=t)
        rows.append(
            (
                f"{t:g}",
                len(sel["seed"]),
                float(sel["expert_nash_gap"][0]),
                float(sel["expert_soft_nash_gap"][0]),
                float(np.max(sel["eps_bc"])),
                float(np.max(sel["nash_gap"])),
                float(np.median(sel["nash_gap"])),
                float(np.max(sel["soft_nash_gap"])),
                at_zero(t, "br_shift"),
                float(np.max(sel["br_shift"])),
                at_zero(t, "soft_br_shift"),
                float(np.max(sel["soft_br_shift"])),
                f"{int(np.sum(~all_rows['lemma4_holds'].astype(bool)))}/{len(all_rows['seed'])}",
            )
        )
    lines.append(
        results.markdown_table(
            [
                "tau",
                "policies",
                "expert NashGap",
                "expert soft NashGap",
                "max eps_BC",
                "max NashGap",
                "median NashGap",
                "max soft NashGap",
                "delta(0)",
                "delta envelope max",
                "soft delta(0)",
                "soft delta envelope max",
                "Lemma 4 violations (all rows)",
            ],
            rows,
        )
    )
    lines += [
        "## Tight curves at common eps_BC levels (perturbed experts, pooled over seeds)",
        "",
        "Each entry is the largest value among the policies with eps_BC at most the level "
        "(— where none); the Lemma 4 estimate is ((2n-1) level + delta envelope) / (1-gamma)^2.",
        "",
    ]
    rows = []
    for t in taus:
        sel = per_tau[t]
        gap = pooled_envelope(sel["eps_bc"], sel["nash_gap"], levels)
        soft_gap = pooled_envelope(sel["eps_bc"], sel["soft_nash_gap"], levels)
        delta = pooled_envelope(sel["eps_bc"], sel["br_shift"], levels)
        soft = pooled_envelope(sel["eps_bc"], sel["soft_br_shift"], levels)
        bound = np.asarray(jm.theory.lemma4_bound(levels, delta, NUM_PLAYERS, config.discount))
        for j, level in enumerate(levels):
            rows.append((f"{t:g}", f"{level:g}", gap[j], soft_gap[j], delta[j], soft[j], bound[j]))
    lines.append(
        results.markdown_table(
            [
                "tau",
                "eps_BC level",
                "tight NashGap",
                "tight soft NashGap",
                "delta envelope",
                "soft delta envelope",
                "Lemma 4 estimate",
            ],
            rows,
        )
    )
    lines += ["## BC from N expert trajectories (medians over seeds)", ""]
    rows = []
    for t in taus:
        for size in config.dataset_sizes:
            sel = results.select(bc, temperature=t, num_trajectories=size)
            if not len(sel["seed"]):
                continue
            rows.append(
                (
                    f"{t:g}",
                    size,
                    *(
                        float(np.median(sel[c]))
                        for c in (
                            "eps_bc",
                            "eps_bc_estimate",
                            "nash_gap",
                            "soft_nash_gap",
                            "br_shift",
                            "soft_br_shift",
                            "lemma4_bound",
                        )
                    ),
                )
            )
    lines.append(
        results.markdown_table(
            [
                "tau",
                "N",
                "eps_BC",
                "eps_BC estimate",
                "NashGap",
                "soft NashGap",
                "BR shift",
                "soft BR shift",
                "Lemma 4 estimate",
            ],
            rows,
        )
    )
    inside = (table["eps_bc_low"] <= table["eps_bc"]) & (table["eps_bc"] <= table["eps_bc_high"])
    error = np.abs(table["eps_bc_estimate"] - table["eps_bc"])
    lines.append(
        f"eps_BC estimated from {config.num_episodes} held-out expert episodes per seed: largest "
        f"|estimate - exact| = {results.format_number(float(np.max(error)))}; the "
        f"{config.confidence:g} bootstrap interval ({config.num_bootstrap} replicates) holds the "
        f"exact value on {float(np.mean(inside)):.0%} of the rows.\n"
    )
    if not bool(np.all(table["converged"])):
        lines.append("**Warning:** some solves did not converge (see the converged column).\n")
    return "\n".join(lines)


_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_EPS_LABEL = "eps_BC (L1 error under the expert's occupancy)"


def _step(ax, bc_errors, values, **kwargs):
    """The pooled tight curve as a step line over the sorted eps_BC; returns ``(x, y)``."""
    x = np.sort(np.asarray(bc_errors, float))
    y = pooled_envelope(bc_errors, values, x)
    ax.step(x, y, where="post", **kwargs)
    return x, y


def _bc_points(ax, config, sel, column, color, *, labels):
    """BC policies as open markers, one shape per dataset size ``N``."""
    for marker, size in zip(_MARKERS * 4, config.dataset_sizes):
        pts = results.select(sel, num_trajectories=size)
        if not len(pts["seed"]):
            continue
        ax.scatter(
            pts["eps_bc"],
            pts[column],
            marker=marker,
            s=40,
            facecolors="none",
            edgecolors=color,
            linewidths=1.2,
            label=f"BC, N = {size}" if labels else None,
        )


def _fig5(config: TagConfig, table: Table, out_dir: str) -> str:
    gamma, tau = config.discount, _figure_temperature(config)
    sel = results.select(table, temperature=tau)
    pert, bc = results.select(sel, learner=PERTURBED), results.select(sel, learner=BC)
    fig = results.new_figure(figsize=(12.5, 5.0), layout="constrained")
    left, right = fig.subplots(1, 2)
    floor = 1e-6
    for ax, columns in (
        (left, (("nash_gap", "NashGap"), ("soft_nash_gap", "soft NashGap (regularised game)"))),
        (right, (("br_shift", "BR shift (Def 6)"), ("soft_br_shift", "soft BR shift"))),
    ):
        for color, (column, name) in zip(_COLORS, columns):
            ax.scatter(
                pert["eps_bc"],
                np.maximum(pert[column], floor),
                s=6,
                alpha=0.35,
                color=color,
                label=f"{name}, perturbed experts",
            )
            _step(ax, pert["eps_bc"], pert[column], color=color, label=f"{name}, envelope")
            _bc_points(ax, config, bc, column, color, labels=column in ("nash_gap", "br_shift"))
    x = np.sort(pert["eps_bc"])
    delta = pooled_envelope(pert["eps_bc"], pert["br_shift"], x)
    bound = np.asarray(jm.theory.lemma4_bound(x, delta, NUM_PLAYERS, gamma))
    left.step(x, bound, where="post", color="black", linestyle="--", label="Lemma 4 estimate")
    left.axhline(
        float(sel["expert_nash_gap"][0]), color="gray", linestyle=":", label="expert's NashGap"
    )
    left.set_yscale("log")
    below = np.any(pert["soft_nash_gap"] < floor) or np.any(pert["nash_gap"] < floor)
    left.set_ylabel(
        "Nash gap of the imitator" + (f" (below {floor:g} drawn at {floor:g})" if below else "")
    )
    left.set_title("Nash gaps and the Lemma 4 estimate")
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize="x-small", loc="lower right")
    right.set_ylabel("BR shift (L1 under the expert's occupancy, max over players)")
    right.set_title("Best-response shifts; envelopes = delta estimates")
    right.set_ylim(bottom=0.0)
    right.grid(True, alpha=0.3)
    right.legend(fontsize="x-small", loc="center left")
    for ax in (left, right):
        ax.set_xlabel(_EPS_LABEL)
    fig.suptitle(
        f"Tag {config.rows}x{config.cols}, gamma = {gamma:g}, soft Nash expert at tau = {tau:g} "
        f"(the paper's Fig. 5); open markers: BC from N expert trajectories"
    )
    return results.save_figure(fig, os.path.join(out_dir, "fig5_gap_and_shift.png"))


def _fig6(config: TagConfig, table: Table, out_dir: str) -> str:
    fig = results.new_figure(figsize=(12.5, 4.8), layout="constrained")
    axes = fig.subplots(1, 2)
    for color, t in zip(_COLORS * 4, config.temperatures):
        at = results.select(table, temperature=t)
        if not len(at["seed"]):
            continue
        p, b = results.select(at, learner=PERTURBED), results.select(at, learner=BC)
        for ax, column in zip(axes, ("br_shift", "soft_br_shift")):
            _step(ax, p["eps_bc"], p[column], color=color, label=f"tau = {t:g}")
            ax.scatter(b["eps_bc"], b[column], marker="x", s=30, color=color)
    for ax, name in zip(axes, ("unregularised best responses (Def 6)", "soft best responses")):
        ax.scatter([], [], marker="x", color="gray", label="BC policies (every N)")
        ax.set_xlabel(_EPS_LABEL)
        ax.set_ylabel("delta envelope (cumulative max of BR shifts)")
        ax.set_title(f"delta estimates, {name}")
        ax.set_ylim(bottom=0.0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(
        "Tag: delta envelopes of perturbed experts for several temperatures (the paper's Fig. 6: "
        "higher tau, lower delta)"
    )
    return results.save_figure(fig, os.path.join(out_dir, "fig6_delta_envelopes.png"))


def _bc_figure(config: TagConfig, table: Table, out_dir: str) -> str:
    fig = results.new_figure(figsize=(12.5, 4.4), layout="constrained")
    axes = fig.subplots(1, 2)
    sizes = list(config.dataset_sizes)
    for color, t in zip(_COLORS * 4, config.temperatures):
        at = results.select(table, temperature=t, learner=BC)
        if not len(at["seed"]):
            continue
        for ax, column in zip(axes, ("eps_bc", "nash_gap")):
            medians = [
                float(np.median(results.select(at, num_trajectories=n)[column])) for n in sizes
            ]
            ax.plot(sizes, medians, "-o", color=color, label=f"tau = {t:g}")
        axes[1].axhline(float(at["expert_nash_gap"][0]), color=color, linestyle=":")
    axes[0].set_ylabel("median eps_BC of BC")
    axes[1].set_ylabel("median NashGap of BC (dotted: the expert's)")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("number of expert trajectories N")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(
        f"Tag: closed-form BC (smoothing {config.smoothing:g}) from demonstrations of the soft "
        f"Nash expert"
    )
    return results.save_figure(fig, os.path.join(out_dir, "bc_vs_demonstrations.png"))


def plot(config: TagConfig, table: Table, out_dir: str) -> list[str]:
    if not len(table.get("nash_gap", ())):
        return []
    return [
        _fig5(config, table, out_dir),
        _fig6(config, table, out_dir),
        _bc_figure(config, table, out_dir),
    ]


EXPERIMENT = register(
    Experiment(
        name="tag",
        description="App. E on Tag 2x3: NashGap and delta envelopes of soft Nash expert imitators",
        config_type=TagConfig,
        settings=settings,
        run_chunk=run_chunk,
        summarize=summarize,
        plot=plot,
    )
)
