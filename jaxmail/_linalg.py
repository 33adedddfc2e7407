"""Linear solves with ``I - gamma M`` (``M`` row-stochastic), behind one function.

Every exact quantity in jaxmail is a solve with ``A = I - gamma M`` for a stochastic ``M``
(``P_pi`` of a joint policy, or one player's induced MDP under a deterministic policy):

* ``"lu"`` (default): one LU factorisation of ``A``, reused for every right-hand side and for
  the transposed system (values and occupancies come from the same factors).
* ``"iterative"``: the fixed point ``x <- b + gamma M x`` (no factorisation; one ``[S, S]``
  matrix-vector product per step, contraction rate ``gamma``) for large ``S``, under a
  ``lax.while_loop`` with tolerance and cap.

Both are wrapped in ``lax.custom_linear_solve``, so gradients flow through ``M``, ``gamma`` and
``b`` by implicit differentiation (the backward pass reuses the same factors).

Deadlock avoidance (jaxlib 0.10 on small CPUs): two LAPACK-backed calls that do not depend on
each other can be scheduled side by side and hang. :func:`after` threads a fake data dependency
so that a second solve starts only when the first has finished; every kernel uses it.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

Array = jax.Array

SOLVERS = ("lu", "iterative")


def after(x: Array, dependency: Array) -> Array:
    """Returns ``x`` unchanged, but data-dependent on ``dependency``.

    ``x + 0 * dependency[first]``: XLA keeps floating-point multiplications by zero (they are not
    the identity for NaN/inf), so the scheduler cannot start work on the result before
    ``dependency`` exists. Gradients through the extra term are zero.
    """
    first = jnp.ravel(dependency)[:1].astype(x.dtype)
    return x + jnp.zeros_like(first) * lax.stop_gradient(first)


def check_solver(solver: str) -> str:
    if solver not in SOLVERS:
        raise ValueError(f"solver: expected one of {SOLVERS}, got {solver!r}")
    return solver


def default_tol(dtype, discount: Array, scale: Array) -> Array:
    """Absolute residual tolerance ``64 eps scale / (1 - gamma)`` for iterative solves.

    The fixed-point increment cannot fall below rounding of values of size
    ``scale / (1 - gamma)``; this tolerance sits a little above that floor.
    """
    eps = jnp.finfo(dtype).eps
    return 64.0 * eps * jnp.maximum(scale, 1.0) / (1.0 - discount)


class Factors(NamedTuple):
    """What a solver keeps of ``A = I - gamma M`` between right-hand sides."""

    matrix: Array  # M, [S, S]
    discount: Array  # gamma, []
    lu: tuple[Array, Array] | None  # LU factors and pivots of A (solver "lu"), else None


def factorize(matrix: Array, discount: Array, *, solver: str = "lu") -> Factors:
    """Prepares ``A = I - gamma M`` for solves. ``matrix`` is ``[S, S]``."""
    check_solver(solver)
    if solver == "lu":
        a = jnp.eye(matrix.shape[-1], dtype=matrix.dtype) - discount * matrix
        lu = jax.scipy.linalg.lu_factor(lax.stop_gradient(a))
        return Factors(matrix, discount, lu)
    return Factors(matrix, discount, None)


def _fixed_point(matrix, discount, b, tol, max_iters):
    def cond(carry):
        _, delta, k = carry
        return (delta > tol) & (k < max_iters)

    def body(carry):
        x, _, k = carry
        new = b + discount * (matrix @ x)
        return new, jnp.max(jnp.abs(new - x)), k + 1

    init = (b, jnp.asarray(jnp.inf, b.dtype), jnp.asarray(0, jnp.int32))
    x, _, _ = lax.while_loop(cond, body, init)
    return x


def solve(
    factors: Factors,
    b: Array,
    *,
    transpose: bool = False,
    tol: Array | None = None,
    max_iters: int = 100_000,
) -> tuple[Array, Array]:
    """Solves ``A x = b`` (or ``A^T x = b``) with ``A = I - gamma M``.

    Args:
      factors: from :func:`factorize`.
      b: ``[S]`` or ``[S, k]`` right-hand sides.
      transpose: solve with ``A^T`` instead.
      tol: iterative solver only: absolute tolerance on the fixed-point increment (which is
        the residual ``||A x - b||_inf``); default :func:`default_tol`.
      max_iters: iterative solver only: cap on fixed-point steps.

    Returns:
      ``(x, converged)``: ``x`` shaped like ``b``; ``converged`` a boolean scalar (for "lu": the
      solution is finite; for "iterative": the residual ``||A x - b||_inf <= tol``).
    """
    matrix, discount, lu = factors
    m = matrix.T if transpose else matrix

    def matvec(x):
        return x - discount * (m @ x)

    if lu is not None:
        trans = 1 if transpose else 0

        def direct(_, rhs):
            return jax.scipy.linalg.lu_solve(lu, rhs, trans=trans)

        def direct_t(_, rhs):
            return jax.scipy.linalg.lu_solve(lu, rhs, trans=1 - trans)

        x = lax.custom_linear_solve(matvec, b, direct, direct_t)
        return x, jnp.all(jnp.isfinite(x))

    if tol is None:
        tol = default_tol(b.dtype, discount, jnp.max(jnp.abs(b)))
    tol = lax.stop_gradient(jnp.asarray(tol, b.dtype))
    md, g = lax.stop_gradient(m), lax.stop_gradient(discount)

    def iterate(_, rhs):
        return _fixed_point(md, g, rhs, tol, max_iters)

    def iterate_t(_, rhs):
        return _fixed_point(md.T, g, rhs, tol, max_iters)

    x = lax.custom_linear_solve(matvec, b, iterate, iterate_t)
    residual = jnp.max(jnp.abs(matvec(lax.stop_gradient(x)) - lax.stop_gradient(b)))
    return x, residual <= tol * (1.0 + 1e-3)
