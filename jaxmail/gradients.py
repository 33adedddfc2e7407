"""Every player's own policy gradient, from one evaluation, as losses for optax.

Shapes: ``n`` players, ``S`` states, ``A_i`` actions of player ``i``; policies are softmax
logits ``theta_i [S, A_i]``, ``pi_i = softmax(theta_i)``. Every function takes ONE game; batch
with ``jax.vmap``.

In a game each player ``i`` climbs its OWN value with the others held fixed, so the update of
``theta_i`` is ``grad_{theta_i} V_i^tau(mu0)``, where

    V_i^tau(mu0) = E[sum_t gamma^t (R_i(s_t, a_t) + tau H(pi_i(.|s_t)))],

not the gradient of any single objective (``jax.grad`` of ``sum_i V_i`` would mix in how
player ``i`` changes the others' values). The policy gradient theorem gives all ``n`` gradients
from ONE evaluation of the joint policy (one LU factorisation of ``I - gamma P_pi``, shared by
the values ``V^tau [n, S]`` and the state occupancy ``d^pi [S]``):

    grad_{theta_i} V_i^tau(mu0) = 1 / (1 - gamma) sum_s d^pi(s)
        [sum_{a_i} grad pi_i(a_i|s) Q_i(s, a_i) + tau grad H(pi_i(.|s))],
    Q_i(s, a_i) = sum_{a_-i} pi_-i(a_-i|s) [R_i(s, a) + gamma sum_s' P(s'|s, a) V_i^tau(s')].

:func:`policy_losses` returns it in the form optax and rlax use, LOSSES to minimise:
``loss_i = -V_i^tau(mu0)`` in value, and ``grad_{theta_i} loss_i = -grad_{theta_i}
V_i^tau(mu0)`` while ``grad_{theta_j} loss_i = 0`` for ``j != i`` (the others held fixed). So

    grads = jax.grad(lambda th: jm.gradients.policy_losses(game, th).sum())(logits)
    updates, state = optimizer.update(grads, state, logits)   # every player ascends its value

is simultaneous gradient play, one evaluation per step whatever ``n`` is. (Differentiating
``jm.expected_values(game, jm.softmax_policy(logits))[i]`` for each ``i`` gives the same
numbers, at ``n`` reverse passes through the solve.) :func:`policy_gradients` returns those
descent directions directly, with the values and the occupancy.

:func:`surrogate_losses` is the building block: the same losses given values and an occupancy
computed elsewhere (MA-GAIL shares one factorisation between its discriminator's occupancy and
its policy step; a sampled estimator can plug in estimates).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxmail import _contract, _linalg
from jaxmail._args import check_nonnegative
from jaxmail.evaluation import policy_matrices
from jaxmail.game import MarkovGame
from jaxmail.policy import check_policy

Array = jax.Array

__all__ = [
    "PolicyGradients",
    "logit_entropy",
    "policy_gradients",
    "policy_losses",
    "surrogate_losses",
]


class PolicyGradients(NamedTuple):
    """Every player's own policy gradient at one joint policy.

    Attributes:
      grads: ``n`` arrays ``[S, A_i]``, DESCENT directions ``-grad_{theta_i} V_i^tau(mu0)``
        (pass them to ``optimizer.update`` as they are).
      values: ``[n]`` ``V_i^tau(mu0)``, each player's own regularised value.
      occupancy: ``[S]`` the normalised state occupancy ``d^pi`` of the joint policy.
    """

    grads: tuple[Array, ...]
    values: Array
    occupancy: Array


def logit_entropy(logits: Array) -> Array:
    """``H(softmax(theta)(.|s))`` per state, ``[S]``, from ``log_softmax`` (no ``log 0``).

    Args:
      logits: ``[S, A]`` (any leading shape; the last axis is the action axis).
    """
    log_p = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)


def _check(game: MarkovGame, logits: Sequence[Array], entropy) -> tuple[tuple[Array, ...], Array]:
    logits = tuple(jnp.asarray(x, game.dtype) for x in logits)
    check_policy(game, tuple(jax.nn.softmax(x, axis=-1) for x in logits), name="logits")
    return logits, check_nonnegative("entropy", entropy, game.dtype)


def surrogate_losses(
    game: MarkovGame,
    logits: Sequence[Array],
    *,
    values: Array,
    occupancy: Array,
    entropy: float | Array = 0.0,
) -> Array:
    """Per-player policy-gradient losses given ``V^tau`` and ``d^pi`` computed elsewhere.

    ``loss_i = -(V_i(mu0) + J_i(theta_i) - sg(J_i(theta_i)))`` with the surrogate
    ``J_i(theta_i) = sum_s sg(d(s)) [sum_{a_i} pi_i(a_i|s) sg(Q_i(s, a_i)) + tau H(pi_i(.|s))]
    / (1 - gamma)`` (``sg`` = stop-gradient; ``Q_i`` from ``values`` and the others' current
    policies, module docstring). Its value is ``-V_i(mu0)`` and its gradient in ``theta_i`` is
    ``-grad_{theta_i} V_i^tau(mu0)`` when ``values`` and ``occupancy`` are the exact ones of the
    current policy; ``values`` and ``occupancy`` receive no gradient.

    Args:
      game: one game; its ``reward`` is what each player maximises (use ``game.replace(
        reward=...)`` for another reward, e.g. a discriminator's).
      logits: ``n`` arrays ``[S, A_i]``.
      values: ``[n, S]`` ``V_i^tau`` of the current joint policy.
      occupancy: ``[S]`` ``d^pi`` of the current joint policy (sums to 1).
      entropy: ``tau >= 0``.

    Returns:
      ``[n]`` the losses.
    """
    logits, entropy = _check(game, logits, entropy)
    return _surrogate(game, logits, values, occupancy, entropy)


def _surrogate(game, logits, values, occupancy, entropy):
    v = lax.stop_gradient(values)  # [n, S]
    d = lax.stop_gradient(occupancy)
    policy = tuple(lax.stop_gradient(jax.nn.softmax(x, axis=-1)) for x in logits)
    continuation = jnp.tensordot(game.transition, v.T, axes=1)  # [S, A_1..A_n, n]
    q_joint = jnp.moveaxis(game.reward, 0, -1) + game.discount * continuation
    q = _contract.induced_tensors(q_joint, policy, trailing=1)  # n arrays [S, A_i, n]
    losses = []
    for i, x in enumerate(logits):
        per_state = jnp.sum(jax.nn.softmax(x, axis=-1) * q[i][..., i], axis=-1)
        j = d @ (per_state + entropy * logit_entropy(x)) / (1.0 - game.discount)
        losses.append(-(v[i] @ game.initial + j - lax.stop_gradient(j)))
    return jnp.stack(losses)


def _evaluate(game, logits, entropy):
    """``(V^tau [n, S], d^pi [S])`` from one factorisation (two chained solves)."""
    policy = tuple(jax.nn.softmax(x, axis=-1) for x in logits)
    p_pi, r_pi = policy_matrices(game, policy)  # [S, S], [n, S]
    bonus = jnp.stack([logit_entropy(x) for x in logits])  # [n, S]
    factors = _linalg.factorize(lax.stop_gradient(p_pi), game.discount)
    d, _ = _linalg.solve(factors, (1.0 - game.discount) * game.initial, transpose=True)
    r = _linalg.after(lax.stop_gradient(r_pi + entropy * bonus), d)
    v, _ = _linalg.solve(factors, r.T)  # [S, n]
    return v.T, d


@jax.jit
def _losses(game, logits, entropy):
    # Held fixed (the surrogate stops their gradient): no linearisation of the solves.
    values, occupancy = _evaluate(game, lax.stop_gradient(logits), entropy)
    return _surrogate(game, logits, values, occupancy, entropy)


@jax.jit
def _gradients(game, logits, entropy):
    # Held fixed (the surrogate stops their gradient): no linearisation of the solves.
    values, occupancy = _evaluate(game, lax.stop_gradient(logits), entropy)
    grads = jax.grad(lambda th: jnp.sum(_surrogate(game, th, values, occupancy, entropy)))(logits)
    return PolicyGradients(grads, values @ game.initial, occupancy)


def policy_losses(
    game: MarkovGame, logits: Sequence[Array], *, entropy: float | Array = 0.0
) -> Array:
    """Per-player losses whose gradients are every player's own policy gradient.

    ``loss_i = -V_i^tau(mu0)`` in value; ``grad_{theta_i} loss_i = -grad_{theta_i}
    V_i^tau(mu0)`` and ``grad_{theta_j} loss_i = 0`` for ``j != i`` (module docstring). One
    factorisation of ``I - gamma P_pi`` per call, whatever ``n`` is.

    Args:
      game: one game.
      logits: ``n`` arrays ``[S, A_i]`` (``pi_i = softmax(theta_i)``).
      entropy: ``tau >= 0``, the weight of each player's own policy entropy in its reward.

    Returns:
      ``[n]`` the losses. ``jax.grad(lambda th: policy_losses(game, th).sum())(logits)`` is
      the tuple of descent directions.

    Raises:
      ValueError: logits that do not fit the game; a negative or non-scalar ``entropy``.
    """
    logits, entropy = _check(game, logits, entropy)
    return _losses(game, logits, entropy)


def policy_gradients(
    game: MarkovGame, logits: Sequence[Array], *, entropy: float | Array = 0.0
) -> PolicyGradients:
    """Every player's own policy gradient as a descent direction, with values and occupancy.

    The gradients of :func:`policy_losses` (one factorisation), returned with ``V_i^tau(mu0)
    [n]`` and ``d^pi [S]``: ``optimizer.update(out.grads, state, logits)`` makes every player
    ascend its own value.

    Args:
      game: one game.
      logits: ``n`` arrays ``[S, A_i]``.
      entropy: ``tau >= 0``.

    Returns:
      A :class:`PolicyGradients` record.

    Example:
      >>> out = jm.gradients.policy_gradients(game, logits, entropy=0.01)
      >>> updates, state = optimizer.update(out.grads, state, logits)
      >>> logits = optax.apply_updates(logits, updates)
    """
    logits, entropy = _check(game, logits, entropy)
    return _gradients(game, logits, entropy)
