"""Equilibrium solvers ("experts") with certificates, and the dominance-violation measure.

Shapes: ``n`` players, ``S`` states, ``A_i`` actions of player ``i``. Every function takes ONE
game; batch with ``jax.vmap`` (over games, temperatures, step sizes, tolerances: all of them are
array leaves, so changing them neither recompiles nor blocks ``vmap``). Only structure (player
and action counts, iteration caps) is static. Every iterative solver is a step function run by
one driver (``jaxmail.equilibria._driver.iterate``: the loop, the stop test against a tolerance,
the cap, the iteration count and the status code), and reports whether it converged and how
its loop ended (``Equilibrium.status``, named by ``STATUS[status]``: ``CONVERGED``,
``CAP_REACHED`` or ``STOPPED``); nothing is silently truncated.

Every solver returns an :class:`Equilibrium` whose certificate is recomputed from scratch on
the returned policy, independently of the solver's internals:

* ``nash_gap``: :func:`jaxmail.nash_gap` of the policy in the (unregularised) game;
* ``soft_nash_gap``: for the entropy-regularised solvers, :func:`soft_nash_gap` of the policy
  in the regularised game the solver targets (``None`` for the others).

The certificate, not the ``converged`` flag, is the judge of a result.

Entropy-regularised games (temperature ``tau > 0``, ``H(p) = -sum_a p(a) log p(a)``). Player
``i``'s stage payoff under a joint policy ``pi`` is one of

* ``"own"`` (general-sum, :func:`logit_qre`): ``R_i(s, a) + tau H(pi_i(.|s))``;
* ``"zero_sum"`` (two players, :func:`soft_nash_value_iteration`):
  ``R_i(s, a) + tau H(pi_i(.|s)) - tau H(pi_{-i}(.|s))``, which keeps a zero-sum game zero-sum
  (the convention of Cen, Wei and Chi 2021 for entropy-regularised Markov games).

The two agree on one-state games, and whenever the transitions ignore the actions (each
state is then an independent regularised matrix game). The regularised value
``V_i^{pi,tau}`` is the value of that payoff. The soft best response of player ``i`` is the
optimal policy of its induced MDP against ``pi_-i`` (with the state-dependent reward
``-tau H(pi_-i(.|s))`` in ``"zero_sum"``) plus the entropy bonus ``tau H(pi'_i(.|s))``; its
values solve the soft Bellman equation ``V(s) = tau log sum_a exp(Q(s, a) / tau)`` with
``Q = r_i + gamma P_i V``, and its policy is ``softmax(Q / tau)``. The regularised gain is
``g_i^tau = V_i^{*,tau}(mu0) - V_i^{pi,tau}(mu0) >= 0``; :func:`soft_nash_gap` reports it as a
:class:`~jaxmail.NashGap` record (``nash_gap = max_i g_i^tau``). A regularised equilibrium
(quantal-response equilibrium, QRE) has every ``g_i^tau = 0``, i.e.
``pi_i = softmax(Q_i^{pi,tau} / tau)`` at every state.
"""

from jaxmail.equilibria._common import Equilibrium
from jaxmail.equilibria._driver import CAP_REACHED, CONVERGED, STATUS, STOPPED
from jaxmail.equilibria.dominance import dominance_violation
from jaxmail.equilibria.general_sum import QRE_METHODS, fictitious_play, logit_qre
from jaxmail.equilibria.zero_sum import (
    minimax_value_iteration,
    soft_nash_value_iteration,
    soft_nash_vi,
    solve_matrix_game,
)
from jaxmail.homotopy import Homotopy, qre_homotopy
from jaxmail.regularised import soft_nash_gap

__all__ = [
    "CAP_REACHED",
    "CONVERGED",
    "QRE_METHODS",
    "STATUS",
    "STOPPED",
    "Equilibrium",
    "Homotopy",
    "dominance_violation",
    "fictitious_play",
    "logit_qre",
    "minimax_value_iteration",
    "qre_homotopy",
    "soft_nash_gap",
    "soft_nash_value_iteration",
    "soft_nash_vi",
    "solve_matrix_game",
]
