"""What every learner shares: the :class:`Fit` record, the optax loop and the starting logits.

Every learner of :mod:`jaxmail.imitation` returns a :class:`Fit`: the learned policy and the
training curve, whatever the method (a closed form has a curve of length 0). Gradient learners
run :func:`minimize`, ``steps`` optax updates inside one ``lax.scan``, from
:func:`initial_logits`.

Shapes: ``n`` players, ``S`` states, ``A_i`` actions of player ``i``, ``T`` optimisation steps,
``B`` a batch (``jax.vmap`` of a learner adds ``B`` in front of every field).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmail.game import MarkovGame
from jaxmail.policy import check_policy

Array = jax.Array

MIN_LOGIT = -30.0  # initial logits from a policy: log of clipped probabilities, at least this


class Fit(NamedTuple):
    """What a learner returns: the policy and its training curve.

    Attributes:
      policy: the learned policy, ``n`` arrays ``[S, A_i]`` (``[B, S, A_i]`` under ``vmap``).
      losses: ``[T]`` the objective the learner minimises, recorded BEFORE each of its ``T``
        updates; ``[0]`` for a closed form (:func:`~jaxmail.imitation.behavior_cloning`). For
        MA-GAIL, the policy loss: the mean over players of ``-V_i^tau(mu0)`` under the rewards
        of the current discriminator.
      discriminator_losses: ``[T]`` MA-GAIL's discriminator loss at each iteration (just before
        the iteration's last discriminator update); ``None`` for learners without a
        discriminator.

    Example:
      >>> fit = jm.imitation.measure_matching(game, data, steps=100)  # doctest: +SKIP
      >>> fit.policy, fit.losses[-1]                                  # doctest: +SKIP
    """

    policy: tuple[Array, ...]
    losses: Array
    discriminator_losses: Array | None = None


def check_steps(steps: Any, *, name: str = "steps") -> int:
    """``steps`` as a non-negative Python int (static), or ``ValueError`` naming it."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"{name}: expected a non-negative int (static), got {steps!r}")
    return int(steps)


def minimize(
    loss: Callable[[Any], Array],
    params: Any,
    optimizer: optax.GradientTransformation,
    steps: int,
) -> tuple[Any, Array]:
    """Runs ``steps`` optax updates of ``params`` on ``loss`` in one ``lax.scan``.

    Args:
      loss: scalar function of the parameter pytree.
      params: the initial parameters (a pytree of arrays).
      optimizer: an optax gradient transformation.
      steps: number of updates (static).

    Returns:
      ``(params, losses)``: the final parameters and the ``[steps]`` loss BEFORE each update.
    """
    steps = check_steps(steps)

    def step(carry, _):
        params, state = carry
        value, grads = jax.value_and_grad(loss)(params)
        updates, state = optimizer.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), value

    (params, _), losses = jax.lax.scan(step, (params, optimizer.init(params)), None, length=steps)
    return params, losses


def check_optimizer(optimizer: Any, *, name: str = "optimizer") -> optax.GradientTransformation:
    """Raises ``TypeError`` unless ``optimizer`` looks like an optax gradient transformation."""
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise TypeError(
            f"{name}: expected an optax.GradientTransformation, got {type(optimizer).__name__}"
        )
    return optimizer


def initial_logits(
    game: MarkovGame, init: Sequence[Array] | None, *, name: str = "init"
) -> tuple[Array, ...]:
    """Logits ``[S, A_i]`` of a starting policy: zeros (uniform) or ``max(log p, -30)``.

    The floor keeps a zero-probability entry at a moderate logit (``log`` of the smallest
    normal number would be about ``-87`` in float32), from which a gradient step can recover.
    """
    if init is None:
        return tuple(jnp.zeros((game.num_states, a), game.dtype) for a in game.num_actions)
    init = check_policy(game, init, name=name)
    tiny = jnp.finfo(game.dtype).tiny
    return tuple(jnp.maximum(jnp.log(jnp.clip(p, tiny)), MIN_LOGIT) for p in init)
