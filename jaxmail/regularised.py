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

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.special import entr, logsumexp

from jaxmail.best_response import induced_mdps
from jaxmail.evaluation import state_occupancy
from jaxmail.game import MarkovGame
from jaxmail.policy import check_policy

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

    def padded(x, axis):
        widths = [(0, 0)] * x.ndim
        widths[axis] = (0, a_max - x.shape[axis])
        return jnp.pad(x, widths)

    kappa = 1.0 if zero_sum else 0.0
    transition = jnp.stack([padded(m.transition, 1) for m in mdps])  # [n, S, A, S]
    reward = jnp.stack(
        [
            padded(m.reward - kappa * temperature * (total - h)[:, None], 1)
            for m, h in zip(mdps, entropies)
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
        going = jnp.any(ratio * step > tol) & jnp.any(step < previous) & (k < SOFT_MAX_ITERS)
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
    responses = tuple(soft[i, :, : e.shape[-1]] for i, e in enumerate(reference))
    shifts = jnp.stack(
        [occupancy @ jnp.sum(jnp.abs(b - e), axis=-1) for b, e in zip(responses, reference)]
    )
    return SoftShift(shifts, responses, v, jnp.all(ratio * step <= tol))
