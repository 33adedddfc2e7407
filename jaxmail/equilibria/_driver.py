"""The loop every iterative equilibrium solver runs: state, step, stop test, status, count.

Private module of :mod:`jaxmail.equilibria` (as optimistix's ``_iterate.py``): a solver is a
``step`` function on its own state pytree and a ``done`` test; :func:`iterate` owns the
``lax.while_loop``, the iteration count, the cap and the status code, so no solver writes a loop
with a positional carry of its own.

Status codes (``STATUS[code]`` names them; ``CONVERGED`` and ``CAP_REACHED`` have the values
of :mod:`jaxmail.homotopy`'s codes of the same names):

* ``CONVERGED`` (0): the solver's convergence test holds for the returned state.
* ``CAP_REACHED`` (1): ``max_iters`` iterations were taken and the test does not hold.
* ``STOPPED`` (2): the stop test ended the loop before the cap without convergence (a
  non-finite residual, or a failed inner solve).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

Array = jax.Array

CONVERGED, CAP_REACHED, STOPPED = 0, 1, 2
STATUS = ("converged", "cap reached", "stopped")  # STATUS[code]


class Iterated(NamedTuple):
    """What :func:`iterate` returns.

    Attributes:
      state: the solver's state after the last step (the pytree ``init`` had).
      iterations: ``[]`` int32 iterations taken (steps, unless ``completes`` says otherwise).
      status: ``[]`` int32 ``CONVERGED``, ``CAP_REACHED`` or ``STOPPED``.
      converged: ``[]`` bool, ``status == CONVERGED``.
    """

    state: Any
    iterations: Array
    status: Array
    converged: Array


def iterate(
    step: Callable[[Array, Any], Any],
    init: Any,
    done: Callable[[Any], tuple[Array, Array]],
    max_iters: int | Array,
    *,
    completes: Callable[[Any], Array] | None = None,
) -> Iterated:
    """``state <- step(k, state)`` from ``init`` until ``done`` says stop or ``max_iters``
    iterations were taken; ``k`` is the number of iterations completed so far (the step's
    index when every step is an iteration: ``lax.fori_loop``'s ``body(i, val)`` convention).

    ``done(state) -> (stop, converged)``, two ``[]`` bools: ``stop`` ends the loop (it is
    tested before every step, ``init`` included, so a converged start takes 0 steps);
    ``converged`` is the solver's success test, read once on the final state. Write ``stop``
    as the negation of "keep going" (``~(residual > tol)``), so that a NaN residual stops the
    loop instead of running to the cap, and ``converged`` as the positive test
    (``residual <= tol``), which NaN fails.

    Args:
      step: ``(k, state) -> state``, ``k`` int32; the state keeps its pytree structure,
        shapes and dtypes.
      init: the first state.
      done: the stop and convergence tests.
      max_iters: cap on iterations (a Python int or an int32 array leaf).
      completes: for methods whose iteration takes several steps (extragradient: an
        extrapolation, then the update), ``completes(state) -> []`` bool, read on the state a
        step starts from: whether that step completes an iteration. Only completed iterations
        are counted (``k`` and ``iterations``) and capped. Default: every step is one.

    Returns:
      An :class:`Iterated` (``state``, ``iterations``, ``status``, ``converged``).
    """

    def cond(carry):
        state, k = carry
        stop, _ = done(state)
        return ~stop & (k < max_iters)

    def body(carry):
        state, k = carry
        if completes is None:
            return step(k, state), k + 1
        return step(k, state), k + completes(state).astype(jnp.int32)

    state, k = lax.while_loop(cond, body, (init, jnp.asarray(0, jnp.int32)))
    _, converged = done(state)
    status = jnp.where(converged, CONVERGED, jnp.where(k >= max_iters, CAP_REACHED, STOPPED))
    return Iterated(state, k, status.astype(jnp.int32), converged)
