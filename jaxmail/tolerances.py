"""Tolerances, each named for what it bounds, with its derivation.

Shapes: scalars. ``eps`` is the machine epsilon of the game's dtype, ``gamma`` the discount,
``r_max = max |R|``. Values of a game lie in ``[-r_max, r_max] / (1 - gamma)`` and an exact
evaluation solves with ``I - gamma P_pi``, whose condition number is at most
``(1 + gamma) / (1 - gamma)``: rounding in a value is of order ``eps r_max / (1 - gamma)^2`` in
the worst case and ``eps r_max / (1 - gamma)`` typically.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxmail.game import MarkovGame

Array = jax.Array


def value_tol(game: MarkovGame, extra: Array | float = 0.0) -> Array:
    """``64 eps max(1, r_max + extra) / (1 - gamma)``: a few dozen ulps of the value scale.

    The stopping tolerance of the equilibrium solvers' value iterates and of certificates:
    ``extra`` widens the reward scale by what a regularised payoff adds (``tau log A``). The
    factor 64 leaves room for the dozens of roundings an evaluation accumulates, each of size
    ``eps`` times the value scale ``max(1, r_max) / (1 - gamma)``.
    """
    eps = jnp.finfo(game.dtype).eps
    scale = jnp.maximum(jnp.max(jnp.abs(game.reward)) + extra, 1.0)
    return 64.0 * eps * scale / (1.0 - game.discount)
