"""Two-player zero-sum solvers: Shapley's minimax value iteration (exact per-state matrix
games by a simplex method) and soft Nash value iteration (entropy-regularised).

Conventions and certificates: :mod:`jaxmail.equilibria`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmail._args import check_count, check_scalar, check_tol
from jaxmail._arrays import is_concrete
from jaxmail.equilibria._common import Equilibrium, certified, equilibrium
from jaxmail.equilibria._driver import iterate
from jaxmail.game import MarkovGame, probability_atol
from jaxmail.regularised import entropy, log_normalize
from jaxmail.tolerances import value_tol

Array = jax.Array
Policy = tuple[Array, ...]


def _check_zero_sum(game: MarkovGame) -> None:
    """Two players and ``R[0] + R[1] == 0`` (the latter when the rewards are concrete)."""
    if game.num_players != 2:
        raise ValueError(
            f"game: a two-player zero-sum solver needs 2 players, got {game.num_players}"
        )
    if is_concrete(game.reward):
        r = np.asarray(game.reward, dtype=np.float64)
        err = np.abs(r[0] + r[1])
        atol = probability_atol(game.dtype) * max(1.0, float(np.abs(r).max()))
        if err.size and err.max() > atol:
            idx = tuple(int(i) for i in np.unravel_index(np.argmax(err), err.shape))
            raise ValueError(
                f"reward: the game is not zero-sum; |R[0] + R[1]| reaches {err.max():.3g} at "
                f"(s, a_1, a_2) = {idx} (tolerance {atol:g})"
            )


def solve_matrix_game(payoff: Array, *, max_pivots: int | None = None):
    """Optimal strategies of a zero-sum matrix game by a dense simplex method (jit-able).

    The row player maximises ``x^T M y``. With ``B = (M - min M) / (max M - min M) + 1`` (entries
    in ``[1, 2]``, same optimal strategies, value ``v_B`` in ``[1, 2]``), the column player's LP
    ``max 1^T q  s.t.  B q <= 1, q >= 0`` starts feasible at ``q = 0`` (slack basis), so a
    one-phase tableau simplex with Bland's rule (no cycling) solves it in a ``lax.while_loop``;
    ``y = q / 1^T q`` and the row player's ``x`` is the normalised dual (the objective row's
    slack entries). Exact up to floating-point rounding of ``O(m + k)`` pivots.

    Args:
      payoff: ``[m, k]``.
      max_pivots: cap on pivots; default ``50 (m + k)``.

    Returns:
      ``(x [m], y [k], converged [])``: ``converged`` is false if the cap was hit or a pivot
      failed (rounding), in which case ``x, y`` are the last basis' (possibly poor) strategies.
    """
    if np.ndim(payoff) != 2:
        raise ValueError(f"payoff: expected a matrix [m, k], got shape {np.shape(payoff)}")
    m, k = payoff.shape
    max_pivots = 50 * (m + k) if max_pivots is None else check_count("max_pivots", max_pivots)
    dtype = payoff.dtype
    eps = 64.0 * jnp.finfo(dtype).eps
    lo = jnp.min(payoff)
    span = jnp.max(payoff) - lo
    b = jnp.where(span > 0, (payoff - lo) / jnp.where(span > 0, span, 1.0), 0.0) + 1.0
    t = jnp.zeros((m + 1, k + m + 1), dtype)
    t = t.at[:m, :k].set(b).at[:m, k : k + m].set(jnp.eye(m, dtype=dtype))
    t = t.at[:m, -1].set(1.0).at[m, :k].set(-1.0)
    basis = jnp.arange(k, k + m, dtype=jnp.int32)
    big = jnp.asarray(k + m + 1, jnp.int32)

    def cond(carry):
        _, _, it, done, _ = carry
        return (~done) & (it < max_pivots)

    def body(carry):
        t, basis, it, _, _ = carry
        neg = t[m, :-1] < -eps
        optimal = ~jnp.any(neg)
        e = jnp.argmax(neg)  # Bland: the smallest index with a negative reduced cost
        col = t[:m, e]
        pos = col > eps
        ratio = jnp.where(pos, t[:m, -1] / jnp.where(pos, col, 1.0), jnp.inf)
        tie = pos & (ratio <= jnp.min(ratio) + eps)
        r = jnp.argmin(jnp.where(tie, basis, big))  # Bland: smallest basic index among ties
        failed = (~optimal) & (~jnp.any(pos))  # unbounded: impossible but for rounding
        prow = t[r] / jnp.where(pos[r], t[r, e], 1.0)
        pivoted = (t - t[:, e][:, None] * prow[None, :]).at[r].set(prow)
        step = (~optimal) & (~failed)
        t = jnp.where(step, pivoted, t)
        basis = jnp.where(step, basis.at[r].set(e.astype(jnp.int32)), basis)
        return t, basis, it + step.astype(jnp.int32), optimal | failed, optimal

    init = (t, basis, jnp.asarray(0, jnp.int32), jnp.asarray(False), jnp.asarray(False))
    t, basis, _, _, optimal = lax.while_loop(cond, body, init)
    q = jnp.zeros((k + m,), dtype).at[basis].set(t[:m, -1])[:k]
    p = t[m, k : k + m]
    q, p = jnp.clip(q, 0.0), jnp.clip(p, 0.0)
    sq, sp = jnp.sum(q), jnp.sum(p)
    y = jnp.where(sq > 0, q / jnp.where(sq > 0, sq, 1.0), 1.0 / k)
    x = jnp.where(sp > 0, p / jnp.where(sp > 0, sp, 1.0), 1.0 / m)
    return x, y, optimal


def minimax_value_iteration(
    game: MarkovGame,
    *,
    tol: float | Array | None = None,
    max_iters: int = 10_000,
    max_pivots: int | None = None,
) -> Equilibrium:
    """Shapley's value iteration for a two-player zero-sum Markov game.

    ``V_{k+1}(s) = val[Q_k(s)]`` with ``Q_k(s, a_1, a_2) = R_0(s, a) + gamma sum_s' P(s'|s, a)
    V_k(s')`` and ``val`` the minimax value of the matrix game (player 0 maximises), solved
    EXACTLY (up to rounding) at every state by :func:`solve_matrix_game` (a dense simplex in a
    ``lax.while_loop``, vmapped over states). The returned policy is the per-state optimal pair
    ``(x(s), y(s))`` of ``Q_{k-1}``. Stops when ``delta = ||V_k - V_{k-1}||_inf <= tol``; then
    ``||V_{k-1} - V^*|| <= delta / (1 - gamma)`` and each player secures ``V^*`` up to
    ``2 gamma delta / (1 - gamma)^2``, so NashGap ``<= 4 gamma delta / (1 - gamma)^2`` (a loose
    a-priori bound; the certificate is the exact one). Iterations: about
    ``log(max|R| / ((1-gamma) tol)) / log(1/gamma)``.

    Args:
      game: a two-player zero-sum game (``R[1] = -R[0]``; only ``R[0]`` is used).
      tol: threshold on the sup-norm value step (array leaf); default
        ``64 eps max(1, max|R|) / (1 - gamma)``.
      max_iters: cap on value-iteration steps.
      max_pivots: cap on simplex pivots per state and step; default ``50 (A_1 + A_2)``.

    Returns:
      An :class:`Equilibrium`: ``values = [V_k, -V_k]``, ``residual = delta``, ``converged``
      (delta within ``tol`` and every state's simplex finished), ``soft_nash_gap = None``.

    Raises:
      ValueError: not two players, not zero-sum (concrete rewards), ``max_iters < 1``.

    Example:
      >>> eq = equilibria.minimax_value_iteration(game)       # matching pennies
      >>> eq.policy[0], float(eq.nash_gap.nash_gap)             # [[0.5, 0.5]], ~0
    """
    _check_zero_sum(game)
    max_iters = check_count("max_iters", max_iters)
    a0, a1 = game.num_actions
    max_pivots = 50 * (a0 + a1) if max_pivots is None else check_count("max_pivots", max_pivots)
    tol = check_tol(game, tol)
    result = _minimax_value_iteration(game, tol, max_iters=max_iters, max_pivots=max_pivots)
    return certified(game, result)


@functools.partial(jax.jit, static_argnames=("max_iters", "max_pivots"))
def _minimax_value_iteration(game, tol, *, max_iters, max_pivots):
    tol = value_tol(game) if tol is None else tol
    a0, a1 = game.num_actions
    dtype = game.dtype
    s = game.num_states
    reward, transition, discount = game.reward[0], game.transition, game.discount

    def stage(v):
        q = reward + discount * jnp.tensordot(transition, v, axes=1)  # [S, A1, A2]
        x, y, ok = jax.vmap(lambda m: solve_matrix_game(m, max_pivots=max_pivots))(q)
        return jnp.einsum("sa,sab,sb->s", x, q, y), x, y, jnp.all(ok)

    def step(_, state):
        v = state[0]
        new, x, y, ok = stage(v)
        return new, x, y, ok, jnp.max(jnp.abs(new - v))

    def done(state):
        *_, ok, delta = state
        return ~(delta > tol), (delta <= tol) & ok

    init = (
        jnp.zeros((s,), dtype),
        jnp.full((s, a0), 1.0 / a0, dtype),
        jnp.full((s, a1), 1.0 / a1, dtype),
        jnp.asarray(True),
        jnp.asarray(jnp.inf, dtype),
    )
    out = iterate(step, init, done, max_iters)
    v, x, y, _, delta = out.state
    return equilibrium((x, y), jnp.stack([v, -v]), out, delta)


# ----------------------------------------------------------------------------------------------
# Two-player zero-sum, entropy-regularised: soft Nash value iteration.
# ----------------------------------------------------------------------------------------------


def _regularised_stage_gap(q, lx, ly, tau):
    """Sum of both players' regularised best-response gains in each state's matrix game.

    ``tau lse(Q y / tau) + tau lse(-Q^T x / tau) - tau H(x) - tau H(y)``
    ``= tau KL(x || softmax(Q y / tau)) + tau KL(y || softmax(-Q^T x / tau)) >= 0``, zero
    exactly at the QRE; computed in the KL form (log space).
    """
    x, y = jnp.exp(lx), jnp.exp(ly)
    bx = log_normalize(jnp.einsum("sab,sb->sa", q, y) / tau)
    by = log_normalize(-jnp.einsum("sab,sa->sb", q, x) / tau)
    return tau * (jnp.sum(x * (lx - bx), axis=-1) + jnp.sum(y * (ly - by), axis=-1))


def _solve_regularised_matrix_games(q, lx, ly, tau, tol, max_iters):
    """QREs of ``max_x min_y x^T Q(s) y + tau H(x) - tau H(y)`` at every state, warm-started.

    Predictive update (Cen, Wei, Chi 2021, "PU"), in log space, per state with step
    ``eta = 1 / (tau + h)``, ``h = (max Q(s) - min Q(s)) / 2`` (``Q`` shifted to its midrange,
    which changes no strategy)::

        xb = x^(1 - eta tau) exp(eta Q y),      yb = y^(1 - eta tau) exp(-eta Q^T x)
        x' = x^(1 - eta tau) exp(eta Q yb),     y' = y^(1 - eta tau) exp(-eta Q^T xb)

    (normalised). KL to the unique QRE contracts by ``1 - eta tau = h / (tau + h)`` per step.
    Stops when every state's :func:`_regularised_stage_gap` is at most ``tol``.
    """
    lo = jnp.min(q, axis=(1, 2), keepdims=True)
    hi = jnp.max(q, axis=(1, 2), keepdims=True)
    qc = q - 0.5 * (lo + hi)
    eta = 1.0 / (tau + 0.5 * (hi - lo))[:, :, 0]  # [S, 1]
    keep = 1.0 - eta * tau

    def mirror_step(lx, ly):
        x, y = jnp.exp(lx), jnp.exp(ly)
        lxb = log_normalize(keep * lx + eta * jnp.einsum("sab,sb->sa", qc, y))
        lyb = log_normalize(keep * ly - eta * jnp.einsum("sab,sa->sb", qc, x))
        xb, yb = jnp.exp(lxb), jnp.exp(lyb)
        lx = log_normalize(keep * lx + eta * jnp.einsum("sab,sb->sa", qc, yb))
        ly = log_normalize(keep * ly - eta * jnp.einsum("sab,sa->sb", qc, xb))
        return lx, ly

    def step(_, state):
        lx, ly, _ = state
        lx, ly = mirror_step(lx, ly)
        return lx, ly, jnp.max(_regularised_stage_gap(qc, lx, ly, tau))

    def done(state):
        gap = state[2]
        return ~(gap > tol), gap <= tol

    init = (lx, ly, jnp.max(_regularised_stage_gap(qc, lx, ly, tau)))
    return iterate(step, init, done, max_iters).state


def soft_nash_value_iteration(
    game: MarkovGame,
    *,
    temperature: float | Array,
    tol: float | Array | None = None,
    max_iters: int = 10_000,
    inner_tol: float | Array | None = None,
    inner_max_iters: int = 1000,
) -> Equilibrium:
    """Entropy-regularised minimax value iteration (the paper's Tag expert at ``tau = 0.1``).

    The regularised zero-sum game (``"zero_sum"`` convention, module docstring): player 0
    maximises and player 1 minimises
    ``V(s) = E[sum_t gamma^t (R_0(s_t, a_t) + tau H(x(.|s_t)) - tau H(y(.|s_t)))]``.
    Value iteration ``V_{k+1}(s) = max_x min_y x^T Q_k(s) y + tau H(x) - tau H(y)`` with
    ``Q_k(s) = R_0(s) + gamma P(s) V_k``: every state's regularised matrix game is strongly
    concave-convex and has a unique saddle point (its QRE, ``x = softmax(Q y / tau)``,
    ``y = softmax(-Q^T x / tau)``), found by the predictive-update mirror method of Cen, Wei and
    Chi (2021), warm-started from the previous step, until the sum of both players'
    regularised stage gains is at most ``inner_tol`` at every state (see
    ``_solve_regularised_matrix_games``); inexact stage solutions add at most
    ``inner_tol / (1 - gamma)`` to the regularised NashGap. The outer map is a
    ``gamma``-contraction; it stops when ``delta = ||V_k - V_{k-1}||_inf <= tol`` and the last
    inner solve reached ``inner_tol``. Each inner step contracts by ``h / (tau + h)`` (``h``
    half the range of ``Q(s)``), so small temperatures need many inner steps (warm starts keep
    the count down once the values settle). Measured (float32, random games, 8-16 states,
    gamma 0.9): regularised NashGap about ``1e-5``; float64 about ``1e-13``.

    Args:
      game: a two-player zero-sum game (only ``R[0]`` is used).
      temperature: ``tau > 0`` (array leaf; vmap over it for a sweep).
      tol: threshold on the sup-norm value step; default
        ``64 eps max(1, max|R| + 2 tau log max A) / (1 - gamma)``.
      max_iters: cap on value-iteration steps.
      inner_tol: per-state regularised stage gap at which the inner solver stops; default
        ``(1 - gamma) tol``.
      inner_max_iters: cap on inner steps per value-iteration step.

    Returns:
      An :class:`Equilibrium`: ``values = [V_k, -V_k]`` (regularised), ``residual = delta``,
      ``nash_gap`` (unregularised game) and ``soft_nash_gap`` (regularised, ``zero_sum=True``).

    Raises:
      ValueError: not two players, not zero-sum (concrete rewards), ``temperature <= 0``
        (concrete), caps ``< 1``.
    """
    _check_zero_sum(game)
    tau = check_scalar("temperature", temperature, game.dtype, positive=True)
    max_iters = check_count("max_iters", max_iters)
    inner_max_iters = check_count("inner_max_iters", inner_max_iters)
    tol = check_tol(game, tol)
    inner_tol = check_tol(game, inner_tol, "inner_tol")
    result = _soft_nash_value_iteration(
        game, tau, tol, inner_tol, max_iters=max_iters, inner_max_iters=inner_max_iters
    )
    return certified(game, result, temperature=tau, zero_sum=True)


@functools.partial(jax.jit, static_argnames=("max_iters", "inner_max_iters"))
def _soft_nash_value_iteration(game, tau, tol, inner_tol, *, max_iters, inner_max_iters):
    a0, a1 = game.num_actions
    if tol is None:
        tol = value_tol(game, 2.0 * tau * np.log(max(a0, a1)))
    inner_tol = tol * (1.0 - game.discount) if inner_tol is None else inner_tol
    dtype = game.dtype
    s = game.num_states
    reward, transition, discount = game.reward[0], game.transition, game.discount

    def step(_, state):
        v, lx, ly, _, _ = state
        q = reward + discount * jnp.tensordot(transition, v, axes=1)  # [S, A1, A2]
        lx, ly, gap = _solve_regularised_matrix_games(q, lx, ly, tau, inner_tol, inner_max_iters)
        x, y = jnp.exp(lx), jnp.exp(ly)
        new = jnp.einsum("sa,sab,sb->s", x, q, y) + tau * (entropy(x) - entropy(y))
        return new, lx, ly, jnp.max(jnp.abs(new - v)), gap

    def done(state):
        *_, delta, gap = state
        stop = ~((delta > tol) | (gap > inner_tol))
        return stop, (delta <= tol) & (gap <= inner_tol)

    init = (
        jnp.zeros((s,), dtype),
        jnp.full((s, a0), -np.log(a0), dtype),
        jnp.full((s, a1), -np.log(a1), dtype),
        jnp.asarray(jnp.inf, dtype),
        jnp.asarray(jnp.inf, dtype),
    )
    out = iterate(step, init, done, max_iters)
    v, lx, ly, delta, _ = out.state
    return equilibrium((jnp.exp(lx), jnp.exp(ly)), jnp.stack([v, -v]), out, delta)


soft_nash_vi = soft_nash_value_iteration  # the name used in the example
