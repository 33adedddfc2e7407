"""Exact evaluation of a joint policy: values, Q-values and occupancy measures.

Shapes: ``n`` players, ``S`` states, ``A_i`` actions of player ``i``.

Everything here goes through ONE preparation of ``A = I - gamma P_pi`` per policy (an LU
factorisation by default, docs/design.md §2.1), where ``P_pi [S, S]`` and ``r_pi [n, S]`` are the
transition and rewards contracted with the joint policy in one pass over the tensors:

* values: ``A V_i = r_pi,i`` for all players at once (``n`` right-hand sides), solved for the
  centred rewards ``r_pi,i - c_i`` and shifted back (:func:`reward_offsets`; ``c = 0`` unless
  the rewards are far from zero compared with their spread), so that a large reward offset
  costs no precision;
* state occupancy: ``A^T d = (1 - gamma) mu0`` (the transposed solve with the same factors).

All functions take one game and one policy; batch with ``jax.vmap``. All are differentiable
(implicit differentiation of the linear solve).

Convergence: ``"lu"`` is exact (``converged`` means finite). ``"iterative"`` stops on a
relative rule that bounds the error (see :func:`evaluate`); :func:`evaluate` returns its flag,
and the shorthands (:func:`values`, :func:`state_occupancy`, ...) return NaN when it failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

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
    return _chain(game, check_policy(game, policy), game.reward)


def _chain(game: MarkovGame, policy: Sequence[Array], reward: Array) -> tuple[Array, Array]:
    """``(P_pi [S, S], r_pi [n, S])`` of ``reward [n, S, A_1..A_n]`` (the game's, or centred)."""
    p_pi = _contract.contract_all(game.transition, policy, trailing=1)
    r_pi = _contract.contract_all(jnp.moveaxis(reward, 0, -1), policy, trailing=1)
    return p_pi, r_pi.T


def reward_offsets(reward: Array, axis: int | tuple[int, ...]) -> Array:
    """Per-player reward offset ``c_i`` that the solves take out, held out of gradients.

    ``c_i`` is the midrange ``(max R_i + min R_i) / 2`` when it exceeds twice the half-spread
    ``h_i = (max R_i - min R_i) / 2`` (rewards far from zero compared with their spread), else
    0: centring then gains less than a factor 3 in precision, and the kernels compute exactly
    the uncentred formulas (in every direction of their arguments, gradients included).

    Every kernel that solves for values subtracts it: ``V_i = A^-1 (r_i - c_i) + c_i / (1 -
    gamma)``, exact since ``A 1 = (1 - gamma) 1`` for a stochastic ``P_pi`` (a validated game
    is stochastic up to rounding; the solve does not re-derive that rounding, which ``c_i``
    would magnify). Best responses and gains are unchanged by a per-player constant, so they
    are computed from the centred rewards alone, and their precision depends on the spread of
    the rewards, not their offset (float32 rewards ``1e6 + U(-1, 1)`` would otherwise give
    values of ``1e8`` whose rounding, about 8, swamps gains of a few units). ``R - c`` is exact
    when ``R`` and ``c`` are within a factor 2 of each other (Sterbenz), which is the
    large-offset case.

    Args:
      reward: ``[n, ...]`` (player first) or ``[..., n]``.
      axis: the axes to reduce (all but the player axis).

    Returns:
      ``c`` with the reduced axes kept (size 1), so that ``reward - c`` broadcasts.
    """
    reward = lax.stop_gradient(reward)
    high = jnp.max(reward, axis=axis, keepdims=True)
    low = jnp.min(reward, axis=axis, keepdims=True)
    mid, half = 0.5 * (high + low), 0.5 * (high - low)
    return jnp.where(jnp.abs(mid) > 2.0 * half, mid, jnp.zeros_like(mid))


def _centred_policy_matrices(game: MarkovGame, policy: Sequence[Array]):
    """``(P_pi [S, S], r_pi - c [n, S], c [n])``: :func:`policy_matrices` of the centred rewards.

    The offsets ``c`` (:func:`reward_offsets` of ``R``) are taken out BEFORE the contraction,
    whose rounding is relative to the size of what it sums.
    """
    c = reward_offsets(game.reward, axis=tuple(range(1, game.reward.ndim)))
    p_pi, r_pi = _chain(game, policy, game.reward - c)
    return p_pi, r_pi, c.reshape(-1)


def evaluate_chain(
    game, p_pi, r_pi, *, want_values, want_occupancy, solver, tol, max_iters, offset=None
):
    """Values ``[n, S]`` and occupancy ``[S]`` of a chain from ONE preparation of ``A = I -
    gamma P_pi`` (the building block of :func:`evaluate` and of the metrics, which pass the
    chain's matrices from :func:`policy_matrices`).

    ``r_pi`` is ``[n, S]``, already centred by ``offset [n]`` if given. The values are solved
    for ``r_pi - c'`` (``c'`` from :func:`reward_offsets`) and shifted back by ``c / (1 -
    gamma)`` with ``c = c' + offset``. ``tol`` is the iterative solver's relative tolerance
    (see ``_linalg.solve``), the same for both solves.
    """
    factors = _linalg.factorize(p_pi, game.discount, solver=solver)
    values = occupancy = None
    ok = jnp.asarray(True)
    if want_values:
        own = reward_offsets(r_pi, axis=1)  # [n, 1]
        c = own if offset is None else own + lax.stop_gradient(offset)[:, None]
        v, ok_v = _linalg.solve(factors, (r_pi - own).T, tol=tol, max_iters=max_iters)
        values, ok = v.T + c / (1.0 - game.discount), ok & ok_v
    if want_occupancy:
        rhs = (1.0 - game.discount) * game.initial
        if values is not None:  # never two linear-algebra calls side by side (see _linalg)
            rhs = _linalg.after(rhs, values)
        occupancy, ok_d = _linalg.solve(factors, rhs, transpose=True, tol=tol, max_iters=max_iters)
        ok = ok & ok_d
    return values, occupancy, ok


def _evaluate_policy(
    game: MarkovGame,
    policy: Sequence[Array],
    *,
    want_values: bool = True,
    want_occupancy: bool,
    solver: str,
    tol=None,
    max_iters: int = 100_000,
):
    """:func:`evaluate_chain` of ``policy`` from the centred rewards: ``(values, occupancy, ok)``.

    The one path from a policy to its solves (the shorthands take the iterative solver's
    defaults, ``tol=None`` and 100 000 steps). Without values the centred rewards are unused
    and compiled away.
    """
    _linalg.check_solver(solver)
    policy = check_policy(game, policy)
    p_pi, r_pi, c = _centred_policy_matrices(game, policy)
    return evaluate_chain(
        game,
        p_pi,
        r_pi,
        want_values=want_values,
        want_occupancy=want_occupancy,
        solver=solver,
        tol=tol,
        max_iters=max_iters,
        offset=c,
    )


def _flagged(x: Array, converged: Array, solver: str) -> Array:
    """``x``, or NaN everywhere when an iterative solve did not converge (the shorthands' flag)."""
    if solver == "lu":
        return x
    return jnp.where(converged, x, jnp.nan)


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

    Rewards far from zero compared with their spread are centred first
    (:func:`reward_offsets`) and the values shifted back by ``c_i / (1 - gamma)``, so a large
    reward offset costs no precision.

    Args:
      game: one game.
      policy: ``n`` arrays ``[S, A_i]``.
      solver: ``"lu"`` (exact, default) or ``"iterative"`` (fixed point, no factorisation;
        for large ``S``).
      tol: iterative solver only: relative tolerance. Each solve stops when its residual
        ``||b - A x_prev||`` is at most ``tol (1 - gamma) (||x|| + ||b||)`` (inf-norm for the
        values, 1-norm for the occupancy), which bounds the error by ``tol (||x|| + ||b||)``
        whatever the discount; default ``4 eps / (1 - gamma)`` (the conditioning of ``I -
        gamma P_pi`` in precision ``eps``). So in float32 at gamma = 0.9999 ``converged``
        promises an occupancy within 1e-2 in L1 (use float64 for better).
      max_iters: iterative solver only: cap on fixed-point steps per solve.

    Returns:
      An :class:`Evaluation` with ``values [n, S]``, ``expected_values [n]``, ``occupancy [S]``
      and ``converged`` (both solves met their rule; for ``"lu"``: finite).

    Example:
      >>> ev = jm.evaluate(game, jm.uniform_policy(game))
      >>> ev.values.shape, float(ev.occupancy.sum())
      ((2, 1), 1.0)
    """
    values, occupancy, ok = _evaluate_policy(
        game, policy, want_occupancy=True, solver=solver, tol=tol, max_iters=max_iters
    )
    return Evaluation(values, values @ game.initial, occupancy, ok)


@kernel(static=("solver",))
def values(game: MarkovGame, policy: Sequence[Array], *, solver: str = "lu") -> Array:
    """``[n, S]`` values ``V_i^pi(s)``: the solution of ``(I - gamma P_pi) V_i = r_pi,i``.

    With ``solver="iterative"``, a solve that does not meet its stopping rule (see
    :func:`evaluate`) within 100 000 steps gives NaN everywhere, so that it cannot pass for a
    result; :func:`evaluate` returns the last iterate with its ``converged`` flag instead and
    takes ``tol`` and ``max_iters``.
    """
    v, _, ok = _evaluate_policy(game, policy, want_occupancy=False, solver=solver)
    return _flagged(v, ok, solver)


@kernel(static=("solver",))
def expected_values(game: MarkovGame, policy: Sequence[Array], *, solver: str = "lu") -> Array:
    """``[n]`` values at the initial distribution, ``V_i^pi(mu0) = mu0 . V_i^pi``.

    NaN where the iterative solve did not converge (see :func:`values`).
    """
    return values(game, policy, solver=solver) @ game.initial


@kernel(static=("solver",))
def state_occupancy(game: MarkovGame, policy: Sequence[Array], *, solver: str = "lu") -> Array:
    """``[S]`` normalised discounted state occupancy.

    ``d^pi(s) = (1 - gamma) sum_t gamma^t Pr(s_t = s | s_0 ~ mu0)``, the solution of
    ``(I - gamma P_pi)^T d = (1 - gamma) mu0``. Non-negative, sums to 1, and satisfies the flow
    equation ``d = (1 - gamma) mu0 + gamma P_pi^T d``.

    NaN where the iterative solve did not converge (see :func:`values`).
    """
    _, d, ok = _evaluate_policy(game, policy, want_values=False, want_occupancy=True, solver=solver)
    return _flagged(d, ok, solver)


@kernel(static=("solver",))
def state_action_occupancy(
    game: MarkovGame, policy: Sequence[Array], *, solver: str = "lu"
) -> tuple[Array, ...]:
    """Per-player state-action occupancy ``rho_i(s, a_i) = d^pi(s) pi_i(a_i|s)``, ``[S, A_i]``.

    NaN where the iterative solve did not converge (see :func:`values`).
    """
    policy = check_policy(game, policy)
    d = state_occupancy(game, policy, solver=solver)
    return tuple(d[:, None] * p for p in policy)


@kernel(static=("solver",))
def joint_state_action_occupancy(
    game: MarkovGame, policy: Sequence[Array], *, solver: str = "lu"
) -> Array:
    """Joint state-action occupancy ``rho(s, a) = d^pi(s) pi(a|s)``, ``[S, A_1, ..., A_n]``.

    Its size is ``S * prod_i A_i``: compute it on request only.

    NaN where the iterative solve did not converge (see :func:`values`).
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

    NaN where the iterative solve did not converge (see :func:`values`).
    """
    v = values(game, policy, solver=solver)
    return jnp.moveaxis(_joint_q(game, v), -1, 0)


@kernel(static=("solver",))
def q_values(game: MarkovGame, policy: Sequence[Array], *, solver: str = "lu") -> tuple[Array, ...]:
    """Each player's Q-values with the others marginalised, ``n`` arrays ``[S, A_i]``.

    ``Q_i^pi(s, a_i) = sum_{a_-i} pi_-i(a_-i|s) Q_i^pi(s, a_i, a_-i)``, i.e. the Q-function of
    player ``i``'s induced MDP against ``pi_-i`` evaluated at ``V_i^pi``. Then
    ``V_i^pi(s) = sum_a pi_i(a|s) Q_i^pi(s, a)``.

    NaN where the iterative solve did not converge (see :func:`values`).
    """
    policy = check_policy(game, policy)
    v = values(game, policy, solver=solver)
    per_player = _contract.induced_tensors(_joint_q(game, v), policy, trailing=1)
    return tuple(q[..., i] for i, q in enumerate(per_player))
