"""Soft best responses of the entropy-regularised game, and their reward scale.

Shapes: ``n`` players, ``S`` states, ``A_i`` actions of player ``i``.

The regularised game at temperature ``tau > 0`` (the conventions of
:mod:`jaxmail.equilibria`): player ``i``'s stage payoff under a joint policy ``pi`` is
``R_i(s, a) + tau H(pi_i(.|s))`` (``"own"``) or, with ``zero_sum=True``,
``R_i(s, a) + tau H(pi_i(.|s)) - tau H(pi_-i(.|s))`` (``H(pi_-i) = sum_{j != i} H(pi_j)``, the
entropy of the others' product policy). Player ``i``'s soft best response to ``pi_-i`` is
unique: ``softmax(Q_i / tau)`` with

    Q_i(s, a_i) = r_i(s, a_i) - kappa tau H(pi_-i(.|s)) + gamma sum_s' P_i(s' | s, a_i) V_i(s'),
    V_i(s) = tau log sum_a exp(Q_i(s, a) / tau),

``(P_i, r_i)`` player ``i``'s induced MDP against ``pi_-i`` and ``kappa = 1`` for
``zero_sum`` (else 0). The soft Bellman operator is a ``gamma``-contraction in the sup norm.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.special import entr, logsumexp

from jaxmail import _contract, _linalg
from jaxmail._args import check_count, check_scalar
from jaxmail.evaluation import state_occupancy
from jaxmail.game import MarkovGame
from jaxmail.policy import check_policy
from jaxmail.responses import NashGap, induced_mdps, masked, padded, padded_action_mask
from jaxmail.tolerances import value_rounding_tol, value_tol

Array = jax.Array

SOFT_MAX_ITERS = 1000  # soft value iteration reaches its rounding floor long before


def entropy(p: Array) -> Array:
    """``H(p) = -sum_a p(a) log p(a)`` over the last axis (``0 log 0 = 0``)."""
    return jnp.sum(entr(p), axis=-1)


def regularised_reward_bound(
    game: MarkovGame, temperature: Array, *, zero_sum: bool = False
) -> Array:
    """``max |stage payoff|`` of the regularised game: ``r_max + tau max_i log A_i`` (own), or
    ``r_max + tau max_i max(log A_i, log prod_{j != i} A_j)`` (``zero_sum``).

    The payoff ``R_i + tau H(pi_i) [- tau H(pi_-i)]`` lies in
    ``[-r_max - kappa tau log prod_{j != i} A_j, r_max + tau log A_i]``, since ``0 <= H(p) <=
    log(number of actions)``. It is the ``reward_bound`` of the regularised game's bounds, and
    every regularised value lies in ``[-bound, bound] / (1 - gamma)``.

    Args:
      game: one game (``r_max = max |R|``).
      temperature: ``tau >= 0`` (array leaf).
      zero_sum: the ``"zero_sum"`` convention.

    Returns:
      ``[]`` the bound.
    """
    sizes = game.num_actions
    logs = [np.log(a) for a in sizes]
    if zero_sum:
        total = float(np.sum(logs))
        logs = [max(la, total - la) for la in logs]
    r_max = jnp.max(jnp.abs(game.reward))
    return r_max + jnp.asarray(temperature) * max(logs)


class SoftShift(NamedTuple):
    """Soft best responses and their distance from a reference (:func:`soft_best_response_shift`).

    Attributes:
      shifts: ``[n]`` ``E_{s ~ d^E} ||softBR_i(pi_-i)(.|s) - E_i(.|s)||_1``.
      policy: ``n`` arrays ``[S, A_i]``, the soft best responses.
      values: ``[n, S]`` their soft values ``V_i``.
      converged: ``[]`` bool: the value error bound is below the tolerance for every player.
    """

    shifts: Array
    policy: tuple[Array, ...]
    values: Array
    converged: Array


def soft_best_response_shift(
    game: MarkovGame,
    policy: Sequence[Array],
    reference: Sequence[Array],
    *,
    temperature: Array,
    zero_sum: bool = False,
    occupancy: Array | None = None,
) -> SoftShift:
    """Every player's SOFT best response to ``pi_-i`` and its L1 distance from ``reference``.

    The soft best response (module docstring) by soft value iteration on every player's
    induced MDP at once (action axes padded to ``max_i A_i``; no linear solves), stopped when
    the value error bound ``gamma / (1 - gamma) ||T V - V||_inf`` is at most
    ``64 eps scale / (1 - gamma)`` (``scale = max(1, max|r| + tau log max_i A_i)``), when the
    residual stops shrinking (the floating-point floor), or after ``SOFT_MAX_ITERS`` steps.
    The shift of player ``i`` is ``d^E . ||softBR_i(.|s) - E_i(.|s)||_1`` with ``d^E`` the
    reference's state occupancy; at a regularised equilibrium ``E`` it is 0 against ``E``.

    Args:
      game: one game.
      policy: ``n`` arrays ``[S, A_i]``, the joint policy ``pi`` responded to.
      reference: ``n`` arrays ``[S, A_i]``, the expert ``E``.
      temperature: ``tau > 0``, ``[]`` (array leaf).
      zero_sum: the ``"zero_sum"`` convention (state term ``-tau H(pi_-i)``).
      occupancy: ``[S]`` ``d^E`` if already computed (default: solved here).

    Returns:
      A :class:`SoftShift` (``shifts [n]``, ``policy``, ``values [n, S]``, ``converged []``).
    """
    policy = check_policy(game, policy)
    reference = check_policy(game, reference, name="reference")
    if occupancy is None:
        occupancy = state_occupancy(game, reference)
    gamma, dtype = game.discount, game.dtype
    temperature = jnp.asarray(temperature, dtype)
    a_max, s = max(game.num_actions), game.num_states
    entropies = [entropy(p) for p in policy]  # n x [S]
    total = sum(entropies)
    mdps = induced_mdps(game, policy)
    kappa = 1.0 if zero_sum else 0.0
    transition = padded([m.transition for m in mdps], 1, a_max)  # [n, S, A, S]
    reward = padded(
        [m.reward - kappa * temperature * (total - h)[:, None] for m, h in zip(mdps, entropies)],
        1,
        a_max,
    )  # [n, S, A]
    mask = padded_action_mask(game)  # [n, S, A]
    scale = jnp.max(jnp.abs(reward)) + temperature * np.log(a_max)
    tol = value_rounding_tol(dtype, gamma, scale)
    ratio = gamma / (1.0 - gamma)

    def bellman(v):  # (logits Q / tau [n, S, A], T v [n, S])
        return soft_bellman(transition, reward, mask, v, gamma, temperature)

    def cond(carry):
        _, step, previous, k = carry
        going = jnp.any(ratio * step > tol) & jnp.any(step < previous) & (k < SOFT_MAX_ITERS)
        return (k < 2) | going

    def body(carry):
        v, step, _, k = carry
        _, new = bellman(v)
        return new, jnp.max(jnp.abs(new - v), axis=-1), step, k + 1

    n = game.num_players
    inf = jnp.full((n,), jnp.inf, dtype)
    init = (jnp.zeros((n, s), dtype), inf, inf, jnp.asarray(0, jnp.int32))
    v, step, _, _ = lax.while_loop(cond, body, init)
    soft = jax.nn.softmax(bellman(v)[0], axis=-1)
    responses = tuple(soft[i, :, : e.shape[-1]] for i, e in enumerate(reference))
    shifts = jnp.stack(
        [occupancy @ jnp.sum(jnp.abs(b - e), axis=-1) for b, e in zip(responses, reference)]
    )
    return SoftShift(shifts, responses, v, jnp.all(ratio * step <= tol))


# ----------------------------------------------------------------------------------------------
# The regularised NashGap: soft policy iteration on every player's induced MDP.
# ----------------------------------------------------------------------------------------------


def log_normalize(z: Array) -> Array:
    """``z - logsumexp(z)`` over the last axis: log-probabilities of ``softmax(z)``."""
    return z - logsumexp(z, axis=-1, keepdims=True)


def soft_bellman(p, r, mask, v, discount, tau):
    """``q = r + gamma P v`` ``[n, S, A]`` and ``T v = tau logsumexp(q / tau)`` ``[n, S]``."""
    q = r + discount * jnp.einsum("nsat,nt->nsa", p, v)
    z = masked(q / tau, mask)
    return z, tau * logsumexp(z, axis=-1)


def soft_evaluate(p, r, pi, discount, tau):
    """Regularised values of per-player policies ``pi [n, S, A]`` in their induced MDPs.

    ``(I - gamma P_pi) v = r_pi + tau H(pi)``, one batched factorisation for all ``n``.
    """
    p_pi = jnp.einsum("nsa,nsat->nst", pi, p)
    r_pi = jnp.sum(pi * r, axis=-1) + tau * entropy(pi)

    def one(m, b):
        return _linalg.solve(_linalg.factorize(m, discount), b)[0]

    return jax.vmap(one)(p_pi, r_pi)


def soft_nash_gap(
    game: MarkovGame,
    policy: Sequence[Array],
    *,
    temperature: float | Array,
    zero_sum: bool = False,
    tol: float | Array | None = None,
    max_iters: int = 100,
) -> NashGap:
    """Best-response gains in the entropy-regularised game (module docstring).

    Player ``i``'s regularised value of ``pi`` solves
    ``(I - gamma P_pi) V_i = r_pi,i + tau H(pi_i) [- tau H(pi_-i) if zero_sum]``. Its soft-optimal
    value against ``pi_-i`` is found by soft policy iteration on the induced MDP
    ``(P_i, r_i [- tau H(pi_-i)])``, started from ``pi_i`` itself:
    ``pi^{k+1} = softmax(Q^k / tau)``, ``Q^k = r_i + gamma P_i V^k``, with ``V^k`` the exact
    regularised value of ``pi^k`` (one batched LU solve for all players per step). With
    ``T V = tau log sum_a exp((r_i + gamma P_i V) / tau)``, ``V^k <= T V^k <= V^*`` and
    ``V^* - T V^k <= gamma / (1 - gamma) ||T V^k - V^k||_inf``: the reported best-response value
    ``mu0 . T V^k`` is a lower bound, and it is within ``tol`` of the exact one once
    ``gamma / (1 - gamma) ||T V^k - V^k||_inf <= tol`` (``converged``). The iteration stops
    there, or when the residual stops shrinking (the floating-point floor; soft policy
    iteration converges at least at rate ``gamma`` and quadratically near the end, so this
    takes a handful of steps), or after ``max_iters`` steps.

    Args:
      game: one game.
      policy: ``n`` arrays ``[S, A_i]``.
      temperature: ``tau > 0``, scalar (array leaf).
      zero_sum: the ``"zero_sum"`` convention (two players): each player's payoff also carries
        ``-tau H(pi_-i)``, the game :func:`soft_nash_value_iteration` solves. Default: the
        ``"own"`` convention, the game :func:`logit_qre` solves.
      tol: wanted accuracy of the best-response values (array leaf); default
        ``64 eps max(1, max|R| + (1 or 2) tau log max_i A_i) / (1 - gamma)``.
      max_iters: cap on soft policy iteration steps.

    Returns:
      A :class:`~jaxmail.NashGap`: ``gains [n]`` (``g_i^tau``), ``nash_gap``, ``nash_conv``,
      ``policy_values [n]`` (``V_i^{pi,tau}(mu0)``), ``best_response_values [n]``
      (``V_i^{*,tau}(mu0)``, a lower bound) and ``converged [n]`` (accuracy ``tol`` proven).

    Raises:
      ValueError: ``temperature <= 0`` (when concrete), ``zero_sum`` with ``n != 2``, a bad
        policy, ``max_iters < 1``.
    """
    policy = check_policy(game, policy)
    tau = check_scalar("temperature", temperature, game.dtype, positive=True)
    max_iters = check_count("max_iters", max_iters)
    if zero_sum and game.num_players != 2:
        raise ValueError(
            f"zero_sum: the zero-sum convention needs 2 players, got {game.num_players}"
        )
    tol = None if tol is None else check_scalar("tol", tol, game.dtype, positive=False)
    weight = jnp.asarray(1.0 if zero_sum else 0.0, game.dtype)
    dependency = jnp.zeros((), game.dtype)  # nothing to wait for
    return soft_nash_gap_after(game, policy, dependency, tau, tol, weight, max_iters=max_iters)


@functools.partial(jax.jit, static_argnames=("max_iters",))
def soft_nash_gap_after(game, policy, dependency, tau, tol, opponent_weight, *, max_iters):
    """``opponent_weight``: 0 (``"own"``) or 1 (``"zero_sum"``), an array leaf, so that both
    conventions share one compiled program (and the certificates share it with direct calls).
    ``dependency``: a scalar the solves must wait for (``_linalg.after``)."""
    policy = _linalg.after_tree(policy, dependency)
    n = game.num_players
    a_max = max(game.num_actions)
    if tol is None:
        tol = value_tol(game, tau * (1.0 + opponent_weight) * np.log(a_max))
    discount = game.discount
    # ||V* - T V|| <= gamma / (1 - gamma) ||T V - V||: the residual that meets tol.
    res_tol = tol * (1.0 - discount) / jnp.maximum(discount, jnp.finfo(game.dtype).tiny)

    transitions = _contract.induced_tensors(game.transition, policy, trailing=1)
    rewards_all = _contract.induced_tensors(jnp.moveaxis(game.reward, 0, -1), policy, trailing=1)
    rewards = [rr[..., i] for i, rr in enumerate(rewards_all)]
    if n == 2:  # the zero-sum convention's state-dependent term -tau H(pi_-i(.|s))
        rewards = [
            rr - opponent_weight * tau * entropy(policy[1 - i])[:, None]
            for i, rr in enumerate(rewards)
        ]
    p = padded(transitions, 1, a_max)  # [n, S, A, S]
    r = padded(rewards, 1, a_max)  # [n, S, A]
    s = game.num_states
    mask = padded_action_mask(game)  # [n, S, A]
    tiny = jnp.finfo(game.dtype).tiny
    z0 = masked(jnp.log(jnp.maximum(padded(policy, 1, a_max), tiny)), mask)

    # Step k evaluates pi^k = softmax(z^k) (pi^0 = policy) and forms z^{k+1} = Q^k / tau. It
    # goes on until the residual is within tol or stops shrinking (the rounding floor).
    def cond(carry):
        _, _, _, res, previous, k = carry
        going = jnp.any(res > res_tol) & jnp.any(res < previous) & (k <= max_iters)
        return (k <= 1) | going

    def body(carry):
        z, v_first, _, res, _, k = carry
        v = soft_evaluate(p, r, jax.nn.softmax(z, axis=-1), discount, tau)
        z, tv = soft_bellman(p, r, mask, v, discount, tau)
        v_first = jnp.where(k == 0, v, v_first)
        return z, v_first, tv, jnp.max(jnp.abs(tv - v), axis=-1), res, k + 1

    zeros = jnp.zeros((n, s), game.dtype)
    inf = jnp.full((n,), jnp.inf, game.dtype)
    init = (z0, zeros, zeros, inf, inf, jnp.asarray(0, jnp.int32))
    _, v0, tv, res, _, _ = lax.while_loop(cond, body, init)
    values = v0 @ game.initial
    best = tv @ game.initial
    gains = best - values
    return NashGap(gains, jnp.max(gains), jnp.sum(gains), values, best, res <= res_tol)
