"""Linear solves with ``I - gamma M`` (``M`` row-stochastic), behind one function.

Every exact quantity in jaxmail is a solve with ``A = I - gamma M`` for a stochastic ``M``
(``P_pi`` of a joint policy, or one player's induced MDP under a deterministic policy):

* ``"lu"`` (default): one LU factorisation of ``A``, reused for every right-hand side and for
  the transposed system (values and occupancies come from the same factors).
* ``"iterative"``: the fixed point ``x <- b + gamma M x`` (no factorisation; one ``[S, S]``
  matrix-vector product per step, contraction rate ``gamma``) for large ``S``, under a
  ``lax.while_loop`` with a relative tolerance (it bounds the error, whatever the scale of the
  right-hand side and the discount; see :func:`solve`) and a cap; it reports whether it met
  the tolerance.

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

from jaxmail import _xla_guard
from jaxmail.tolerances import linear_solve_tol

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


class Factors(NamedTuple):
    """What a solver keeps of ``A = I - gamma M`` between right-hand sides."""

    matrix: Array  # M, [S, S]
    discount: Array  # gamma, []
    lu: tuple[Array, Array] | None  # LU factors and pivots of A (solver "lu"), else None


def factorize(matrix: Array, discount: Array, *, solver: str = "lu") -> Factors:
    """Prepares ``A = I - gamma M`` for solves. ``matrix`` is ``[S, S]``."""
    check_solver(solver)
    if solver == "lu":
        _xla_guard.check()  # refuses to build LAPACK calls that could hang (see _xla_guard)
        a = jnp.eye(matrix.shape[-1], dtype=matrix.dtype) - discount * matrix
        lu = jax.scipy.linalg.lu_factor(lax.stop_gradient(a))
        return Factors(matrix, discount, lu)
    return Factors(matrix, discount, None)


def _norm(x: Array, transpose: bool) -> Array:
    """Per-column norm of ``[S]`` or ``[S, k]``: inf-norm for ``A``, 1-norm for ``A^T``.

    ``gamma M`` is a contraction with factor ``gamma`` in the inf-norm (rows of ``M`` sum to 1)
    and ``gamma M^T`` in the 1-norm, and ``||A^-1||_inf = ||A^-T||_1 <= 1 / (1 - gamma)``.
    """
    return jnp.sum(jnp.abs(x), axis=0) if transpose else jnp.max(jnp.abs(x), axis=0)


def _fixed_point(matrix, discount, b, tol, max_iters, transpose):
    """``x <- b + gamma M x`` from ``x = b`` until the relative stopping rule of :func:`solve`.

    Returns ``(x, converged)``; ``converged`` is the rule, met before the cap.
    """
    b_norm = _norm(b, transpose)

    def cond(carry):
        _, ok, finite, k = carry
        return ~ok & finite & (k < max_iters)

    def body(carry):
        x, _, _, k = carry
        new = b + discount * (matrix @ x)
        # new - x = b - A x: the increment is the residual of the previous iterate.
        residual = _norm(new - x, transpose)
        bound = tol * (1.0 - discount) * (_norm(new, transpose) + b_norm)
        return new, jnp.all(residual <= bound), jnp.all(jnp.isfinite(residual)), k + 1

    init = (b, jnp.asarray(False), jnp.asarray(True), jnp.asarray(0, jnp.int32))
    x, ok, _, _ = lax.while_loop(cond, body, init)
    return x, ok


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
      tol: iterative solver only: RELATIVE tolerance on the error, default
        :func:`jaxmail.tolerances.linear_solve_tol`.
        The fixed point stops at the first step whose increment (the residual
        ``b - A x_prev`` of the previous iterate) satisfies, for every right-hand side,
        ``||b - A x_prev|| <= tol (1 - gamma) (||x|| + ||b||)``, in the inf-norm (or the
        1-norm with ``transpose``, where ``gamma M^T`` contracts). As ``||A^-1|| <= 1 / (1 -
        gamma)`` in that norm, the returned ``x`` then has ``||x - x*|| <= tol (||x|| +
        ||b||)``: the residual is relative to the scale of the right-hand side and of the
        solution, and the ``1 / (1 - gamma)`` conditioning is accounted for.
      max_iters: iterative solver only: cap on fixed-point steps.

    Returns:
      ``(x, converged)``: ``x`` shaped like ``b``; ``converged`` a boolean scalar (for "lu": the
      solution is finite; for "iterative": the stopping rule above was met before the cap).
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

    g = lax.stop_gradient(discount)
    if tol is None:
        tol = linear_solve_tol(b.dtype, g)
    tol = lax.stop_gradient(jnp.asarray(tol, b.dtype))
    md = lax.stop_gradient(m)

    def iterate(_, rhs):
        return _fixed_point(md, g, rhs, tol, max_iters, transpose)

    def iterate_t(_, rhs):
        return _fixed_point(md.T, g, rhs, tol, max_iters, not transpose)

    x, converged = lax.custom_linear_solve(matvec, b, iterate, iterate_t, has_aux=True)
    return x, converged


def after_tree(tree, dependency: Array):
    """Every leaf of ``tree``, made data-dependent on ``dependency`` (see :func:`after`)."""
    return jax.tree_util.tree_map(lambda x: after(x, dependency), tree)
