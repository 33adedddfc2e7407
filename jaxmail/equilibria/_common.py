"""What every equilibrium solver shares: the result record and its certificate (the loop they
share is :mod:`jaxmail.equilibria._driver`).

Private module of :mod:`jaxmail.equilibria`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxmail import _linalg
from jaxmail.equilibria._driver import Iterated
from jaxmail.regularised import soft_nash_gap_after
from jaxmail.responses import NashGap, nash_gap

Array = jax.Array
Policy = tuple[Array, ...]


class Equilibrium(NamedTuple):
    """The result of an equilibrium solver, with its certificate.

    Attributes:
      policy: ``n`` arrays ``[S, A_i]``, the solver's policy.
      values: ``[n, S]`` the solver's own value estimate: the last value iterate (minimax and
        soft Nash value iteration; ``[V, -V]``), the regularised values ``V_i^{pi,tau}`` of the
        returned policy (logit QRE), or the values ``V_i^pi`` of the returned average policy
        (fictitious play).
      converged: ``[]`` bool: the solver's own stopping rule was met before the cap (see each
        solver for what that guarantees).
      iterations: ``[]`` int32 outer iterations taken.
      residual: ``[]`` the quantity compared with ``tol`` at the end (each solver says which).
      nash_gap: the :class:`~jaxmail.NashGap` of ``policy`` in the unregularised game.
      soft_nash_gap: the :class:`~jaxmail.NashGap` of ``policy`` in the entropy-regularised game
        (:func:`soft_nash_gap`) for the regularised solvers; ``None`` otherwise.
      status: ``[]`` int32, how the solver's loop ended (``jaxmail.equilibria.STATUS[status]``
        names it): ``CONVERGED`` (0, ``converged`` is true), ``CAP_REACHED`` (1, the cap on
        iterations) or ``STOPPED`` (2, the stop test ended the loop without convergence: a
        non-finite residual or a failed inner solve).
    """

    policy: Policy
    values: Array
    converged: Array
    iterations: Array
    residual: Array
    nash_gap: NashGap
    soft_nash_gap: NashGap | None
    status: Array


def equilibrium(policy: Policy, values: Array, out: Iterated, residual: Array) -> Equilibrium:
    """The :class:`Equilibrium` of a solver's final ``policy`` and ``values``, its loop's
    ``out`` (iterations, status) and ``residual``; the certificate is added by :func:`certified`.
    """
    return Equilibrium(
        policy, values, out.converged, out.iterations, residual, None, None, out.status
    )


def certified(game, result, *, temperature=None, zero_sum=False):
    """``result`` with its certificate: the NashGap of its policy, then (if ``temperature`` is
    given) its regularised NashGap.

    Computed from the policy alone, apart from the solver's loop, as separate compiled programs
    that every solver of a game shape shares; each solve is chained after the previous one
    (``_linalg.after``).
    """
    gap = nash_gap_after(game, result.policy, result.values)
    if temperature is None:
        return result._replace(nash_gap=gap)
    weight = jnp.asarray(1.0 if zero_sum else 0.0, game.dtype)
    soft = soft_nash_gap_after(
        game, result.policy, gap.nash_gap, temperature, None, weight, max_iters=100
    )
    return result._replace(nash_gap=gap, soft_nash_gap=soft)


@jax.jit
def nash_gap_after(game, policy, dependency):
    return nash_gap(game, _linalg.after_tree(policy, dependency))
