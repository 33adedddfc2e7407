"""Exact evaluation of a joint policy: values, Q-values and occupancy measures.

Shapes: ``n`` players, ``S`` states, ``A_i`` actions of player ``i``.

Everything here goes through ONE preparation of ``A = I - gamma P_pi`` per policy (an LU
factorisation by default, DESIGN.md §2.1), where ``P_pi [S, S]`` and ``r_pi [n, S]`` are the
transition and rewards contracted with the joint policy in one pass over the tensors:

* values: ``A V_i = r_pi,i`` for all players at once (``n`` right-hand sides);
* state occupancy: ``A^T d = (1 - gamma) mu0`` (the transposed solve with the same factors).

All functions take one game and one policy; batch with ``jax.vmap``. All are differentiable
(implicit differentiation of the linear solve).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxmail import _contract, _linalg
from jaxmail._api import kernel
from jaxmail.game import MarkovGame
from jaxmail.policy import check_policy, joint_policy

Array = jax.Array


class Evaluation(NamedTuple):
    """Exact evaluation of a joint policy.

    Attributes:
      values: ``[n, S]``, ``V_i^pi(s) = E[sum_t gamma^t R_i(s_t, a_t) | s_0 = s]``.
      expected_values: ``[n]``, ``V_i^pi(mu0) = mu0 . V_i^pi``.
      occupancy: ``[S]``, ``d^pi(s) = (1 - gamma) sum_t gamma^t Pr(s_t = s)`` (sums to 1).
      converged: ``[]`` bool; always true for the exact ``"lu"`` solver on finite input.
    """

    values: Array
    expected_values: Array
    occupancy: Array
    converged: Array


@kernel(static=())
def policy_matrices(game: MarkovGame, policy: Sequence[Array]) -> tuple[Array, Array]:
    """The game under a joint policy, as a Markov chain with rewards.

    ``P_pi[s, s'] = sum_a pi(a|s) P[s, a, s']`` and ``r_pi[i, s] = sum_a pi(a|s) R[i, s, a]``.

    Args:
      game: one game.
      policy: ``n`` arrays ``[S, A_i]``.

    Returns:
      ``(P_pi [S, S], r_pi [n, S])``.
    """
    policy = check_policy(game, policy)
    p_pi = _contract.contract_all(game.transition, policy, trailing=1)
    r_pi = _contract.contract_all(jnp.moveaxis(game.reward, 0, -1), policy, trailing=1)
    return p_pi, r_pi.T


def _evaluate(game, p_pi, r_pi, *, want_values, want_occupancy, solver, tol, max_iters):
    factors = _linalg.factorize(p_pi, game.discount, solver=solver)
    values = occupancy = None
    ok = jnp.asarray(True)
    if want_values:
        v, ok_v = _linalg.solve(factors, r_pi.T, tol=tol, max_iters=max_iters)
        values, ok = v.T, ok & ok_v
    if want_occupancy:
        rhs = (1.0 - game.discount) * game.initial
        if values is not None:  # never two linear-algebra calls side by side (see _linalg)
            rhs = _linalg.after(rhs, values)
        # The occupancy solves with tol * (1 - gamma); its default is that of a unit reward scale
        # (64 eps), not _linalg's default for this right-hand side: (1 - gamma) mu0 is small, and
        # the scale clamp there would loosen the tolerance by 1 / (1 - gamma).
        occ_tol = _linalg.default_tol(rhs.dtype, game.discount, 1.0) if tol is None else tol
        occupancy, ok_d = _linalg.solve(
            factors,
            rhs,
            transpose=True,
            tol=occ_tol * (1 - game.discount),
            max_iters=max_iters,
        )
        ok = ok & ok_d
    return values, occupancy, ok


@kernel(static=("solver", "max_iters"))
def evaluate(
    game: MarkovGame,
    policy: Sequence[Array],
    *,
    solver: str = "lu",
    tol: float | Array | None = None,
    max_iters: int = 100_000,
) -> Evaluation:
    """Values of every player and the state occupancy, from one factorisation.

    Args:
      game: one game.
      policy: ``n`` arrays ``[S, A_i]``.
      solver: ``"lu"`` (exact, default) or ``"iterative"`` (fixed point, no factorisation;
        for large ``S``).
      tol: iterative solver only: absolute tolerance on the residual of the value solve
        (the occupancy solve uses ``tol * (1 - gamma)``); default ``64 eps max(1, max|r|) /
        (1-gamma)`` for the values and ``64 eps`` for the occupancy.
      max_iters: iterative solver only: cap on fixed-point steps.

    Returns:
      An :class:`Evaluation` with ``values [n, S]``, ``expected_values [n]``, ``occupancy [S]``
      and ``converged``.

    Example:
      >>> ev = jm.evaluate(game, jm.uniform_policy(game))
      >>> ev.values.shape, float(ev.occupancy.sum())
      ((2, 1), 1.0)
    """
    _linalg.check_solver(solver)
    p_pi, r_pi = policy_matrices(game, policy)
    values, occupancy, ok = _evaluate(
        game,
        p_pi,
        r_pi,
        want_values=True,
        want_occupancy=True,
        solver=solver,
        tol=tol,
        max_iters=max_iters,
    )
    return Evaluation(values, values @ game.initial, occupancy, ok)


@kernel(static=("solver",))
def values(game: MarkovGame, policy: Sequence[Array], *, solver: str = "lu") -> Array:
    """``[n, S]`` values ``V_i^pi(s)``: the solution of ``(I - gamma P_pi) V_i = r_pi,i``.

    With ``solver="iterative"`` this shorthand does not report convergence: use
    :func:`evaluate`, whose ``converged`` field does, and which takes ``tol`` and ``max_iters``.
    """
    _linalg.check_solver(solver)
    p_pi, r_pi = policy_matrices(game, policy)
    v, _, _ = _evaluate(
        game,
        p_pi,
        r_pi,
        want_values=True,
        want_occupancy=False,
        solver=solver,
        tol=None,
        max_iters=100_000,
    )
    return v


@kernel(static=("solver",))
def expected_values(game: MarkovGame, policy: Sequence[Array], *, solver: str = "lu") -> Array:
    """``[n]`` values at the initial distribution, ``V_i^pi(mu0) = mu0 . V_i^pi``."""
    return values(game, policy, solver=solver) @ game.initial


@kernel(static=("solver",))
def state_occupancy(game: MarkovGame, policy: Sequence[Array], *, solver: str = "lu") -> Array:
    """``[S]`` normalised discounted state occupancy.

    ``d^pi(s) = (1 - gamma) sum_t gamma^t Pr(s_t = s | s_0 ~ mu0)``, the solution of
    ``(I - gamma P_pi)^T d = (1 - gamma) mu0``. Non-negative, sums to 1, and satisfies the flow
    equation ``d = (1 - gamma) mu0 + gamma P_pi^T d``.
    """
    _linalg.check_solver(solver)
    p_pi, r_pi = policy_matrices(game, policy)
    _, d, _ = _evaluate(
        game,
        p_pi,
        r_pi,
        want_values=False,
        want_occupancy=True,
        solver=solver,
        tol=None,
        max_iters=100_000,
    )
    return d


@kernel(static=("solver",))
def state_action_occupancy(
    game: MarkovGame, policy: Sequence[Array], *, solver: str = "lu"
) -> tuple[Array, ...]:
    """Per-player state-action occupancy ``rho_i(s, a_i) = d^pi(s) pi_i(a_i|s)``, ``[S, A_i]``."""
    policy = check_policy(game, policy)
    d = state_occupancy(game, policy, solver=solver)
    return tuple(d[:, None] * p for p in policy)


@kernel(static=("solver",))
def joint_state_action_occupancy(
    game: MarkovGame, policy: Sequence[Array], *, solver: str = "lu"
) -> Array:
    """Joint state-action occupancy ``rho(s, a) = d^pi(s) pi(a|s)``, ``[S, A_1, ..., A_n]``.

    Its size is ``S * prod_i A_i``: compute it on request only.
    """
    policy = check_policy(game, policy)
    d = state_occupancy(game, policy, solver=solver)
    jp = joint_policy(policy)
    return jp * d.reshape((-1,) + (1,) * (jp.ndim - 1))


def _joint_q(game: MarkovGame, v: Array) -> Array:
    """``[S, A_1..A_n, n]``: ``R[i, s, a] + gamma sum_s' P[s, a, s'] V_i(s')``."""
    continuation = jnp.tensordot(game.transition, v.T, axes=1)  # one pass over P: [S, A.., n]
    return jnp.moveaxis(game.reward, 0, -1) + game.discount * continuation


@kernel(static=("solver",))
def joint_q_values(game: MarkovGame, policy: Sequence[Array], *, solver: str = "lu") -> Array:
    """``[n, S, A_1, ..., A_n]`` joint-action Q-values.

    ``Q_i^pi(s, a) = R_i(s, a) + gamma sum_s' P(s' | s, a) V_i^pi(s')``.
    """
    v = values(game, policy, solver=solver)
    return jnp.moveaxis(_joint_q(game, v), -1, 0)


@kernel(static=("solver",))
def q_values(game: MarkovGame, policy: Sequence[Array], *, solver: str = "lu") -> tuple[Array, ...]:
    """Each player's Q-values with the others marginalised, ``n`` arrays ``[S, A_i]``.

    ``Q_i^pi(s, a_i) = sum_{a_-i} pi_-i(a_-i|s) Q_i^pi(s, a_i, a_-i)``, i.e. the Q-function of
    player ``i``'s induced MDP against ``pi_-i`` evaluated at ``V_i^pi``. Then
    ``V_i^pi(s) = sum_a pi_i(a|s) Q_i^pi(s, a)``.
    """
    policy = check_policy(game, policy)
    v = values(game, policy, solver=solver)
    per_player = _contract.induced_tensors(_joint_q(game, v), policy, trailing=1)
    return tuple(q[..., i] for i, q in enumerate(per_player))
