"""Default tolerances, each named for what it bounds, with its derivation.

Shapes: scalars. ``eps`` is the machine epsilon of the dtype, ``gamma`` the discount,
``r_max = max |R|`` (the reward scale). Values of a game lie in ``[-r_max, r_max] / (1 - gamma)``
and an exact evaluation solves with ``A = I - gamma P_pi``, whose condition number is at most
``(1 + gamma) / (1 - gamma)`` (``||A||_inf <= 1 + gamma``, ``||A^-1||_inf <= 1 / (1 - gamma)``):
rounding in a value is of order ``eps r_max / (1 - gamma)^2`` in the worst case and
``eps r_max / (1 - gamma)`` typically. Every reward scale is floored at 1, so that a game with
tiny rewards keeps an absolute tolerance of a few ulps of 1.

* :func:`value_tol`, ``64 eps max(1, r_max + extra) / (1 - gamma)``: rounding of a value; the
  equilibrium solvers' stopping tests; :func:`value_rounding_tol` is the same for a payoff
  scale given directly (a regularised, induced MDP).
* :func:`policy_improvement_tol`, ``4 eps max(1, r_max) / (1 - gamma)^2``: the Q-value gain that
  counts as an improvement in policy iteration.
* :func:`best_response_set_tol`, ``sqrt(eps) max(1, r_max) / (1 - gamma)``: the Q-value shortfall
  of an action that still counts as a best response.
* :func:`linear_solve_tol`, ``4 eps / (1 - gamma)``: relative error of an iterative linear solve.
* :func:`occupancy_zero_tol`, ``16 eps (1 + gamma) / (1 - gamma)``: an occupancy that cannot be
  told from 0.
* :func:`nash_gap_zero_tol`, ``1000 eps max(1, r_max) / (1 - gamma)``: the computed NashGap of an
  exact equilibrium.
* :func:`homotopy_corrector_tol`, ``sqrt(eps)``: relative residual of a point on the QRE path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

if TYPE_CHECKING:
    from jaxmail.game import MarkovGame

Array = jax.Array


def value_tol(game: MarkovGame, extra: Array | float = 0.0) -> Array:
    """``64 eps max(1, r_max + extra) / (1 - gamma)``: a few dozen ulps of the value scale.

    The stopping tolerance of the equilibrium solvers' value iterates and of certificates:
    ``extra`` widens the reward scale by what a regularised payoff adds (``tau log A``). The
    factor 64 leaves room for the dozens of roundings an evaluation accumulates, each of size
    ``eps`` times the value scale ``max(1, r_max) / (1 - gamma)``.
    """
    return value_rounding_tol(game.dtype, game.discount, jnp.max(jnp.abs(game.reward)) + extra)


def value_rounding_tol(dtype, discount: Array, scale: Array) -> Array:
    """``64 eps max(1, scale) / (1 - gamma)``: :func:`value_tol` of a payoff scale given directly.

    For values of a payoff other than the game's own rewards (an induced, regularised MDP):
    ``scale`` bounds that payoff's magnitude.
    """
    eps = jnp.finfo(dtype).eps
    return 64.0 * eps * jnp.maximum(scale, 1.0) / (1.0 - discount)


def policy_improvement_tol(dtype, discount: Array, reward_scale: Array) -> Array:
    """``4 eps max(1, r_max) / (1 - gamma)^2``: the smallest Q-value gain that policy iteration
    acts on (the default ``tol`` of :func:`jaxmail.responses.solve_mdp`).

    The linear solve of ``I - gamma P`` (condition number up to ``(1 + gamma) / (1 - gamma)``)
    leaves errors of about ``eps r_max / (1 - gamma)^2`` in the values it returns (values of
    size ``r_max / (1 - gamma)`` times the condition number, times ``eps``); an action is
    switched only when it improves by more than 4 times that, so rounding cannot make policy
    iteration cycle. On termination ``V* - V <= tol / (1 - gamma)``.

    Args:
      dtype: the floating dtype (``eps``).
      discount: ``gamma``, ``[]``.
      reward_scale: ``r_max``, ``[]`` (of the rewards actually solved, e.g. centred ones).
    """
    eps = jnp.finfo(dtype).eps
    return 4.0 * eps * jnp.maximum(reward_scale, 1.0) / (1.0 - discount) ** 2


def best_response_set_tol(dtype, discount: Array, reward_scale: Array) -> Array:
    """``sqrt(eps) max(1, r_max) / (1 - gamma)``: how far below ``V*(s)`` an action's
    ``Q*(s, a)`` may fall and still count as a best response (best-response sets, BR shift).

    Q-values of size ``r_max / (1 - gamma)`` carry rounding of order ``eps`` times that scale
    (times the condition number in the worst case); ``sqrt(eps)`` of the scale lies far above
    any rounding (``sqrt(eps) >> eps / (1 - gamma)`` for every discount used) and far below
    any real difference between actions that a test or an experiment draws, so ties are
    decided by the game, not by rounding.

    Args:
      dtype: the floating dtype (``eps``).
      discount: ``gamma``, ``[]``.
      reward_scale: ``r_max``, ``[]``.
    """
    return jnp.sqrt(jnp.finfo(dtype).eps) * jnp.maximum(reward_scale, 1.0) / (1.0 - discount)


def linear_solve_tol(dtype, discount: Array) -> Array:
    """``4 eps / (1 - gamma)``: the RELATIVE error the iterative linear solver of
    ``jaxmail._linalg`` asks for.

    ``A = I - gamma M`` has condition number up to ``(1 + gamma) / (1 - gamma)``, so no solver
    in precision ``eps`` can promise a relative error below about ``eps / (1 - gamma)``; this
    asks for 4 times that. Measured on random chains (float32, ``S`` 16 to 256, gamma 0.9 to
    0.9999), the fixed point's relative residual goes below ``0.5 eps`` before the cap, so this
    target is reached (at gamma = 0.9999 after about 55 000 steps).

    Args:
      dtype: the floating dtype (``eps``).
      discount: ``gamma``, ``[]``.
    """
    eps = jnp.finfo(dtype).eps
    return 4.0 * eps / (1.0 - discount)


def occupancy_zero_tol(dtype, discount: Array) -> Array:
    """``16 eps (1 + gamma) / (1 - gamma)``: occupancies at or below this count as zero.

    An occupancy solves ``(I - gamma P^T) d = (1 - gamma) mu0``: entries in ``[0, 1]``, so its
    rounding is ``cond(I - gamma P) <= (1 + gamma) / (1 - gamma)`` times a small multiple (16)
    of ``eps``; smaller values cannot be told from zero. float32 at ``gamma = 0.9``: 3.6e-5;
    float64: 6.7e-14.

    Args:
      dtype: the floating dtype (``eps``).
      discount: ``gamma``, ``[]``.
    """
    return 16.0 * jnp.finfo(dtype).eps * (1.0 + discount) / (1.0 - discount)


def nash_gap_zero_tol(game: MarkovGame) -> Array:
    """``1000 eps max(1, r_max) / (1 - gamma)``: the largest NashGap that an exact equilibrium
    shows when computed in floating point (4.4e-12 in float64 at ``gamma = 0.95``).

    A NashGap is a difference of two values of size ``r_max / (1 - gamma)``, each from an exact
    solve and a policy iteration: a few hundred ulps of that scale bound its rounding. The
    default ``gap_tol`` of :func:`jaxmail.homotopy.qre_homotopy` (a certified NashGap below it
    ends the path).
    """
    eps = jnp.finfo(game.dtype).eps
    return 1000.0 * eps * jnp.maximum(jnp.max(jnp.abs(game.reward)), 1.0) / (1.0 - game.discount)


def homotopy_corrector_tol(dtype) -> float:
    """``sqrt(eps)`` (1.5e-8 in float64): the relative residual ``max_k |H_k| / max(1, |y_k|)``
    at which :func:`jaxmail.homotopy.qre_homotopy`'s corrector accepts a point of the path.

    Half the digits of the dtype, the usual target of a Newton-type corrector: the corrector's
    Jacobian has condition growing like ``lambda max|Q|`` (``1 / tau``), so a residual near
    ``eps`` could not be met at small temperatures, while ``sqrt(eps)`` keeps the point close
    enough to the curve for the next predictor step and for the support test. A Python float.
    """
    return float(np.sqrt(jnp.finfo(dtype).eps))
