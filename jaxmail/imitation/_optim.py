"""The optimisation loop every gradient learner shares: optax updates inside one ``lax.scan``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import optax

Array = jax.Array


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
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps: expected a non-negative int (static), got {steps!r}")

    def step(carry, _):
        params, state = carry
        value, grads = jax.value_and_grad(loss)(params)
        updates, state = optimizer.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), value

    (params, _), losses = jax.lax.scan(step, (params, optimizer.init(params)), None, length=steps)
    return params, losses


def check_optimizer(optimizer: Any) -> optax.GradientTransformation:
    """Raises ``TypeError`` unless ``optimizer`` looks like an optax gradient transformation."""
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise TypeError(
            f"optimizer: expected an optax.GradientTransformation, got {type(optimizer).__name__}"
        )
    return optimizer
