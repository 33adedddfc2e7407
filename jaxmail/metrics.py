"""The paper's error metrics between a policy and an expert (docs/theory.md §2).

Shapes: ``n`` players, ``S`` states, ``A_i`` actions of player ``i``. Every metric takes one
game and two policies; batch with ``jax.vmap``. The expert is passed by keyword wherever
swapping the two changes the result (``bc_error``, ``value_gap``, ``imitation_report``). All are
differentiable in the policies (the L1 norms have subgradients at ties).

:func:`imitation_report` computes every metric of one policy at once, plus its NashGap and BR
shift, from one evaluation per policy and one set of best responses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxmail import _linalg
from jaxmail._api import kernel
from jaxmail.evaluation import evaluate_chain, policy_matrices, reward_offsets
from jaxmail.game import MarkovGame
from jaxmail.policy import check_policy, joint_policy, policy_distance
from jaxmail.responses import NashGap, best_responses
from jaxmail.tolerances import best_response_set_tol

Array = jax.Array


def _evaluations(game, first, second, *, want_values, want_occupancy):
    """``((V, d, ok), (V, d, ok))`` of two policies, the second chain solved after the first
    (never two solves side by side); ``V [n, S]`` and ``d [S]`` are None where not wanted."""
    out = []
    dep = None
    for pi in (first, second):
        p_pi, r_pi = policy_matrices(game, pi)
        if dep is not None:
            p_pi = _linalg.after(p_pi, dep)
        v, d, ok = evaluate_chain(
            game,
            p_pi,
            r_pi,
            want_values=want_values,
            want_occupancy=want_occupancy,
            solver="lu",
            tol=None,
            max_iters=0,
        )
        dep = d if d is not None else v
        out.append((v, d, ok))
    return out


@kernel(static=(), policies=("policy", "expert"))
def value_gap(game: MarkovGame, policy: Sequence[Array], *, expert: Sequence[Array]) -> Array:
    """``max_i (V_i^expert(mu0) - V_i^pi(mu0))``, signed (negative when every player gains)."""
    policy = check_policy(game, policy)
    expert = check_policy(game, expert, name="expert")
    (v, _, _), (v_e, _, _) = _evaluations(
        game, policy, expert, want_values=True, want_occupancy=False
    )
    return jnp.max((v_e - v) @ game.initial)


@kernel(static=("per_player",), policies=("policy", "expert"))
def bc_error(
    game: MarkovGame,
    policy: Sequence[Array],
    *,
    expert: Sequence[Array],
    per_player: bool = False,
) -> Array:
    """eps_BC: ``max_i E_{s ~ d^expert} ||pi_i(.|s) - expert_i(.|s)||_1`` (L1 = 2 TV).

    Measured under the EXPERT's state occupancy. With ``per_player=True`` returns the ``[n]``
    vector before the max.
    """
    policy = check_policy(game, policy)
    expert = check_policy(game, expert, name="expert")
    p_e, r_e = policy_matrices(game, expert)
    _, d_e, _ = evaluate_chain(
        game,
        p_e,
        r_e,
        want_values=False,
        want_occupancy=True,
        solver="lu",
        tol=None,
        max_iters=0,
    )
    errors = policy_distance(policy, expert) @ d_e
    return errors if per_player else jnp.max(errors)


@kernel(static=(), policies=("policy", "expert"))
def state_occupancy_error(
    game: MarkovGame, policy: Sequence[Array], expert: Sequence[Array]
) -> Array:
    """eps_mu: ``||d^pi - d^expert||_1`` over states."""
    policy = check_policy(game, policy)
    expert = check_policy(game, expert, name="expert")
    (_, d, _), (_, d_e, _) = _evaluations(
        game, policy, expert, want_values=False, want_occupancy=True
    )
    return jnp.sum(jnp.abs(d - d_e))


@kernel(static=(), policies=("policy", "expert"))
def occupancy_error(game: MarkovGame, policy: Sequence[Array], expert: Sequence[Array]) -> Array:
    """eps_rho: ``||rho^pi - rho^expert||_1`` over states and JOINT actions.

    Forms the joint measures ``[S, A_1, ..., A_n]`` (size ``S prod_i A_i``).
    """
    policy = check_policy(game, policy)
    expert = check_policy(game, expert, name="expert")
    (_, d, _), (_, d_e, _) = _evaluations(
        game, policy, expert, want_values=False, want_occupancy=True
    )
    jp, je = joint_policy(policy), joint_policy(expert)
    shape = (-1,) + (1,) * (jp.ndim - 1)
    return jnp.sum(jnp.abs(d.reshape(shape) * jp - d_e.reshape(shape) * je))


class ImitationReport(NamedTuple):
    """Every imitation metric of one policy against an expert (:func:`imitation_report`).

    Attributes:
      bc_error: ``[]`` eps_BC, ``max_i bc_errors[i]``.
      bc_errors: ``[n]`` ``E_{s ~ d^E} ||pi_i(.|s) - E_i(.|s)||_1`` for every player.
      state_occupancy_error: ``[]`` eps_mu, ``||d^pi - d^E||_1`` over states.
      occupancy_error: ``[]`` eps_rho, ``||rho^pi - rho^E||_1`` over states and JOINT actions.
      value_gap: ``[]`` ``max_i (V_i^E(mu0) - V_i^pi(mu0))``, signed.
      nash_gap: the policy's :class:`~jaxmail.NashGap` (``gains [n]``, ``nash_gap []``,
        ``nash_conv []``, ``policy_values [n]``, ``best_response_values [n]``, ``converged [n]``).
      br_shift: ``[n]`` every player's BR shift, ``max over best responses b_i to pi_-i of
        E_{s ~ d^E} ||b_i(.|s) - E_i(.|s)||_1``.
      converged: ``[]`` bool: every best response converged and both evaluations are finite.
    """

    bc_error: Array
    bc_errors: Array
    state_occupancy_error: Array
    occupancy_error: Array
    value_gap: Array
    nash_gap: NashGap
    br_shift: Array
    converged: Array


def _centred(game: MarkovGame) -> tuple[MarkovGame, Array]:
    """``(game with rewards R_i - c_i, c [n])``, ``c`` from ``evaluation.reward_offsets``.

    Rebuilt from the leaves (no re-validation). Best responses, gains and best-response sets
    are the same in both games; the centred one keeps their precision when the rewards carry
    a large offset.
    """
    c = reward_offsets(game.reward, axis=tuple(range(1, game.reward.ndim)))
    centred = jax.tree_util.tree_map(lambda x: x - c if x is game.reward else x, game)
    return centred, c.reshape(-1)


@kernel(static=(), policies=("policy", "expert"))
def imitation_report(
    game: MarkovGame,
    policy: Sequence[Array],
    *,
    expert: Sequence[Array],
    set_tol: float | Array | None = None,
) -> ImitationReport:
    """eps_BC, eps_mu, eps_rho, the value gap, the NashGap and the BR shift of ``policy``.

    The same numbers as :func:`bc_error`, :func:`state_occupancy_error`,
    :func:`occupancy_error`, :func:`value_gap`, :func:`jaxmail.nash_gap` and
    :func:`jaxmail.best_response_shift`, from ONE evaluation of each policy and ONE set of best
    responses (:func:`jaxmail.best_responses`), where the separate functions together
    factorise the expert's chain five times and the policy's three times, and solve the best
    responses twice:

    * the expert's chain ``A_E = I - gamma P_E`` gives ``V^E [n, S]`` and ``d^E [S]``;
    * the policy's chain gives ``V^pi [n, S]`` and ``d^pi [S]``;
    * every player's best response to ``pi_-i`` (rewards centred per player, as
      :func:`jaxmail.nash_gap`) gives ``g_i = V_i^{*, pi_-i}(mu0) - V_i^pi(mu0)`` and, with the
      near-optimal actions ``Q_i^*(s, a) >= V_i^*(s) - set_tol``, the farthest best response
      ``b_i`` (least expert mass in every state), so ``shift_i = d^E . ||b_i - E_i||_1``.
      The best-response solver starts from ``V^pi`` of the centred rewards, which it solves
      itself (as :func:`jaxmail.nash_gap` does), so that the NashGap is the same number as
      :func:`jaxmail.nash_gap`'s, also when the rewards carry a large offset.

    Then ``bc_errors_i = d^E . ||pi_i - E_i||_1``, ``eps_mu = ||d^pi - d^E||_1``,
    ``eps_rho = sum_{s, a} |d^pi(s) pi(a|s) - d^E(s) E(a|s)|`` (the joint measures, size
    ``S prod_i A_i``) and ``value_gap = max_i (V^E - V^pi)_i . mu0``. The solves run one after
    the other (expert, policy, best responses; jaxlib 0.10 CPU deadlock, see ``_linalg``), so
    a caller chains nothing inside; to start another solve after the report, make it depend on
    ``report.nash_gap.nash_gap``.

    Args:
      game: one game.
      policy: ``n`` arrays ``[S, A_i]``, the learner ``pi``.
      expert: ``n`` arrays ``[S, A_i]``, the expert ``E`` (keyword: swapping the two changes
        eps_BC, the value gap, the NashGap and the BR shift).
      set_tol: the best-response set's tolerance (array leaf); default
        :func:`jaxmail.tolerances.best_response_set_tol` of the centred rewards, as
        :func:`jaxmail.best_response_shift`.

    Returns:
      An :class:`ImitationReport`.

    Example:
      >>> report = jm.metrics.imitation_report(game, learner, expert=expert)
      >>> float(report.bc_error), float(report.nash_gap.nash_gap), report.br_shift.shape
    """
    policy = check_policy(game, policy)
    expert = check_policy(game, expert, name="expert")
    (v_e, d_e, ok_e), (v, d, ok) = _evaluations(
        game, expert, policy, want_values=True, want_occupancy=True
    )
    game_c, c = _centred(game)
    responses, v_c = best_responses(game_c, _linalg.after_tree(policy, d))
    shift = c / (1.0 - game.discount)
    best = jnp.stack([br.values for br in responses]) @ game.initial
    values = v_c @ game.initial
    gains = best - values
    br_converged = jnp.stack([br.converged for br in responses])
    gap = NashGap(gains, jnp.max(gains), jnp.sum(gains), values + shift, best + shift, br_converged)
    if set_tol is None:
        set_tol = best_response_set_tol(game.dtype, game.discount, jnp.max(jnp.abs(game_c.reward)))
    shifts = []
    for br, e in zip(responses, expert):
        q = br.q_values
        near = q >= jnp.max(q, axis=-1, keepdims=True) - set_tol
        far = jax.nn.one_hot(
            jnp.argmin(jnp.where(near, e, jnp.inf), axis=-1), e.shape[-1], dtype=game.dtype
        )
        shifts.append(d_e @ jnp.sum(jnp.abs(far - e), axis=-1))
    bc_errors = policy_distance(policy, expert) @ d_e
    jp, je = joint_policy(policy), joint_policy(expert)
    shape = (-1,) + (1,) * (jp.ndim - 1)
    return ImitationReport(
        bc_error=jnp.max(bc_errors),
        bc_errors=bc_errors,
        state_occupancy_error=jnp.sum(jnp.abs(d - d_e)),
        occupancy_error=jnp.sum(jnp.abs(d.reshape(shape) * jp - d_e.reshape(shape) * je)),
        value_gap=jnp.max((v_e - v) @ game.initial),
        nash_gap=gap,
        br_shift=jnp.stack(shifts),
        converged=jnp.all(br_converged) & ok_e & ok,
    )
