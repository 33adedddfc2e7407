"""General-sum n-player solvers: the logit QRE (entropy-regularised policy mirror descent)
and fictitious play.

Conventions and certificates: :mod:`jaxmail.equilibria`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxmail import _contract, _linalg
from jaxmail._args import check_count, check_scalar, check_tol
from jaxmail.equilibria._common import Equilibrium, certified, equilibrium
from jaxmail.equilibria._driver import iterate
from jaxmail.game import MarkovGame
from jaxmail.policy import check_policy, uniform_policy
from jaxmail.regularised import entropy, log_normalize
from jaxmail.responses import (
    best_responses,
)
from jaxmail.tolerances import value_tol

Array = jax.Array
Policy = tuple[Array, ...]


def _soft_q_values(game, policy, tau):
    """Regularised Q-values of every player (``"own"`` convention) and values ``[n, S]``.

    ``V^{pi,tau}`` solves ``(I - gamma P_pi) V_i = r_pi,i + tau H(pi_i)`` (one factorisation, ``n``
    right-hand sides); ``Q_i^{pi,tau}(s, a_i) = r_i(s, a_i) + gamma sum_s' P_i(s, a_i, s')
    V_i^{pi,tau}(s')`` from the induced MDPs (two reads of ``P``).
    """
    transitions = _contract.induced_tensors(game.transition, policy, trailing=1)
    rewards_all = _contract.induced_tensors(jnp.moveaxis(game.reward, 0, -1), policy, trailing=1)
    p_pi = _contract.marginalise(transitions[0], policy[0])
    r_pi = _contract.marginalise(rewards_all[0], policy[0])  # [S, n]
    bonus = tau * jnp.stack([entropy(p) for p in policy], axis=-1)  # [S, n]
    v, _ = _linalg.solve(_linalg.factorize(p_pi, game.discount), r_pi + bonus)  # [S, n]
    q = tuple(
        rewards_all[i][..., i] + game.discount * (transitions[i] @ v[:, i])
        for i in range(game.num_players)
    )
    return q, v.T


def _soft_q_and_residual(game, log_policy, tau):
    """``(Q^{pi,tau}, V^{pi,tau}, soft Bellman residual)`` of the policy ``exp(log_policy)``."""
    q, v = _soft_q_values(game, tuple(jnp.exp(li) for li in log_policy), tau)
    return q, v, _soft_residual(q, log_policy, tau)


def _soft_residual(q, log_policy, tau):
    """``max_{i,s} tau KL(pi_i(.|s) || softmax(Q_i(s)/tau))``
    ``= max_{i,s} [tau lse(Q_i/tau) - pi_i . Q_i - tau H(pi_i)]``, the soft Bellman residual of
    ``pi`` (computed in log space, which keeps its rounding at the scale of ``Q``'s range)."""
    out = []
    for qi, li in zip(q, log_policy):
        log_soft = log_normalize(qi / tau)
        out.append(jnp.max(tau * jnp.sum(jnp.exp(li) * (li - log_soft), axis=-1)))
    return jnp.max(jnp.stack(out))


QRE_METHODS = ("extragradient", "mirror_descent")


def logit_qre(
    game: MarkovGame,
    *,
    temperature: float | Array,
    damping: float | Array = 1.0,
    method: str = "extragradient",
    tol: float | Array | None = None,
    max_iters: int = 10_000,
    init: Sequence[Array] | None = None,
) -> Equilibrium:
    """A logit quantal-response equilibrium (entropy-regularised Nash) of an n-player game.

    Entropy-regularised policy mirror descent (natural policy gradient), simultaneous for all
    players, in log space. With ``Q_i = Q_i^{pi,tau}`` the regularised Q-values of the current
    joint policy (``"own"`` convention, module docstring; one exact evaluation, i.e. one LU
    solve with ``n`` right-hand sides, per evaluation) the step is

        log pi_i(.|s)  <-  (1 - a_i(s)) log pi_i(.|s) + a_i(s) Q_i(s, .) / tau   (normalised),

    i.e. ``pi_i <- pi_i^(1 - a) softmax(Q_i / tau)^a``, with the scale-free per-state step
    ``a_i(s) = damping * tau / (tau + h_i(s))``, ``h_i(s) = (range_a R_i(s, a) + gamma
    range_s' V_i^{pi,tau}(s')) / 2`` an upper bound on half the range of player ``i``'s
    joint-action Q-values at ``s`` (the step ``eta = 1 / (tau + ||A||_max)``, ``a = eta tau``,
    of Cen, Wei and Chi 2021 for regularised matrix games). ``method="extragradient"``
    (default) evaluates ``Q`` at the extrapolated policy ``step(pi, Q(pi))`` and takes the step
    from ``pi`` with it (two evaluations per iteration; it converges in zero-sum and
    near-zero-sum games where the plain step cycles); ``method="mirror_descent"`` takes the
    plain step (one evaluation).

    Fixed points are exactly the QREs ``pi_i = softmax(Q_i^{pi,tau} / tau)``. Convergence is
    NOT guaranteed in general-sum games (it is expected for large temperatures; small ones need
    ~``h / tau`` times more iterations and may fail); the certificate reports what was reached.
    The stopping residual is the soft Bellman residual of the current policy,
    ``max_{i,s} tau KL(pi_i(.|s) || softmax(Q_i(s) / tau))``
    ``= max_{i,s} [tau log sum_a exp(Q_i(s, a) / tau) - V_i^{pi,tau}(s)]``; by the
    regularised performance-difference bound, the regularised NashGap is then at most
    ``residual / (1 - gamma)``.

    Args:
      game: one game, any number of players.
      temperature: ``tau > 0`` (array leaf).
      damping: fraction in ``(0, 1]`` of the scale-free step (array leaf).
      method: ``"extragradient"`` (default) or ``"mirror_descent"``.
      tol: threshold on the residual (array leaf); default
        ``64 eps max(1, max|R| + tau log max A)``, i.e. a regularised NashGap of at most
        ``64 eps max(1, max|R| + tau log max A) / (1 - gamma)``.
      max_iters: cap on iterations.
      init: starting policy (default uniform); must have full support.

    Returns:
      An :class:`Equilibrium`: ``values`` the regularised values ``V^{pi,tau} [n, S]``,
      ``residual`` the soft Bellman residual of the returned policy, ``nash_gap`` and
      ``soft_nash_gap`` (``"own"`` convention).

    Raises:
      ValueError: ``temperature <= 0`` or ``damping`` outside ``(0, 1]`` (concrete), an unknown
        method, ``max_iters < 1``, a bad ``init``.
    """
    tau = check_scalar("temperature", temperature, game.dtype, positive=True)
    damping = check_scalar("damping", damping, game.dtype, positive=True, upper=1.0)
    max_iters = check_count("max_iters", max_iters)
    if method not in QRE_METHODS:
        raise ValueError(f"method: expected one of {QRE_METHODS}, got {method!r}")
    tol = check_tol(game, tol)
    start = None if init is None else check_policy(game, init, name="init")
    result = _logit_qre(game, start, tau, damping, tol, method=method, max_iters=max_iters)
    return certified(game, result, temperature=tau)


@functools.partial(jax.jit, static_argnames=("method", "max_iters"))
def _logit_qre(game, start, tau, damping, tol, *, method, max_iters):
    if tol is None:
        tol = value_tol(game, tau * np.log(max(game.num_actions))) * (1.0 - game.discount)
    start = uniform_policy(game) if start is None else start
    tiny = jnp.finfo(game.dtype).tiny
    log0 = tuple(jnp.log(jnp.maximum(p, tiny)) for p in start)

    n = game.num_players
    r_flat = game.reward.reshape((n, game.num_states, -1))
    r_range = jnp.max(r_flat, axis=-1) - jnp.min(r_flat, axis=-1)  # [n, S]

    def mirror(log_policy, q, v):
        out = []
        v_range = jnp.max(v, axis=-1) - jnp.min(v, axis=-1)  # [n]
        for i, (li, qi) in enumerate(zip(log_policy, q)):
            h = 0.5 * (r_range[i] + game.discount * v_range[i])[:, None]  # [S, 1]
            a = damping * tau / (tau + h)
            out.append(log_normalize((1.0 - a) * li + a * qi / tau))
        return tuple(out)

    def select(flag, a, b):
        return jax.tree_util.tree_map(lambda x, y: jnp.where(flag, x, y), a, b)

    # ONE evaluation per driver step (the program stays small); ``phase`` says what a step
    # evaluates. 0: the start; 1: the extrapolated policy mirror(base, Q(base)); 2: the new base
    # mirror(base, Q(last evaluated point)), which completes an iteration. Extragradient runs
    # phases 0, 1, 2, 1, 2, ...; mirror descent 0, 2, 2, ...
    extragradient = method == "extragradient"

    def step(_, state):
        base, q, v_base, res_base, phase = state
        point = select(phase == 0, base, mirror(base, q, v_base))
        q, v, res = _soft_q_and_residual(game, point, tau)
        new_base = phase != 1
        base = select(new_base, point, base)
        v_base = jnp.where(new_base, v, v_base)
        res_base = jnp.where(new_base, res, res_base)
        phase = jnp.where(phase == 1, 2, 1 if extragradient else 2).astype(jnp.int32)
        return base, q, v_base, res_base, phase

    def done(state):
        res = state[3]  # the base's residual (inf before the start is evaluated)
        return ~(res > tol), res <= tol

    init = (
        log0,
        tuple(jnp.zeros_like(li) for li in log0),
        jnp.zeros((n, game.num_states), game.dtype),
        jnp.asarray(jnp.inf, game.dtype),
        jnp.asarray(0, jnp.int32),
    )
    out = iterate(step, init, done, max_iters, completes=lambda state: state[4] == 2)
    log_policy, _, v, res, _ = out.state
    policy = tuple(jnp.exp(li) for li in log_policy)
    return equilibrium(policy, v, out, res)


# ----------------------------------------------------------------------------------------------
# General-sum: fictitious play.
# ----------------------------------------------------------------------------------------------


def fictitious_play(
    game: MarkovGame,
    *,
    iterations: int = 1000,
    tol: float | Array | None = None,
    init: Sequence[Array] | None = None,
) -> Equilibrium:
    """Fictitious play on stationary policies: best-respond to the others' running averages.

    ``avg^0 = init`` (uniform by default, counted as the first sample); at step ``t`` every
    player computes a deterministic best response ``b_i^t`` to ``avg_-i^t`` (exact policy
    iteration on its induced MDP, :func:`jaxmail.best_responses`) and
    ``avg^{t+1} = avg^t + (b^t - avg^t) / (t + 2)``, the state-wise average of the best
    responses. The average is per state (not weighted by occupancy), which is the usual
    stationary-policy variant in Markov games. Each step's best responses also give the
    NashGap of the current average for free; the loop stops early once it is at most ``tol``.
    Convergence is NOT guaranteed: it is known for two-player zero-sum and for potential
    matrix games (Robinson 1951; Monderer and Shapley 1996), possibly slowly (worse than
    ``t^(-1/2)`` with adversarial tie-breaking, Daskalakis and Pan 2014), and ``O(1/t)`` when
    the best responses settle on a strict pure equilibrium; for Markov games this simple
    state-wise variant has no general guarantee. The certificate reports the final gap as it
    is. Cost per step: one :func:`jaxmail.best_responses` (two reads of ``P``, a few LU solves).

    Args:
      game: one game, any number of players.
      iterations: cap on best-response steps (static).
      tol: NashGap at which to stop early; default ``64 eps max(1, max|R|) / (1 - gamma)``
        (a numerical zero: in practice all ``iterations`` run).
      init: starting policy (default uniform).

    Returns:
      An :class:`Equilibrium`: the average policy, ``values`` its values ``V^pi [n, S]``,
      ``residual`` its NashGap as computed in the loop, ``converged`` (that gap ``<= tol``),
      ``soft_nash_gap = None``.

    Raises:
      ValueError: ``iterations < 1``, a bad ``init``.
    """
    iterations = check_count("iterations", iterations)
    tol = check_tol(game, tol)
    start = None if init is None else check_policy(game, init, name="init")
    return certified(game, _fictitious_play(game, start, tol, iterations=iterations))


@functools.partial(jax.jit, static_argnames=("iterations",))
def _fictitious_play(game, start, tol, *, iterations):
    tol = value_tol(game) if tol is None else tol
    start = uniform_policy(game) if start is None else start

    def respond(avg):
        responses, v = best_responses(game, avg)
        best = jnp.stack([br.values for br in responses]) @ game.initial
        gap = jnp.max(best - v @ game.initial)
        return tuple(br.policy for br in responses), v, gap

    def step(k, state):
        avg, b, _, _ = state
        w = 1.0 / (k + 2.0).astype(game.dtype)
        avg = tuple(a + w * (bi - a) for a, bi in zip(avg, b))
        return avg, *respond(avg)

    def done(state):
        gap = state[-1]
        return ~(gap > tol), gap <= tol

    out = iterate(step, (start, *respond(start)), done, iterations)
    avg, _, v, gap = out.state
    return equilibrium(avg, v, out, gap)
