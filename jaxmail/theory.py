"""The paper's bounds and continuity estimates, computed for a given game (docs/theory.md §3, §6).

Shapes: ``n`` players, ``S`` states, ``A_i`` actions of player ``i``, ``K`` policies of a sweep,
``C = prod_{j != i} A_j`` deterministic joint actions of the players other than ``i``.

Three kinds of quantity:

* Closed-form bounds (Lemma 3, Lemma 4, Corollary 3, the known value-gap bounds): plain ``jnp``
  functions of arrays that broadcast and ``vmap``; configuration is keyword-only. The paper
  proves them for rewards in ``[-1, 1]``; with ``|r| <= r_max`` every gap and value bound scales
  by ``r_max`` (values, gaps and the performance-difference terms are linear in the rewards,
  and eps_BC and delta are not). Each takes ``reward_bound`` (``r_max``, default 1, the paper's
  assumption); pass :func:`reward_bound` of the game whenever its rewards may leave [-1, 1].
* Estimates of the best-response continuity modulus (Def 6)

      delta_i(eps) = sup { shift_i(pi_-i) : E_{s ~ d^E} ||pi_-i(.|s) - E_-i(.|s)||_1 <= eps },

  where ``E`` is the expert, ``shift_i(pi_-i)`` player ``i``'s BR shift against ``pi_-i``
  (:func:`jaxmail.best_response_shift`) and the L1 distance is between the JOINT distributions of
  the others' actions: :func:`perturbation_envelope` (the paper's estimator, a cumulative max
  over a sweep of policies) and :func:`adversarial_delta` (constructed deviations). Both are
  LOWER estimates of ``delta``: they report shifts that some admissible deviation attains.
  :func:`soft_delta_upper_bound` is a certified UPPER bound on the continuity modulus of the
  SOFT best responses of the entropy-regularised game (for the unregularised game the only
  general upper bound is the trivial :data:`TRIVIAL_DELTA` ``= 2``). A lower estimate and an
  upper bound together bracket ``delta``; the bracket's width is what is not known.
* Freihaut et al.'s concentrability coefficient, exact in tabular games
  (:func:`concentrability`).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmail import _linalg
from jaxmail._api import kernel
from jaxmail._args import check_choice
from jaxmail._arrays import is_concrete
from jaxmail.evaluation import state_occupancy
from jaxmail.game import MarkovGame
from jaxmail.policy import check_policy, random_policy
from jaxmail.regularised import soft_best_response_shift
from jaxmail.responses import METHODS, best_response_shift, induced_mdp, solve_mdp
from jaxmail.tolerances import occupancy_zero_tol

Array = jax.Array

CONSTANTS = ("proof", "statement")
TRIVIAL_DELTA = 2.0  # an L1 distance between distributions is at most 2
DELTA_FORMS = ("safe", "paper")

_BISECTION_STEPS = 32  # mixing weights to 2**-32: below float32 and float64 rounding of costs


# ----------------------------------------------------------------------------------------------
# Closed-form bounds.
# ----------------------------------------------------------------------------------------------


def reward_bound(game: MarkovGame) -> Array:
    """``r_max = max |R|`` over players, states and joint actions: the scale of every bound.

    The bounds of this module hold for rewards in ``[-r_max, r_max]``; pass this as their
    ``reward_bound`` (a game with rewards in [-1, 1] gives at most 1). Traceable.

    Example:
      >>> import jaxmail as jm
      >>> from jaxmail import theory
      >>> g = jm.games.lemma1_game(0.9).game
      >>> float(theory.reward_bound(g))
      1.0
    """
    return jnp.max(jnp.abs(game.reward))


def _check_num_players(num_players) -> Array:
    if is_concrete(num_players):
        values = np.asarray(num_players)
        if values.dtype.kind not in "iuf" or np.any(~(values >= 1)):
            raise ValueError(f"num_players: must be >= 1, got {num_players!r}")
    return jnp.asarray(num_players)


def lemma3_constant(num_players: int | Array, *, constant: str = "proof") -> Array:
    """The constant ``c`` of Lemma 3: ``2n - 1`` (``"proof"``, default) or ``2n`` (``"statement"``).

    The proof of Lemma 3 gives ``2n - 1``; the statement rounds it up to ``2n``.

    Raises:
      ValueError: ``constant`` is not a known name, or a concrete ``num_players < 1``.
    """
    check_choice("constant", constant, CONSTANTS)
    n = _check_num_players(num_players)
    return 2 * n - 1 if constant == "proof" else 2 * n


def lemma3_bound(
    bc_error: Array,
    num_players: int | Array,
    discount: Array,
    *,
    constant: str = "proof",
    reward_bound: Array = 1.0,
) -> Array:
    """Lemma 3 (dominant-strategy expert): ``NashGap(pi) <= c r_max eps_BC / (1 - gamma)^2``.

    ``c = 2n - 1`` (``constant="proof"``, default) or ``2n`` (``"statement"``). Arguments
    broadcast against each other. Assumes ``|r| <= r_max`` (module docstring).

    Args:
      bc_error: ``eps_BC`` (:func:`jaxmail.bc_error`), any shape.
      num_players: ``n``, broadcastable.
      discount: ``gamma``, broadcastable.
      constant: ``"proof"`` or ``"statement"``.
      reward_bound: ``r_max`` (default 1, the paper's ``[-1, 1]``; :func:`reward_bound`).

    Returns:
      The bound, the broadcast shape of the arguments.

    Example:
      >>> from jaxmail import theory
      >>> round(float(theory.lemma3_bound(0.01, 2, 0.9)), 4)   # 3 * 0.01 / 0.1**2
      3.0
    """
    c = lemma3_constant(num_players, constant=constant)
    scale = jnp.asarray(reward_bound) / (1.0 - jnp.asarray(discount)) ** 2
    return c * jnp.asarray(bc_error) * scale


def lemma4_delta_argument(
    bc_error: Array, num_players: int | Array, *, form: str = "safe"
) -> Array:
    """Where Lemma 4 evaluates ``delta``: ``(n - 1) eps_BC`` (``"safe"``, default) or ``eps_BC``.

    Lemma 4 needs ``delta`` at the others' JOINT deviation ``E_{d^E} ||pi_-i - E_-i||_1``, which
    the product-distance lemma ``||prod_j p_j - prod_j q_j||_1 <= sum_j ||p_j - q_j||_1`` bounds
    by ``(n - 1) eps_BC`` (the safe form, the default). The paper writes ``delta(eps_BC)``
    (``form="paper"``), which is the same for ``n = 2`` and may be too small for ``n > 2``.

    Args:
      bc_error: ``eps_BC``, any shape.
      num_players: ``n``, broadcastable.
      form: ``"safe"`` or ``"paper"``.

    Returns:
      The argument of ``delta``, the broadcast shape.

    Raises:
      ValueError: unknown ``form``, or a concrete ``num_players < 1``.
    """
    check_choice("form", form, DELTA_FORMS)
    n = _check_num_players(num_players)
    bc_error = jnp.asarray(bc_error)
    if form == "safe":
        return (n - 1) * bc_error
    return jnp.broadcast_to(bc_error, jnp.shape(n * bc_error))


def lemma4_bound(
    bc_error: Array,
    delta: Array,
    num_players: int | Array,
    discount: Array,
    *,
    constant: str = "proof",
    reward_bound: Array = 1.0,
) -> Array:
    """Lemma 4 (delta-continuous best responses): ``NashGap <= (c eps_BC + delta) / (1-gamma)^2``.

    Times ``r_max = reward_bound`` when ``|r| <= r_max`` (default 1, the paper's assumption;
    module docstring).

    ``delta`` is the continuity modulus ALREADY evaluated at :func:`lemma4_delta_argument`
    (for example the envelope of :func:`perturbation_envelope` or :func:`adversarial_delta`
    there); ``c = 2n - 1`` (``"proof"``, default) or ``2n`` (``"statement"``). Arguments
    broadcast.

    The paper states the lemma for a Nash expert; the proof (the simulation lemma under
    ``d^E``, once for ``V_i^{b_i, pi_-i} - V_i^E`` and once for ``V_i^E - V_i^pi``) uses no
    equilibrium property, so the bound holds for any expert once ``delta`` contains the
    expert's own best-response shift (``delta(0)``: positive for a QRE, and for a mixed Nash
    equilibrium, whose support actions are all best responses). For an exact Nash expert of a
    general-sum game (:func:`jaxmail.equilibria.qre_homotopy`) nothing here assumes its NashGap
    is 0: the experiments count only experts whose certificate ``NashGap <= gap_tol`` holds,
    add the certified gap to the rounding allowance, and count the uncertified ones apart
    (``continuity``, ``demonstrations``; docs/theory.md §3 item 6).

    Returns:
      The bound, the broadcast shape of the arguments.
    """
    c = lemma3_constant(num_players, constant=constant)
    total = c * jnp.asarray(bc_error) + jnp.asarray(delta)
    return jnp.asarray(reward_bound) * total / (1.0 - jnp.asarray(discount)) ** 2


class ValueGapBounds(NamedTuple):
    """The two known value-gap bounds (docs/theory.md §3 item 9).

    Attributes:
      bc: ``n eps_BC / (1 - gamma)^2``.
      occupancy: ``eps_rho / (1 - gamma)``.
    """

    bc: Array
    occupancy: Array


def value_gap_bounds(
    bc_error: Array,
    occupancy_error: Array,
    num_players: int | Array,
    discount: Array,
    *,
    reward_bound: Array = 1.0,
) -> ValueGapBounds:
    """``ValueGap <= n eps_BC / (1 - gamma)^2`` and ``ValueGap <= eps_rho / (1 - gamma)``.

    Both times ``r_max = reward_bound`` when ``|r| <= r_max`` (default 1; module docstring).
    The second is exact bookkeeping: ``V_i = <rho, R_i> / (1 - gamma)``, so
    ``|V_i^E - V_i^pi| <= r_max ||rho_E - rho_pi||_1 / (1 - gamma)``.

    Args:
      bc_error: ``eps_BC`` (:func:`jaxmail.bc_error`).
      occupancy_error: ``eps_rho`` (:func:`jaxmail.occupancy_error`, joint actions).
      num_players: ``n``.
      discount: ``gamma``.
      reward_bound: ``r_max`` (:func:`reward_bound`).

    Returns:
      A :class:`ValueGapBounds`; each field has the broadcast shape of its arguments.
    """
    n = _check_num_players(num_players)
    gamma = jnp.asarray(discount)
    r_max = jnp.asarray(reward_bound)
    return ValueGapBounds(
        r_max * n * jnp.asarray(bc_error) / (1.0 - gamma) ** 2,
        r_max * jnp.asarray(occupancy_error) / (1.0 - gamma),
    )


def corollary3_threshold(
    epsilon: Array,
    num_players: int | Array,
    discount: Array,
    *,
    constant: str = "proof",
    reward_bound: Array = 1.0,
) -> Array:
    """Corollary 3: ``eps_BC <= eps (1 - gamma)^2 / c`` makes a policy an ``eps``-Nash equilibrium.

    Divided by ``r_max = reward_bound`` when ``|r| <= r_max`` (default 1; module docstring).

    The inverse of :func:`lemma3_bound` (same ``constant``): ``lemma3_bound(threshold) = eps``.
    The paper states the corollary with ``c = 2n`` (``constant="statement"``); the proof's
    ``2n - 1`` (default) gives a slightly larger, equally valid threshold.

    Returns:
      The largest BC error the bound allows, the broadcast shape of the arguments.
    """
    c = lemma3_constant(num_players, constant=constant)
    scale = (1.0 - jnp.asarray(discount)) ** 2 / jnp.asarray(reward_bound)
    return jnp.asarray(epsilon) * scale / c


# ----------------------------------------------------------------------------------------------
# delta estimators.
# ----------------------------------------------------------------------------------------------


class PerturbationEnvelope(NamedTuple):
    """The paper's delta (or NashGap) curve from a sweep of policies.

    Attributes:
      bc_errors: ``[K]`` the policies' BC errors, ascending.
      envelope: ``[K]`` ``max { shift_k : eps_k <= bc_errors[j] }`` at each ``j``.
    """

    bc_errors: Array
    envelope: Array


def perturbation_envelope(bc_errors: Array, shifts: Array) -> PerturbationEnvelope:
    """The cumulative maximum of ``shifts`` over policies sorted by BC error (docs/theory.md §5).

    ``envelope[j] = max { shifts[k] : bc_errors[k] <= sorted_bc_errors[j] }``: the largest BR
    shift (or NashGap) seen at a BC error no larger than the ``j``-th. Policies with tied BC
    errors share one value.

    With ``shifts[k]`` player ``i``'s BR shift against policy ``k`` (or the max over players),
    each point is attained by a deviation of the others of size at most ``eps_k`` when
    ``n = 2`` (eps_BC bounds every player's deviation) and ``(n - 1) eps_k`` when ``n > 2``
    (product-distance lemma). As ``delta`` is non-decreasing, the envelope at ``eps`` is a LOWER
    estimate of ``delta(eps)`` (``n = 2``) or of ``delta((n - 1) eps)`` (``n > 2``). With
    NashGaps for ``shifts`` it is the paper's tight-NashGap curve.

    Args:
      bc_errors: ``[K]``.
      shifts: ``[K]`` shifts (or NashGaps) of the same policies.

    Returns:
      A :class:`PerturbationEnvelope` ``(bc_errors [K] ascending, envelope [K])``.
    """
    bc_errors = jnp.asarray(bc_errors)
    shifts = jnp.asarray(shifts)
    if bc_errors.ndim != 1 or shifts.shape != bc_errors.shape:
        raise ValueError(
            f"bc_errors, shifts: expected two [K] arrays, got shapes {bc_errors.shape} and "
            f"{shifts.shape}"
        )
    order = jnp.argsort(bc_errors, stable=True)
    sorted_errors = bc_errors[order]
    running = lax.cummax(shifts[order], axis=0)
    last_tie = jnp.searchsorted(sorted_errors, sorted_errors, side="right") - 1
    return PerturbationEnvelope(sorted_errors, running[last_tie])


def envelope_at(
    bc_errors: Array,
    values: Array,
    at: Array,
    *,
    exclude: Array | None = None,
    empty: float = float("nan"),
) -> Array:
    """The envelope of :func:`perturbation_envelope` read at given BC errors.

    ``out[m] = max { values[k] : bc_errors[k] <= at[m], k != exclude[m] }``, or ``empty`` where
    no policy qualifies. With BR shifts for ``values`` it is the lower estimate of ``delta`` at
    ``at[m]``; with NashGaps the tight-NashGap curve. ``exclude`` gives the leave-one-out
    envelope: point ``m`` is policy ``exclude[m]``'s own argument (-1: none), whose value never
    enters the estimate it is tested against (a held-out check). A max of a set, so the result
    is exact (no rounding) and follows the dtype of ``values``; NaN values propagate.

    Args:
      bc_errors: ``[K]``.
      values: ``[K]`` shifts (or NashGaps) of the same policies.
      at: ``[M]`` (or a scalar, read as ``[1]``) BC errors to read the envelope at.
      exclude: ``[M]`` int, the policy each point leaves out (-1: none); default none.
      empty: the value where no policy qualifies (NaN; ``-inf`` for a max to take later).

    Returns:
      ``[M]``. Cost ``O(K M)`` comparisons (no sort).

    Raises:
      ValueError: ``bc_errors`` and ``values`` are not two ``[K]`` arrays, or ``exclude`` is
        not ``[M]``.
    """
    bc_errors, values = jnp.asarray(bc_errors), jnp.asarray(values)
    at = jnp.atleast_1d(jnp.asarray(at))
    if bc_errors.ndim != 1 or values.shape != bc_errors.shape or at.ndim != 1:
        raise ValueError(
            f"bc_errors, values, at: expected [K], [K] and [M] arrays, got shapes "
            f"{bc_errors.shape}, {values.shape} and {at.shape}"
        )
    fits = bc_errors[None, :] <= at[:, None]  # [M, K]
    if exclude is not None:
        exclude = jnp.asarray(exclude)
        if exclude.shape != at.shape:
            raise ValueError(
                f"exclude: expected one policy index per point, shape {at.shape}, got "
                f"{exclude.shape}"
            )
        fits = fits & (jnp.arange(bc_errors.shape[0])[None, :] != exclude[:, None])
    best = jnp.max(jnp.where(fits, values[None, :], -jnp.inf), axis=-1, initial=-jnp.inf)
    return jnp.where(jnp.any(fits, axis=-1), best, jnp.asarray(empty, values.dtype))


class DeltaEstimate(NamedTuple):
    """An adversarial lower estimate of ``delta_i(eps)`` (:func:`adversarial_delta`).

    ``rare_state`` and ``random`` are maxima over one family of admissible deviations each, the
    undeviated expert (cost 0) included, so both are ``>= expert_shift``.

    Attributes:
      delta: ``[]`` the largest BR shift found, ``<= delta_i(eps)``.
      policy: ``n`` arrays ``[S, A_j]``, the cheapest deviation found that attains ``delta``
        (``policy[i]`` is the expert's; only the others deviate).
      deviation: ``[]`` its cost ``E_{s ~ d^E} ||pi_-i(.|s) - E_-i(.|s)||_1 <= eps`` (up to
        rounding).
      expert_shift: ``[]`` the BR shift against the expert itself. ``delta(0)`` may exceed it:
        deviations at states the expert never visits cost nothing.
      rare_state: ``[]`` the best of the rare-state attacks (greedy and uniform).
      random: ``[]`` the best of the random search.
    """

    delta: Array
    policy: tuple[Array, ...]
    deviation: Array
    expert_shift: Array
    rare_state: Array
    random: Array


def _others(policy, player):
    return tuple(p for j, p in enumerate(policy) if j != player)


def _with_others(expert, others, player):
    rest = iter(others)
    return tuple(p if j == player else next(rest) for j, p in enumerate(expert))


def _joint(rows):
    """``[..., A_1], ..., [..., A_m]`` -> the product distribution ``[..., A_1, ..., A_m]``."""
    m = len(rows)
    out = None
    for k, r in enumerate(rows):
        term = r.reshape(r.shape[:-1] + tuple(r.shape[-1] if j == k else 1 for j in range(m)))
        out = term if out is None else out * term
    return out


def _joint_distance(rows, reference):
    """L1 distance between the product distributions of ``rows`` and ``reference``."""
    diff = _joint(rows) - _joint(reference)
    return jnp.sum(jnp.abs(diff), axis=tuple(range(-len(rows), 0)))


def _mix(reference, target, t):
    """``(1 - t) reference_j + t target_j`` for every player ``j``; ``t`` is ``[...]``."""
    return tuple(r + t[..., None] * (q - r) for r, q in zip(reference, target))


def _admissible_mix(cost, budget, shape, dtype):
    """A mixing weight ``t in [0, 1]`` with ``cost(t) <= budget``, as large as bisection finds.

    ``t = 1`` when the full move fits; otherwise bisection keeps ``cost(lo) <= budget <
    cost(hi)`` from ``lo = 0`` (cost 0), so the result always fits and meets the budget to
    ``2**-32`` in ``t`` (exactly the largest fitting ``t`` when ``cost`` is increasing, as it
    is, linear, for one other player). ``budget >= 0``.
    """
    one = jnp.ones(shape, dtype)

    def step(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        fits = cost(mid) <= budget
        return jnp.where(fits, mid, lo), jnp.where(fits, hi, mid)

    lo, _ = lax.fori_loop(0, _BISECTION_STEPS, step, (jnp.zeros(shape, dtype), one))
    return jnp.where(cost(one) <= budget, one, lo)


def _candidate_targets(num_actions, player, dtype):
    """The others' deterministic joint actions as one-hot rows: ``m`` arrays ``[C, A_j]``."""
    sizes = [a for j, a in enumerate(num_actions) if j != player]
    choices = np.array(list(itertools.product(*(range(a) for a in sizes))), dtype=np.int32)
    return tuple(jax.nn.one_hot(choices[:, k], a, dtype=dtype) for k, a in enumerate(sizes))


def _check_epsilon(epsilon) -> None:
    if is_concrete(epsilon):
        value = np.asarray(epsilon)
        if value.ndim != 0 or not value >= 0:
            raise ValueError(f"epsilon: expected a scalar >= 0, got {epsilon!r}")
    elif jnp.ndim(epsilon) != 0:
        raise ValueError(f"epsilon: expected a scalar, got shape {jnp.shape(epsilon)}")


def adversarial_delta(
    game: MarkovGame,
    expert: Sequence[Array],
    epsilon: float | Array,
    player: int,
    *,
    key: Array | None = None,
    num_random: int = 0,
    tol: float | Array | None = None,
    method: str = "policy_iteration",
) -> DeltaEstimate:
    """A LOWER estimate of ``delta_i(eps)`` from deviations of the others that the budget allows.

    ``delta_i(eps) = sup { shift_i(pi_-i) : E_{s ~ d^E} ||pi_-i(.|s) - E_-i(.|s)||_1 <= eps }``
    (Def 6; the L1 distance between the others' JOINT action distributions, ``shift_i`` from
    :func:`jaxmail.best_response_shift`). Every deviation tried here satisfies the budget, so
    the shift it attains is at most ``delta_i(eps)``: the result is a lower bound, never an
    upper one, and a small value does not certify continuity. Families of deviations, all
    starting from the expert (whose own shift is always a candidate):

    * Greedy rare-state attack (Lemma 2's construction): visit the states by increasing expert
      occupancy ``d^E(s)`` (free states with ``d^E(s) = 0`` first). At each state try moving
      the others to each of their ``C`` deterministic joint actions (fully if the remaining
      budget allows, else mixed with the expert to meet it); keep the move with the largest
      shift if it beats the current shift by more than the resolution (below), otherwise
      leave the state as the expert plays it and keep the budget. One pass, ``S`` steps of
      ``C`` evaluations. Greedy: deviations that only help together may be missed.
    * Uniform rare-state attacks: for each of the ``C`` joint actions, move the others to it at
      the rarest states, in order, until the budget is spent (the last state mixed).
    * Random search (``num_random > 0``): ``pi_-i = (1 - t) E_-i + t U`` with ``U`` drawn from
      :func:`jaxmail.random_policy` and ``t`` the largest weight (bisection) within the budget.

    Mixing is per player (``(1 - t) E_j + t Q_j``), so deviations stay product policies; the
    cost of a mix is the exact joint distance, which for one other player is ``t`` times that
    of the full move. The result is the cheapest candidate among those whose shift is within
    the resolution ``2 * occupancy_zero_tol`` (rounding of the occupancy-weighted shift) of the
    largest; ties (no deviation helps) therefore return the expert itself at cost 0.

    Args:
      game: one game, ``n >= 2`` players.
      expert: ``n`` arrays ``[S, A_j]``.
      epsilon: the budget ``eps >= 0``, ``[]`` (may be traced: sweeps do not recompile).
      player: static int, the player ``i`` whose best response is shifted.
      key: PRNG key for the random search (consumed); required when ``num_random > 0``.
      num_random: static number of random deviations (one batched evaluation).
      tol: tolerance of the best-response sets (:func:`jaxmail.best_response_shift`).
      method: best-response solver.

    Returns:
      A :class:`DeltaEstimate`. Cost: ``S C + C + num_random + 1`` BR-shift evaluations (each
      ``n`` best responses and one occupancy solve), in two compiled batches.

    Raises:
      ValueError: ``n < 2``, ``num_random > 0`` without a key, a negative concrete ``epsilon``.

    Example:
      >>> from jaxmail import theory
      >>> game, expert, learner = jm.games.lemma2_game(0.05, 0.9)   # eps_BC(learner) = 0.0044
      >>> est = theory.adversarial_delta(game, expert, 0.005, 0)
      >>> round(float(est.expert_shift), 4), round(float(est.delta), 4)   # flips s0: delta = 2
      (1.8, 2.0)
    """
    check_choice("method", method, METHODS)
    if game.num_players < 2:
        raise ValueError(f"game: adversarial_delta needs n >= 2 players, got {game.num_players}")
    if isinstance(num_random, bool) or not isinstance(num_random, (int, np.integer)):
        raise ValueError(f"num_random: expected a Python int (static), got {num_random!r}")
    if num_random < 0:
        raise ValueError(f"num_random: must be >= 0, got {num_random}")
    if num_random > 0 and key is None:
        raise ValueError("key: a PRNG key is required when num_random > 0")
    _check_epsilon(epsilon)
    return _adversarial_delta(
        game, expert, epsilon, player, key=key, num_random=int(num_random), tol=tol, method=method
    )


@kernel(static=("player", "num_random", "method"), policies=("expert",))
def _adversarial_delta(game, expert, epsilon, player, *, key, num_random, tol, method):
    expert = check_policy(game, expert, name="expert")
    dtype = game.dtype
    epsilon = jnp.maximum(jnp.asarray(epsilon, dtype), 0.0)
    reference = _others(expert, player)  # m arrays [S, A_j]
    targets = _candidate_targets(game.num_actions, player, dtype)  # m arrays [C, A_j]
    num_candidates = targets[0].shape[0]

    def shift_of(others):
        policy = _with_others(expert, others, player)
        return best_response_shift(game, policy, expert, tol=tol, method=method)[player]

    shifts_of = jax.vmap(shift_of)

    d_e = jnp.maximum(state_occupancy(game, expert), 0.0)  # no negative rounding in costs
    order = jnp.argsort(d_e, stable=True)
    # Shifts are occupancy-weighted L1 distances (<= 2): differences below twice the occupancy
    # rounding bound are rounding, and do not count as improvements.
    resolution = 2.0 * occupancy_zero_tol(dtype, game.discount)

    # One batch: the expert itself, the uniform rare-state attacks and the random draws.
    # Uniform attacks: one joint action at the rarest states until the budget is spent.
    d_sorted = d_e[order]
    ref_sorted = tuple(r[order] for r in reference)
    wide = tuple(x[:, None, :] for x in targets)  # [C, 1, A_j]

    def uniform_cost(t):  # [C, S] per-state costs in rarity order
        return d_sorted * _joint_distance(_mix(ref_sorted, wide, t), ref_sorted)

    full = uniform_cost(jnp.ones((num_candidates, game.num_states), dtype))
    before = jnp.cumsum(full, axis=1) - full
    t_sorted = _admissible_mix(uniform_cost, jnp.maximum(epsilon - before, 0.0), full.shape, dtype)
    weights = jnp.zeros_like(t_sorted).at[:, order].set(t_sorted)
    batch = [tuple(r[None] for r in reference), _mix(reference, wide, weights)]  # 1 + C
    if num_random > 0:
        keys = jax.random.split(key, num_random)
        draws = jax.vmap(lambda k: _others(random_policy(k, game), player))(keys)  # [R, S, A_j]

        def random_cost(t):
            return _joint_distance(_mix(reference, draws, t[:, None]), reference) @ d_e

        t = _admissible_mix(random_cost, epsilon, (num_random,), dtype)
        batch.append(_mix(reference, draws, t[:, None]))
    batch = tuple(jnp.concatenate(xs) for xs in zip(*batch))  # m arrays [1 + C + R, S, A_j]
    # Never two linear-algebra chains side by side (see jaxmail/_linalg.py): the batch starts
    # after the expert's occupancy, the greedy attack after the batch.
    batch_shifts = shifts_of(tuple(_linalg.after(x, d_e) for x in batch))
    expert_shift = batch_shifts[0]
    uniform_shift = jnp.max(batch_shifts[: 1 + num_candidates])
    random_shift = jnp.max(batch_shifts[jnp.r_[0, 1 + num_candidates : len(batch_shifts)]])

    # Greedy rare-state attack, from the expert, rarest state first.
    def visit(carry, s):
        others, spent, best = carry
        rows = tuple(r[s] for r in reference)  # [A_j]; still the expert's at s

        def cost(t):
            return d_e[s] * _joint_distance(_mix(rows, targets, t), rows)

        t = _admissible_mix(cost, jnp.maximum(epsilon - spent, 0.0), (num_candidates,), dtype)
        moved = _mix(rows, targets, t)  # [C, A_j]
        tries = tuple(
            jnp.broadcast_to(o, (num_candidates,) + o.shape).at[:, s].set(m)
            for o, m in zip(others, moved)
        )
        shifts = shifts_of(tries)
        k = jnp.argmax(shifts)
        better = shifts[k] > best + resolution
        others = tuple(jnp.where(better, x[k], o) for x, o in zip(tries, others))
        spent = jnp.where(better, spent + cost(t)[k], spent)
        return (others, spent, jnp.maximum(best, shifts[k])), None

    start = tuple(_linalg.after(r, batch_shifts) for r in reference)
    (greedy, _, greedy_shift), _ = lax.scan(
        visit, (start, jnp.zeros((), dtype), expert_shift), order
    )

    # The cheapest candidate among those with the largest shift (up to its resolution).
    candidates = tuple(jnp.concatenate([g[None], x]) for g, x in zip(greedy, batch))
    shifts = jnp.concatenate([greedy_shift[None], batch_shifts])
    costs = _joint_distance(candidates, reference) @ d_e
    top = shifts >= jnp.max(shifts) - resolution
    best = jnp.argmin(jnp.where(top, costs, jnp.inf))
    return DeltaEstimate(
        shifts[best],
        _with_others(expert, tuple(x[best] for x in candidates), player),
        costs[best],
        expert_shift,
        jnp.maximum(greedy_shift, uniform_shift),
        random_shift,
    )


class SoftDeltaBound(NamedTuple):
    """A certified upper bound on the soft continuity modulus (:func:`soft_delta_upper_bound`).

    Attributes:
      bound: ``[...]`` (the shape of ``epsilon``) ``>= delta^tau(eps)``, at most 2.
      expert_shift: ``[n]`` the soft BR shift against the expert itself (0 at an exact
        regularised equilibrium).
      lipschitz: ``[]`` ``Omega = max_{i, s} Omega_i(s)`` (docstring).
      min_occupancy: ``[]`` ``min_s d^E(s)`` less the occupancy rounding bound (0 when some
        state counts as unvisited: then a deviation there is free).
      converged: ``[]`` bool: the expert's soft best responses converged.
    """

    bound: Array
    expert_shift: Array
    lipschitz: Array
    min_occupancy: Array
    converged: Array


def _binary_entropy(t):
    return jax.scipy.special.entr(t) + jax.scipy.special.entr(1.0 - t)


def entropy_continuity(distance: Array, num_outcomes: int) -> Array:
    """A non-decreasing bound ``phi(c) >= |H(p) - H(q)|`` for ``||p - q||_1 <= c``.

    Fannes-Audenaert: ``|H(p) - H(q)| <= T log(d - 1) + h(T)`` with ``T = ||p - q||_1 / 2``,
    ``d`` outcomes and ``h`` the binary entropy; the right side increases on
    ``[0, 1 - 1/d]`` up to ``log d``, the largest possible difference, which is used beyond.

    Args:
      distance: ``c`` in ``[0, 2]``, any shape.
      num_outcomes: ``d >= 2`` (static).
    """
    t = jnp.clip(jnp.asarray(distance) / 2.0, 0.0, 1.0)
    d = num_outcomes
    below = t * np.log(d - 1) + _binary_entropy(jnp.minimum(t, 1.0 - 1.0 / d))
    return jnp.where(t <= 1.0 - 1.0 / d, below, np.log(d))


def soft_delta_upper_bound(
    game: MarkovGame,
    expert: Sequence[Array],
    epsilon: Array,
    *,
    temperature: Array,
    zero_sum: bool = False,
) -> SoftDeltaBound:
    """A certified UPPER bound on ``delta^tau(eps)``, the soft best responses' modulus.

    ``delta^tau(eps) = max_i sup { E_{d^E} ||b_i(pi_-i) - E_i||_1 : E_{d^E} ||pi_-i - E_-i||_1
    <= eps }`` with ``b_i(pi_-i)`` player ``i``'s (unique) soft best response in the
    regularised game (:mod:`jaxmail.regularised`; the L1 distance of the others' JOINT action
    distributions). Derivation, for one player ``i``, writing ``c(s) = ||pi_-i(.|s) -
    E_-i(.|s)||_1`` (so ``sum_s d^E(s) c(s) <= eps``), ``b = b_i(pi_-i)``, ``b^E = b_i(E_-i)``,
    ``Q, V`` and ``Q^E, V^E`` their soft values, ``W(s, a_i, a_-i) = R_i(s, a) + gamma
    P(. | s, a) . V``:

    1. Softmax is Lipschitz: ``d/dt softmax(x + t v) = (diag p - p p^T) v`` has L1 norm
       ``E_p |v - E_p v| <= osc(v) / 2`` (``osc = max - min``), so ``||b(s) - b^E(s)||_1 <=
       osc_a (Q(s, .) - Q^E(s, .)) / (2 tau)``.
    2. ``Q(s, a_i) - Q^E(s, a_i) = sum_{a_-i} (pi_-i - E_-i)(a_-i | s) W(s, a_i, a_-i) + gamma
       sum_{a_-i} E_-i(a_-i | s) P(. | s, a) . (V - V^E) - kappa tau (H(pi_-i(s)) -
       H(E_-i(s)))``. The last term does not depend on ``a_i``. A zero-sum weight vector
       meets ``|sum Delta W| <= ||Delta||_1 osc(W) / 2``; ``osc_{a_-i} W(s, a_i, .) <=
       osc_{a_-i} R_i(s, a_i, .) + gamma TV_i(s) osc(V)`` with ``TV_i(s)`` the largest total
       variation between ``P(. | s, a_i, a_-i)`` and ``P(. | s, a_i, a'_-i)``, and every soft
       value lies in ``[(min R_i - kappa tau log C_i), (max R_i + tau log A_i)] / (1 - gamma)``
       (``C_i = prod_{j != i} A_j``), so ``osc(V) <= (max R_i - min R_i + tau log A_i + kappa
       tau log C_i) / (1 - gamma)``. Hence ``osc_a (Q - Q^E)(s, .) <= c(s) Omega_i(s) + 2 gamma
       ||V - V^E||_inf``, ``Omega_i(s) = max_{a_i} osc_{a_-i} R_i(s, a_i, .) + gamma TV_i(s)
       osc(V)``.
    3. ``||V - V^E||_inf <= ||(T - T^E) V^E||_inf / (1 - gamma)`` (contraction), and
       log-sum-exp is 1-Lipschitz in the sup norm, so with step 2's bounds
       ``||V - V^E||_inf <= D = (m Omega / 2 + kappa tau phi(m)) / (1 - gamma)``, where
       ``m = max_s c(s)``, ``Omega = max_s Omega_i(s)`` and ``phi`` the entropy continuity
       bound (:func:`entropy_continuity`, ``C_i`` outcomes). The budget allows
       ``c(s) <= min(2, eps / d^E(s))``, so ``m <= min(2, eps / d_min)`` (``m = 2`` if some
       state is unvisited: a deviation there costs nothing).
    4. Summing under ``d^E`` (``sum d^E = 1``, ``sum d^E c <= eps``) and adding the expert's own
       shift (triangle inequality; 0 at an exact regularised equilibrium):
       ``E_{d^E} ||b - E_i||_1 <= min(2, shift_i(E) + Omega eps / (2 tau) + gamma D / tau)``.

    The bound is ``max_i`` of step 4. At ``eps = 0`` with every state visited it equals the
    expert's own shift (so the bracket with any lower estimate has width 0 there); it grows
    like ``eps / (tau (1 - gamma) d_min)`` and reaches the trivial 2 quickly in games with rare
    states: a sup-norm argument cannot exploit the occupancy weighting beyond ``d_min``.

    Args:
      game: one game, ``n >= 2`` players.
      expert: ``n`` arrays ``[S, A_i]``.
      epsilon: budgets ``eps >= 0``, any shape (array leaf).
      temperature: ``tau > 0`` (array leaf).
      zero_sum: the ``"zero_sum"`` convention of the regularised game.

    Returns:
      A :class:`SoftDeltaBound`.

    Raises:
      ValueError: ``n < 2``.
    """
    if game.num_players < 2:
        raise ValueError(
            f"game: soft_delta_upper_bound needs n >= 2 players, got {game.num_players}"
        )
    expert = check_policy(game, expert, name="expert")
    dtype, gamma = game.dtype, game.discount
    tau = jnp.asarray(temperature, dtype)
    epsilon = jnp.maximum(jnp.asarray(epsilon, dtype), 0.0)
    kappa = 1.0 if zero_sum else 0.0
    d_e = state_occupancy(game, expert)
    own = soft_best_response_shift(
        game, expert, expert, temperature=tau, zero_sum=zero_sum, occupancy=d_e
    )
    d_min = jnp.maximum(jnp.min(d_e) - occupancy_zero_tol(dtype, gamma), 0.0)
    s = game.num_states
    bounds, omegas = [], []
    for i, a_i in enumerate(game.num_actions):
        c_i = int(np.prod([a for j, a in enumerate(game.num_actions) if j != i]))
        r = jnp.moveaxis(game.reward[i], i + 1, 1).reshape(s, a_i, c_i)  # [S, A_i, C]
        p = jnp.moveaxis(game.transition, i + 1, 1).reshape(s, a_i, c_i, s)  # [S, A_i, C, S]
        tv = 0.5 * jnp.sum(jnp.abs(p[:, :, :, None] - p[:, :, None]), axis=-1)  # [S, A_i, C, C]
        osc_v = (jnp.max(r) - jnp.min(r) + tau * np.log(a_i) + kappa * tau * np.log(c_i)) / (
            1.0 - gamma
        )
        osc_r = jnp.max(r, axis=-1) - jnp.min(r, axis=-1)  # [S, A_i]
        omega = jnp.max(osc_r + gamma * jnp.max(tv, axis=(-2, -1)) * osc_v)
        m = jnp.where(d_min > 0, jnp.minimum(2.0, epsilon / jnp.where(d_min > 0, d_min, 1.0)), 2.0)
        value_gap = (m * omega / 2.0 + kappa * tau * entropy_continuity(m, c_i)) / (1.0 - gamma)
        total = own.shifts[i] + omega * epsilon / (2.0 * tau) + gamma * value_gap / tau
        bounds.append(jnp.minimum(TRIVIAL_DELTA, total))
        omegas.append(omega)
    bound = functools.reduce(jnp.maximum, bounds)
    return SoftDeltaBound(bound, own.shifts, jnp.max(jnp.stack(omegas)), d_min, own.converged)


# ----------------------------------------------------------------------------------------------
# Concentrability.
# ----------------------------------------------------------------------------------------------


class Concentrability(NamedTuple):
    """Freihaut et al.'s concentrability of unilateral deviations (:func:`concentrability`).

    Attributes:
      coefficients: ``[n]`` ``C_i = max_s ratios[i, s]`` (``inf`` when a deviation reaches a
        state the expert never visits).
      ratios: ``[n, S]`` ``max_{pi_i} d^{pi_i, E_-i}(s) / d^E(s)``; ``0`` where both are zero.
      max_occupancy: ``[n, S]`` ``max_{pi_i} d^{pi_i, E_-i}(s)``.
      expert_occupancy: ``[S]`` ``d^E``.
      converged: ``[n]`` bool: every per-state MDP solve of the player converged.
    """

    coefficients: Array
    ratios: Array
    max_occupancy: Array
    expert_occupancy: Array
    converged: Array


@kernel(static=("method",), policies=("expert",))
def concentrability(
    game: MarkovGame,
    expert: Sequence[Array],
    *,
    zero_tol: float | Array | None = None,
    method: str = "policy_iteration",
) -> Concentrability:
    """Freihaut et al.'s concentrability coefficient of every player, exact (docs/theory.md §6).

    ``C_i = max_s max_{pi_i} d^{pi_i, E_-i}(s) / d^E(s)`` with the normalised occupancy
    ``d(s) = (1 - gamma) sum_t gamma^t Pr(s_t = s)``: how much a unilateral deviation of player
    ``i`` (the others keep playing the expert) can over-visit a state relative to the expert.
    For each target state ``s`` the maximum over ``pi_i`` is the optimal value at ``mu0`` of
    player ``i``'s induced MDP (:func:`jaxmail.induced_mdp`) with reward ``(1 - gamma) 1{x = s}``,
    attained by a deterministic policy; the ``S`` MDPs of a player are solved in one batch
    (:func:`jaxmail.solve_mdp`). ``C_i >= 1`` whenever the expert visits some state, and
    ``C_i = 1`` when player ``i`` cannot influence the state process.

    Conventions: occupancies at or below ``zero_tol`` count as zero; a state with
    ``d^E(s) = 0`` that a deviation reaches gives ``inf`` (no finite coefficient); a state
    nobody reaches gives ``0``.

    Args:
      game: one game.
      expert: ``n`` arrays ``[S, A_i]``.
      zero_tol: see above; default :func:`jaxmail.tolerances.occupancy_zero_tol`.
      method: MDP solver (policy iteration: exact up to its tolerance).

    Returns:
      A :class:`Concentrability` (``coefficients [n]``, ``ratios [n, S]``,
      ``max_occupancy [n, S]``, ``expert_occupancy [S]``, ``converged [n]``).
    """
    check_choice("method", method, METHODS)
    expert = check_policy(game, expert, name="expert")
    dtype = game.dtype
    gamma = game.discount
    zero_tol = occupancy_zero_tol(dtype, gamma) if zero_tol is None else zero_tol
    d_e = state_occupancy(game, expert)
    indicator = (1.0 - gamma) * jnp.eye(game.num_states, dtype=dtype)  # [target, S]
    dependency = d_e
    occupancy, converged = [], []
    for i, a in enumerate(game.num_actions):
        mdp = induced_mdp(game, expert, i)
        transition = _linalg.after(mdp.transition, dependency)  # one player after another

        def solve(reward, transition=transition, a=a):
            reward = jnp.broadcast_to(reward[:, None], (game.num_states, a))
            return solve_mdp(transition, reward, gamma, method=method)

        sol = jax.vmap(solve)(indicator)
        occupancy.append(sol.values @ game.initial)  # [target]
        converged.append(jnp.all(sol.converged))
        dependency = sol.values
    occupancy = jnp.stack(occupancy)
    visited = d_e > zero_tol
    reached = occupancy > zero_tol
    safe = jnp.where(visited, d_e, 1.0)
    ratios = jnp.where(visited, occupancy / safe, jnp.where(reached, jnp.inf, 0.0))
    return Concentrability(jnp.max(ratios, axis=1), ratios, occupancy, d_e, jnp.stack(converged))
