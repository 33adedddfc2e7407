"""Shared builders and tolerances for the core test files (not a test module).

Imported as ``import helpers`` (tests/ has no ``__init__.py``, like ``reference``). Games are
drawn with the NumPy oracle (``reference.random_game``) and wrapped in ``jm.MarkovGame``; build
them INSIDE a test (or under ``jax.enable_x64``) so that they get the intended dtype.

Tolerances (docs/design.md §2.5)
--------------------------------
float64: values to ``1e-9 / (1 - gamma)``, occupancies to ``1e-9``. Both are ~1e5 times the
float64 rounding floor derived below, and ~1e6 times smaller than any real mistake (values are
O(1 / (1 - gamma)), occupancies O(1 / S)).

float32: let ``eps = 2**-23`` (float32 machine epsilon, 1.19e-7) and ``A = I - gamma P_pi``.
  * Inputs rounded to float32 and contracted with the policy over ``prod_i A_i <= 24`` joint
    actions carry a relative error of a few ``eps`` in ``P_pi`` and ``r_pi``.
  * LU with partial pivoting solves ``(A + dA) x = b`` with ``||dA|| <= c eps ||A||`` (``c`` a
    modest growth factor; for stochastic matrices there is no pivot growth to speak of).
  * ``||A||_inf <= 1 + gamma`` and ``||A^-1||_inf <= 1 / (1 - gamma)`` (Neumann series), so
    ``cond(A) <= (1 + gamma) / (1 - gamma)``.
  * Forward error: ``||dV|| <= cond(A) * (relative input/backward error) * ||V||`` and
    ``||V||_inf <= max|R| / (1 - gamma)``, giving
    ``||dV||_inf <= C eps (1 + gamma) max|R| / (1 - gamma)^2``.
  * The occupancy solves ``A^T d = (1 - gamma) mu0`` with ``||d||_1 = 1`` (the 1-norm of
    ``A^T`` is the inf-norm of ``A``): ``||dd||_1 <= C eps (1 + gamma) / (1 - gamma)``.
  We take ``C = 16`` (the contraction error and the solver's growth factor together, for
  S <= 64). At gamma = 0.9 that is 3.6e-4 on values of size up to 10 and 3.6e-5 on occupancies:
  measured float32 errors on the random games of these tests stay ~50 times below it (0.005 of
  the C = 64 bound), and any real bug (a missing discount, a transposed P, a wrong player axis)
  is ~100 times above it.
"""

from __future__ import annotations

import contextlib

import jax
import numpy as np
import reference as ref

import jaxmail as jm

EPS32 = float(np.finfo(np.float32).eps)
C32 = 16.0


def value_atol(dtype, gamma: float, reward_scale: float = 1.0) -> float:
    """Absolute tolerance on values ``V`` (and Q, best-response values, gains) for ``dtype``."""
    if np.dtype(dtype) == np.float64:
        return 1e-9 * max(reward_scale, 1.0) / (1.0 - gamma)
    return C32 * EPS32 * (1.0 + gamma) * max(reward_scale, 1.0) / (1.0 - gamma) ** 2


def occupancy_atol(dtype, gamma: float) -> float:
    """Absolute tolerance on occupancy measures (entries and L1 norms) for ``dtype``."""
    if np.dtype(dtype) == np.float64:
        return 1e-9
    return C32 * EPS32 * (1.0 + gamma) / (1.0 - gamma)


def instance(seed, num_states, num_actions, gamma=0.9):
    """A seeded random game ``(P, R, mu0)`` and a random policy, all NumPy float64."""
    rng = np.random.default_rng(seed)
    P, R, mu0 = ref.random_game(rng, num_states, num_actions, gamma)
    policy = ref.random_policy(rng, num_states, num_actions)
    return P, R, mu0, policy


def make_game(P, R, mu0, gamma) -> jm.MarkovGame:
    return jm.MarkovGame(transition=P, reward=R, initial=mu0, discount=gamma)


def matrix_game(payoffs, gamma=0.9) -> jm.MarkovGame:
    """One-state game with a self-loop; ``payoffs`` ``[n, A_1, ..., A_n]`` is ``R[:, 0]``.

    With one state every stationary policy is one mixed strategy per player, the stage payoff
    ``u_i`` repeats forever, and ``V_i = u_i / (1 - gamma)``.
    """
    payoffs = np.asarray(payoffs, dtype=np.float64)
    P = np.ones((1, *payoffs.shape[1:], 1))
    return make_game(P, payoffs[:, None], np.ones(1), gamma)


def as_numpy(policy):
    return tuple(np.asarray(p, dtype=np.float64) for p in policy)


def permute_players(P, R, policy, perm):
    """The same game with players relabelled: new player ``k`` is old player ``perm[k]``.

    ``P'[s, a'_0..a'_{n-1}, s'] = P[s, a, s']`` with ``a'_k = a_{perm[k]}`` (a transpose of the
    action axes), ``R'[k] = R[perm[k]]`` with the same transpose, ``policy'[k] = policy[perm[k]]``.
    """
    n = len(perm)
    axes = (0, *(1 + p for p in perm), n + 1)
    P2 = np.transpose(P, axes)
    R2 = np.stack([np.transpose(R[perm[k]], axes[:-1]) for k in range(n)])
    return P2, R2, tuple(policy[p] for p in perm)


def permute_states(P, R, mu0, policy, perm):
    """The same game with states relabelled: new state ``j`` is old state ``perm[j]``."""
    perm = np.asarray(perm)
    P2 = P[perm][..., perm]
    R2 = R[:, perm]
    return P2, R2, mu0[perm], tuple(p[perm] for p in policy)


@contextlib.contextmanager
def count_compilations():
    """Counts XLA backend compilations inside the block: ``with count_compilations() as n: ...;
    n[0]`` (a jit cache hit compiles nothing; a recompilation for a new static value does)."""
    count = [0]

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            count[0] += 1

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield count
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
