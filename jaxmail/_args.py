"""Argument checks shared by the package's modules (their one home; private module).

Structure is always checked; values when they are concrete (not tracers).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxmail._arrays import is_concrete

Array = jax.Array


def check_count(name: str, value, *, minimum: int = 1) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}: expected a Python int (static), got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name}: must be at least {minimum}, got {value}")
    return int(value)


def check_choice(name: str, value, choices: tuple) -> str:
    """Returns ``value``; raises ``ValueError`` naming ``choices`` unless it is one of them."""
    if value not in choices:
        raise ValueError(f"{name}: expected one of {choices}, got {value!r}")
    return value


def check_scalar(name: str, value, dtype, *, positive: bool, upper: float | None = None):
    """Returns ``value`` as a scalar array of ``dtype``; checks its range when concrete."""
    if value is None:
        raise ValueError(f"{name}: required")
    shape = tuple(np.shape(value))
    if shape != ():
        raise ValueError(
            f"{name}: expected a scalar, got shape {shape} (vmap over a batch of values instead)"
        )
    if is_concrete(value):
        v = float(np.asarray(value, dtype=np.float64))
        if not np.isfinite(v):
            raise ValueError(f"{name}: must be finite, got {v}")
        if positive and v <= 0.0:
            raise ValueError(f"{name}: must be > 0, got {v}")
        if not positive and v < 0.0:
            raise ValueError(f"{name}: must be >= 0, got {v}")
        if upper is not None and v > upper:
            raise ValueError(f"{name}: must be <= {upper}, got {v}")
    return jnp.asarray(value, dtype)


def check_tol(game, tol, name="tol"):
    """``None``, or ``tol`` as a non-negative scalar of the game's dtype."""
    return None if tol is None else check_scalar(name, tol, game.dtype, positive=False)


def check_nonnegative(name: str, value, dtype) -> Array:
    """``value`` as a ``dtype`` array; raises ``ValueError`` if concrete and negative or NaN."""
    if not isinstance(value, jax.core.Tracer):
        arr = np.asarray(value, dtype=np.float64)
        if arr.shape != ():
            raise ValueError(f"{name}: expected a scalar, got shape {arr.shape}")
        if not arr >= 0:  # also catches NaN
            raise ValueError(f"{name}: must be >= 0, got {float(arr)}")
    return jnp.asarray(value, dtype)
