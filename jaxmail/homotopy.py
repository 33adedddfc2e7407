"""Nash equilibria of general-sum n-player Markov games by the logit-QRE homotopy.

Shapes: ``n`` players, ``S`` states, ``A_i`` actions of player ``i``, ``A = max_i A_i`` (action
axes are padded to ``A`` and masked), ``N = n S A`` unknowns. Every function takes ONE game; batch
with ``jax.vmap`` (temperatures and tolerances are array leaves; the loops have fixed shapes, and a
game of a batch that has finished idles until the last one is done).

The logit quantal-response equilibria (the stationary "agent" QRE of McKelvey and Palfrey, the
one sgamesolver traces) at precision ``lambda = 1 / tau`` are the stationary joint policies with

    pi_i(a | s) = softmax_a(lambda Q_i^pi(s, a))           for every player i and state s,

where ``Q_i^pi(s, a_i) = E_{a_-i ~ pi_-i}[R_i(s, a) + gamma sum_s' P(s' | s, a) V_i^pi(s')]`` are
the unregularised Q-values of :func:`jaxmail.q_values` and ``V_i^pi`` the exact values of ``pi``.
In log-policy coordinates ``y_i(s, a) = log pi_i(a | s)`` this is the square system

    H(y, lambda) = y - log_softmax(lambda Q^{exp(y)}) = 0,        H: R^{N + 1} -> R^N,

(padded entries: ``H = y``). At ``lambda = 0`` its only solution is the uniform policy, and for
generic games the solutions form a smooth curve from there that leaves every compact set only as
``lambda -> inf`` and whose limit points are Nash equilibria (McKelvey and Palfrey 1995; Herings
and Peeters for stochastic games). :func:`qre_homotopy` follows that curve in the scaled
parameter ``l = lambda * c``, ``c = max |R|`` (so ``tau = c / l``), by pseudo-arclength
continuation of ``x = (y, l)``:

* tangent: ``[J(x); t_prev^T] t = e_{N+1}``, normalised (``J = dH/dx`` in closed form, see
  :func:`_evaluate`: one inverse of ``I - gamma P_pi`` serves all ``N`` columns); the last row
  keeps the orientation, so the curve is followed through turning points (where the tangent's
  ``l``-component changes sign; they are counted);
* predictor ``x + h t``; corrector: chord-Newton steps with the same augmented matrix on the
  hyperplane ``t_prev . (x - x_pred) = 0``, which must end with a relative residual
  ``max_k |H_k| / max(1, |y_k|) <= tol`` and move the point by at most ``h / 2`` (a longer
  correction may have landed on another branch);
* step control: a step is accepted when the corrector converged, stayed near the prediction
  and the new tangent turns by less than ~25 degrees; then ``h`` grows (x2 when the corrector
  needed at most 3 chord steps above the tolerance, x1.25 for at most 5), else ``h`` halves.
  The arclength is measured with the weights ``max(pi, 1e-6)`` on ``y`` (and 1 on ``l``): an
  action far off the support has ``y ~ -lambda * gap``, exactly linear in ``lambda`` and
  harmless, and would otherwise dominate the Euclidean length and throttle the steps.

Certificates at checkpoints ``l = 10, 30, 90, ...`` (``tau = max|R| / l``): at each, a Newton
polish solves the Nash conditions restricted to a support: unknowns ``p [n, S, A]`` and
``v [n, S]`` with ``Q_i^p(s, a) = v_i(s)`` on the support, ``p = 0`` off it and
``sum_a p_i(a|s) = 1``. The support is read off the tangent (:func:`_support`: an action
leaving the support has log-odds against the row's best action falling like ``-lambda gap``,
one that stays has them converging), and repaired by single pivots between Newton rounds (a
negative probability leaves, a better action off the support joins). A polish is kept only
when its certified NashGap is smaller than the best so far and it moves the policy by at most
``min(0.1, 100 tau / max|R|)`` (so that it lands on the equilibrium the path is heading to,
not on another one nearby). The best certified policy so far is kept, and the path stops as
soon as its NashGap is at most ``gap_tol`` (status ``CONVERGED``).

The guarantee is the certificate: :func:`jaxmail.nash_gap` of the returned policy, computed from
scratch (exact evaluation and policy-iteration best responses) and independent of the path.
``status`` says how the path ended: ``CONVERGED`` means exactly "certified NashGap <=
``gap_tol``"; ``END_REACHED`` means the path reached ``end_temperature`` without that
certificate; ``CAP_REACHED`` and ``PATH_LOST`` are failures of the path following (the returned
policy is then the best certified one met, with its certificate).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.linalg import lu_factor, lu_solve

from jaxmail import _contract, _linalg
from jaxmail.game import MarkovGame
from jaxmail.responses import NashGap, masked, nash_gap, pad_axis, padded, padded_action_mask
from jaxmail.tolerances import homotopy_corrector_tol, nash_gap_zero_tol

__all__ = [
    "CAP_REACHED",
    "CONVERGED",
    "END_REACHED",
    "PATH_LOST",
    "STATUS",
    "Homotopy",
    "qre_homotopy",
]

Array = jax.Array

CONVERGED, CAP_REACHED, PATH_LOST, END_REACHED = 0, 1, 2, 3
STATUS = ("converged", "cap reached", "path lost", "end temperature reached")  # STATUS[code]
_RUNNING = -1

_COS_TURN = 0.9  # smallest accepted cosine between successive tangents (about 25 degrees)
_FAST_STEPS = 3  # chord steps above the tolerance under which the step doubles ...
_SLOW_STEPS = 5  # ... grows by _GROW (else it stays)
_GROW = 1.25
_OVERSHOOT = 1.5  # a round's last step aims at l_k + 0.5 (l_k - l), so it ends past l_k
_FIRST_CHECKPOINT = 10.0  # l of the first certificate (tau = max|R| / 10) ...
_CHECKPOINT_RATIO = 3.0
_POLISH_RADIUS = 0.1  # largest move of a polish (see ``certify``)
_POLISH_ROUNDS = 3  # support repairs of the polish
_ELASTICITY = 2.0  # support test: see ``_support``


class Homotopy(NamedTuple):
    """The result of :func:`qre_homotopy`.

    Attributes:
      policy: ``n`` arrays ``[S, A_i]``: the policy with the smallest certified NashGap among
        the checkpoints' QREs and their polishes.
      qre_policy: ``n`` arrays ``[S, A_i]``: the QRE at the last checkpoint (temperature
        ``temperature``), renormalised.
      temperature: ``[]`` ``tau = max|R| / l`` of the last checkpoint (``inf`` at ``l = 0``).
      path_length: ``[]`` arclength of the followed curve in ``(y, l)`` coordinates.
      status: ``[]`` int32: ``CONVERGED`` (0, the certified NashGap is at most ``gap_tol``),
        ``CAP_REACHED`` (1, ``max_steps`` attempts taken first), ``PATH_LOST`` (2, the step
        size fell below ``min_step``, the point became non-finite, or the start could not be
        corrected) or ``END_REACHED`` (3, the path reached ``end_temperature`` but no
        checkpoint certified ``gap_tol``); ``STATUS[status]`` names it.
      iterations: ``[]`` int32 predictor-corrector attempts (accepted or not).
      turning_points: ``[]`` int32 sign changes of the tangent's ``l``-component.
      polished: ``[]`` bool: ``policy`` is a support polish (not a point of the path).
      nash_gap: the :class:`~jaxmail.NashGap` certificate of ``policy``.
    """

    policy: tuple[Array, ...]
    qre_policy: tuple[Array, ...]
    temperature: Array
    path_length: Array
    status: Array
    iterations: Array
    turning_points: Array
    polished: Array
    nash_gap: NashGap


# ----------------------------------------------------------------------------------------------
# Argument checks.
# ----------------------------------------------------------------------------------------------


def _check_count(name, value, minimum=1):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}: expected a Python int (static), got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name}: must be at least {minimum}, got {value}")
    return int(value)


def _check_scalar(name, value, dtype, *, allow_inf=False):
    shape = tuple(np.shape(value))
    if shape != ():
        raise ValueError(f"{name}: expected a scalar, got shape {shape} (vmap over values)")
    if not isinstance(value, jax.core.Tracer):
        v = float(np.asarray(value, dtype=np.float64))
        if np.isnan(v) or (np.isinf(v) and not allow_inf) or v <= 0.0:
            raise ValueError(f"{name}: must be {'> 0' if allow_inf else 'finite and > 0'}, got {v}")
    return jnp.asarray(value, dtype)


def default_end_temperature(dtype) -> float:
    """``1e-6`` (float64) or ``1e-3`` (float32), in units of ``max |R|``.

    The corrector's Jacobian has entries of size ``lambda * max|Q|`` on the support, so its
    condition grows like ``1 / tau``; these keep it well inside the dtype's precision, and they
    separate the support from actions whose Q-gap exceeds about ``30 tau`` (``exp(-30) ~ 1e-13``).
    """
    return 1e-6 if jnp.dtype(dtype) == jnp.float64 else 1e-3


# ----------------------------------------------------------------------------------------------
# The homotopy function.
# ----------------------------------------------------------------------------------------------


def _unpad(game, z):
    return tuple(z[i, :, :a] for i, a in enumerate(game.num_actions))


def _evaluate(game, policy, *, derivative):
    """``Q [n, S, A]`` (padded with zeros) and, if ``derivative``, ``dQ/dpi [n, S, A, n, S, A]``.

    ``V = M^{-1} r_pi`` with ``M = I - gamma P_pi``; ``W_i(s, a) = R_i(s, a) + gamma P(s, a) V_i``
    (joint actions); ``Q_i(s, a_i) = E_{a_-i ~ pi_-i} W_i(s, a)``. The policy need not be
    normalised (the path's ``exp(y)`` is, up to the corrector's tolerance), and the derivative
    is that of these formulas in every direction:

        dQ_i(s, a) / dpi_j(s', b) = gamma [P_i M^{-1}](s, a; s') G_ij(s', b)
                                    + [s = s', j != i] K_ij(s, a, b),

    ``P_i(s, a; .) = E_{a_-i} P(s, a, .)`` (player ``i``'s induced transitions),
    ``G_ij(s, b) = E_{a_-j} W_i(s, (b, a_-j))`` (how ``r_pi + gamma P_pi V_i`` moves with
    ``pi_j(b|s)``, so ``dV_i = M^{-1} G_ij dpi_j``), ``K_ij(s, a, b) = E_{a_-ij} W_i(s, (a, b,
    a_-ij))`` (the direct dependence of ``Q_i`` on the others' policies). Cost: one inverse of
    the ``[S, S]`` matrix ``M`` and ``O(n^2)`` passes over the ``[S, A_1..A_n]`` tensors, against
    ``n S A`` passes for the same matrix by forward-mode autodiff.
    """
    n, s_count = game.num_players, game.num_states
    a_max = max(game.num_actions)
    gamma = game.discount
    reward = jnp.moveaxis(game.reward, 0, -1)  # [S, A.., n]
    p_pi = _contract.contract_all(game.transition, policy, trailing=1)
    r_pi = _contract.contract_all(reward, policy, trailing=1)  # [S, n]
    m = jnp.eye(s_count, dtype=p_pi.dtype) - gamma * p_pi
    if derivative:
        minv = jnp.linalg.inv(m)
        v = minv @ r_pi
    else:
        v = jnp.linalg.solve(m, r_pi)
    w = reward + gamma * jnp.tensordot(game.transition, v, axes=1)  # [S, A.., n]
    g = _contract.induced_tensors(w, policy, trailing=1)  # j: [S, A_j, n]

    def pad(x, axis):
        return pad_axis(x, axis, a_max)

    q = jnp.stack([pad(g[i][..., i], 1) for i in range(n)])
    if not derivative:
        return q, None
    induced = _contract.induced_tensors(game.transition, policy, trailing=1)  # i: [S, A_i, S]
    players = list(range(n))
    k = {}
    for i in range(n):
        for j in range(i + 1, n):
            others = [p for p in players if p not in (i, j)]
            kij = _contract.contract(w, policy, players, others, trailing=1)  # [S, A_i, A_j, n]
            k[i, j] = kij[..., i]
            k[j, i] = jnp.swapaxes(kij[..., j], 1, 2)
    eye = jnp.eye(s_count, dtype=w.dtype)
    rows = []
    for i in range(n):
        b = gamma * jnp.einsum("sat,tu->sau", induced[i], minv)  # [S, A_i, S]
        blocks = []
        for j in range(n):
            block = b[:, :, :, None] * g[j][None, None, :, :, i]  # [S, A_i, S, A_j]
            if j != i:
                block = block + eye[:, None, :, None] * k[i, j][:, :, None, :]
            blocks.append(pad(pad(block, 1), 3))
        rows.append(jnp.stack(blocks, axis=2))  # [S, A, n, S, A]
    return q, jnp.stack(rows)


def _system(game, mask, scale, x, *, derivative=True):
    """``H(x)`` ``[N]`` and (if ``derivative``) its Jacobian ``[N, N + 1]``; ``x = (y, l)``.

    ``H = y - log_softmax(lambda Q)``, ``lambda = l / scale``; with ``sigma = softmax(lambda Q)``
    and ``pi = exp(y)``: ``dH/dy = I - lambda (dQ - sigma^T dQ) diag(pi)`` (row by row) and
    ``dH/dl = -(Q - sigma^T Q) / scale`` on the real actions; ``H = y`` on padded ones.
    """
    shape = mask.shape
    n_y = mask.size
    y = x[:-1].reshape(shape)
    lam = x[-1] / scale
    pi = jnp.where(mask, jnp.exp(jnp.where(mask, y, 0.0)), 0.0)
    q, dq = _evaluate(game, _unpad(game, pi), derivative=derivative)
    z = masked(lam * q, mask)
    log_soft = z - jax.scipy.special.logsumexp(z, axis=-1, keepdims=True)
    h = jnp.where(mask, y - log_soft, y).ravel()
    if not derivative:
        return h, None
    sigma = jnp.where(mask, jnp.exp(log_soft), 0.0)
    dq_c = dq - jnp.einsum("isa,isajtb->isjtb", sigma, dq)[:, :, None]
    jy = jnp.where(mask[:, :, :, None, None, None], lam * dq_c * pi, 0.0).reshape(n_y, n_y)
    jy = jnp.eye(n_y, dtype=x.dtype) - jy
    jl = jnp.where(mask, q - jnp.sum(sigma * q, axis=-1, keepdims=True), 0.0) / scale
    return h, jnp.concatenate([jy, -jl.reshape(n_y, 1)], axis=1)


def _weights(x, mask, floor):
    """``[N + 1]`` weights of the arclength metric: ``max(pi, floor)`` for ``y``, 1 for ``l``.

    An action's log-probability enters the equations only through ``pi = exp(y)``, so an action
    far off the support (``pi ~ 0``, ``y ~ -lambda * gap`` exactly linear in ``lambda``) would
    dominate the Euclidean arclength and throttle the steps without being hard to follow;
    weighting ``y`` by ``pi`` measures the steps by how much the policy moves.
    """
    y = x[:-1].reshape(mask.shape)
    p = jnp.where(mask, jnp.exp(jnp.where(mask, y, 0.0)), 0.0)
    return jnp.concatenate([jnp.maximum(p, floor).ravel(), jnp.ones((1,), x.dtype)])


def _rel_error(h, x):
    return jnp.max(jnp.abs(h) / jnp.maximum(1.0, jnp.abs(x[: h.shape[0]])))


# ----------------------------------------------------------------------------------------------
# The solver.
# ----------------------------------------------------------------------------------------------


def qre_homotopy(
    game: MarkovGame,
    *,
    start_temperature: float | Array = float("inf"),
    end_temperature: float | Array | None = None,
    tol: float | Array | None = None,
    max_steps: int = 1000,
    corrector_steps: int = 8,
    initial_step: float | Array = 0.1,
    min_step: float | Array | None = None,
    polish: bool = True,
    polish_steps: int = 8,
    support_threshold: float | Array | None = None,
    gap_tol: float | Array | None = None,
) -> Homotopy:
    """A Nash equilibrium by following the logit-QRE curve from high temperature to ``tau -> 0``.

    Solves ``H(y, lambda) = y - log_softmax(lambda Q^{exp(y)}) = 0`` (module docstring) by
    pseudo-arclength predictor-corrector continuation from ``tau = start_temperature`` (the
    uniform policy when infinite, else the QRE found by Newton's method from the uniform policy,
    which is unique at high enough temperature) towards ``tau = end_temperature``, certifying
    (and polishing on its support) the path's point at checkpoints ``tau = max|R| / (10 * 3^k)``
    and stopping at the first certified NashGap ``<= gap_tol`` (module docstring). Temperatures
    are in reward units.

    Everything runs in fixed-shape ``lax.while_loop`` / ``lax.fori_loop`` loops in the game's
    dtype (float64 when ``jax_enable_x64`` is on), with no host round trips: it jits, vmaps over
    a batch of games (one compile per shape) and runs unchanged on an accelerator. The linear
    solves of a step are chained by data dependencies (no two independent LU calls side by side).

    Cost per step: one closed-form Jacobian (an ``[S, S]`` inverse and ``O(n^2)`` passes over
    the game tensors), one LU of the ``(N + 1)^2`` augmented matrix, ``corrector_steps``
    residuals. Per checkpoint: ``1 + _POLISH_ROUNDS`` NashGap certificates and
    ``_POLISH_ROUNDS * polish_steps`` Newton steps on ``N + n S`` unknowns.

    On a CPU, run with one BLAS thread (``OPENBLAS_NUM_THREADS=1`` before importing NumPy):
    the factorisations are small, and OpenBLAS's threads on a busy machine have made a
    ``160 x 160`` LU 100 times slower.

    Args:
      game: one game, any number of players and action counts.
      start_temperature: ``tau_0 > 0`` (array leaf); default ``inf`` (``lambda = 0``, exact start).
      end_temperature: ``tau_end > 0`` (array leaf); default :func:`default_end_temperature`
        ``* max|R|``.
      tol: corrector tolerance on the relative residual (array leaf); default
        :func:`jaxmail.tolerances.homotopy_corrector_tol`.
      max_steps: cap on predictor-corrector attempts (a Python int; traced, no recompile).
      corrector_steps: chord-Newton steps per attempt (static).
      initial_step: first arclength step (array leaf).
      min_step: the path is lost when the step falls below it; default ``1e-10``
        (float64) or ``1e-5`` (float32).
      polish: run the support polish (static).
      polish_steps: Newton steps of each round of the polish (static).
      support_threshold: where the path runs backwards in ``l`` (tangent ``t_l <= 0``), an
        action is in the polish's first support when ``pi_i(a|s) >=`` this; default ``1e-8``
        (float64) or ``1e-4`` (float32). Elsewhere the tangent decides (:func:`_support`).
      gap_tol: the certified NashGap that ends the path (array leaf); default
        :func:`jaxmail.tolerances.nash_gap_zero_tol`.

    Returns:
      A :class:`Homotopy`: ``policy``, ``qre_policy``, ``temperature``, ``path_length``,
      ``status`` (``CONVERGED``: certified NashGap ``<= gap_tol``), ``iterations``,
      ``turning_points``, ``polished`` and the certificate ``nash_gap`` (:func:`jaxmail.nash_gap`
      of ``policy``, computed apart from the path: the judge of the result).

    Raises:
      ValueError: a non-positive or NaN temperature, tolerance or step, a count below 1.

    Example:
      >>> with jax.enable_x64(True):
      ...     out = qre_homotopy(jm.games.matching_pennies())
      >>> STATUS[int(out.status)], float(out.nash_gap.nash_gap) < 1e-12
      ('converged', True)
    """
    if not isinstance(game, MarkovGame):
        raise TypeError(f"game: expected a MarkovGame, got {type(game).__name__}")
    dtype = game.dtype
    f64 = jnp.dtype(dtype) == jnp.float64
    max_steps = _check_count("max_steps", max_steps)
    corrector_steps = _check_count("corrector_steps", corrector_steps)
    polish_steps = _check_count("polish_steps", polish_steps)
    if end_temperature is None:
        end_temperature = default_end_temperature(dtype)
        relative_end = True
    else:
        relative_end = False
    args = dict(
        tau0=_check_scalar("start_temperature", start_temperature, dtype, allow_inf=True),
        tau1=_check_scalar("end_temperature", end_temperature, dtype),
        tol=_check_scalar("tol", homotopy_corrector_tol(dtype) if tol is None else tol, dtype),
        h0=_check_scalar("initial_step", initial_step, dtype),
        h_min=_check_scalar(
            "min_step", (1e-10 if f64 else 1e-5) if min_step is None else min_step, dtype
        ),
        threshold=_check_scalar(
            "support_threshold",
            (1e-8 if f64 else 1e-4) if support_threshold is None else support_threshold,
            dtype,
        ),
        gap_tol=None if gap_tol is None else _check_scalar("gap_tol", gap_tol, dtype),
        max_steps=jnp.asarray(max_steps, jnp.int32),  # an array leaf: a new cap does not recompile
    )
    return _qre_homotopy(
        game,
        **args,
        relative_end=relative_end,
        corrector_steps=corrector_steps,
        polish=bool(polish),
        polish_steps=polish_steps,
    )


@functools.partial(
    jax.jit,
    static_argnames=("relative_end", "corrector_steps", "polish", "polish_steps"),
)
def _qre_homotopy(
    game,
    tau0,
    tau1,
    tol,
    h0,
    h_min,
    threshold,
    gap_tol,
    max_steps,
    *,
    relative_end,
    corrector_steps,
    polish,
    polish_steps,
):
    dtype = game.dtype
    mask = padded_action_mask(game)
    n_y = mask.size
    scale = jnp.maximum(jnp.max(jnp.abs(game.reward)), jnp.finfo(dtype).tiny)
    l0 = jnp.where(jnp.isinf(tau0), 0.0, scale / tau0)
    l_end = 1.0 / tau1 if relative_end else scale / tau1
    e_last = jnp.zeros((n_y + 1,), dtype).at[-1].set(1.0)
    weight_floor = 1e-6
    gap_tol = nash_gap_zero_tol(game) if gap_tol is None else gap_tol

    def residual(x):
        return _system(game, mask, scale, x, derivative=False)[0]

    def linearize(x):
        return _system(game, mask, scale, x)

    # Start: the uniform policy, corrected by Newton's method at fixed l0 (exact when l0 = 0).
    counts = jnp.asarray(game.num_actions, dtype)[:, None, None]
    y0 = jnp.where(mask, -jnp.log(counts), 0.0).ravel()
    x0 = jnp.concatenate([y0, l0[None]])

    def newton_start(_, x):
        h, jac = linearize(x)
        step = jnp.linalg.solve(jac[:, :-1], h)
        return x.at[:-1].add(-step)

    x0 = lax.fori_loop(0, 8, newton_start, x0)
    h_start, jac0 = linearize(x0)
    start_ok = jnp.all(jnp.isfinite(x0)) & (_rel_error(h_start, x0) <= tol)
    lu0 = lu_factor(jnp.concatenate([jac0, e_last[None]], axis=0))
    t0 = lu_solve(lu0, e_last)
    t0 = t0 / jnp.sqrt(jnp.sum(_weights(x0, mask, weight_floor) ** 2 * t0**2))

    def cond(c):
        return (c["status"] == _RUNNING) & (c["x"][-1] < c["target"])

    def body(c):
        x, t, h = c["x"], c["t"], c["h"]
        l_end = c["target"]  # this round's checkpoint
        w2 = _weights(x, mask, weight_floor) ** 2
        t = t / jnp.sqrt(jnp.sum(w2 * t**2))  # unit length in this point's metric
        # Aim past l_end on the last step (see _OVERSHOOT) rather than land on it exactly.
        to_end = _OVERSHOOT * (l_end - x[-1]) / jnp.where(t[-1] > 0, t[-1], 1.0)
        h_eff = jnp.where(t[-1] > 0, jnp.minimum(h, jnp.maximum(to_end, h_min)), h)
        x_pred = x + h_eff * t
        # ONE Jacobian per step, at the predicted point: it serves the chord corrector (which
        # then contracts at a rate O(h^2 curvature)) and gives the next tangent.
        h_pred, jac = linearize(x_pred)
        normal = w2 * t  # the hyperplane normal and the orientation row, in the weighted metric
        lu = lu_factor(jnp.concatenate([jac, normal[None]], axis=0))
        t_new = lu_solve(lu, e_last)
        t_new = t_new / jnp.sqrt(jnp.sum(w2 * t_new**2))

        def chord(j, cc):
            xc, hx, used = cc
            r = jnp.concatenate([hx, (normal @ (xc - x_pred))[None]])
            xn = xc - lu_solve(lu, r)
            # Steps taken while the residual was above the tolerance (later ones only polish
            # rounding noise, which the condition number ~ lambda max|Q| amplifies).
            used = used + (_rel_error(hx, xc) > tol).astype(jnp.int32)
            return xn, residual(xn), used

        xc, hc, used = lax.fori_loop(
            0, corrector_steps, chord, (x_pred, h_pred, jnp.asarray(0, jnp.int32))
        )
        finite = jnp.all(jnp.isfinite(xc)) & jnp.all(jnp.isfinite(t_new))
        # The corrector must stay near the prediction (a long correction may land on another
        # branch): its move, in the step's metric, at most half the step.
        moved = jnp.sqrt(jnp.sum(w2 * (xc - x_pred) ** 2))
        ok = (
            finite
            & (_rel_error(hc, xc) <= tol)
            & (moved <= 0.5 * h_eff)
            & (normal @ t_new >= _COS_TURN)
        )
        grow = jnp.where(used <= _FAST_STEPS, 2.0, jnp.where(used <= _SLOW_STEPS, _GROW, 1.0))
        h_next = jnp.where(ok, h_eff * grow, 0.5 * h_eff)
        x_next = jnp.where(ok, xc, x)
        t_next = jnp.where(ok, t_new, t)
        turned = ok & (jnp.sign(t_new[-1]) != jnp.sign(t[-1])) & (t[-1] != 0)
        k = c["k"] + 1
        status = jnp.where(
            (h_next < h_min) | ~jnp.all(jnp.isfinite(x_next)),
            PATH_LOST,
            jnp.where(k >= max_steps, CAP_REACHED, _RUNNING),
        ).astype(jnp.int32)
        return dict(
            x=x_next,
            t=t_next,
            h=h_next,
            length=c["length"] + jnp.where(ok, jnp.linalg.norm(xc - x), 0.0),
            turns=c["turns"] + turned.astype(jnp.int32),
            k=k,
            status=status,
            target=c["target"],
        )

    def certify(x, t, dependency):
        """The path's point, its polishes, and the best of them by the certificate."""
        qre = _normalised(game, x[:-1].reshape(mask.shape), mask)
        gap = nash_gap(game, _linalg.after_tree(qre, dependency))
        if not polish:
            return qre, qre, gap, jnp.asarray(False)
        radius = jnp.minimum(_POLISH_RADIUS, 100.0 / jnp.maximum(x[-1], 1e-30))

        def one_round(_, carry):
            # Kept only when it lowers the certified gap AND stays near the path's point
            # (within min(0.1, 100 / l) = min(0.1, 100 tau / max|R|) in every entry): a QRE at
            # tau is O(tau) from the limit of its branch, so this keeps the polish on the
            # equilibrium the path is heading to rather than another one Newton's method
            # happens to reach from there.
            p, support, policy, best, polished = carry
            p, support = _polish_round(game, p, support, mask, scale, polish_steps)
            candidate = _unpad(game, p)
            gap_p = nash_gap(game, candidate)
            moved = jnp.max(jnp.stack([jnp.max(jnp.abs(a - b)) for a, b in zip(candidate, qre)]))
            better = (
                jnp.isfinite(gap_p.nash_gap) & (gap_p.nash_gap < best.nash_gap) & (moved <= radius)
            )
            p = _linalg.after(p, gap_p.nash_gap)  # the next round's solves wait for this one's
            return (
                p,
                support,
                _pick(better, candidate, policy),
                _pick(better, gap_p, best),
                polished | better,
            )

        p0 = padded(_linalg.after_tree(qre, gap.nash_gap), 1, mask.shape[-1])
        carry = (p0, _support(x, t, mask, threshold), qre, gap, jnp.asarray(False))
        _, _, policy, best, polished = lax.fori_loop(0, _POLISH_ROUNDS, one_round, carry)
        return qre, policy, best, polished

    def round_cond(r):
        return (r["round"] == 0) | (r["path"]["status"] == _RUNNING)

    def round_body(r):
        path = dict(r["path"], target=jnp.minimum(r["checkpoint"], l_end))
        path = lax.while_loop(cond, body, path)
        x = path["x"]
        qre, policy, gap, polished = certify(x, path["t"], r["gap"].nash_gap)
        better = gap.nash_gap <= r["gap"].nash_gap  # keep the best certificate seen
        status = jnp.where(
            _pick(better, gap, r["gap"]).nash_gap <= gap_tol,
            CONVERGED,
            jnp.where((path["status"] == _RUNNING) & (x[-1] >= l_end), END_REACHED, path["status"]),
        ).astype(jnp.int32)
        return dict(
            path=dict(path, status=status),
            checkpoint=jnp.maximum(r["checkpoint"] * _CHECKPOINT_RATIO, _FIRST_CHECKPOINT),
            qre=qre,
            policy=_pick(better, policy, r["policy"]),
            gap=_pick(better, gap, r["gap"]),
            polished=jnp.where(better, polished, r["polished"]),
            temperature=_temperature(scale, x[-1]),
            round=r["round"] + 1,
        )

    path0 = dict(
        x=x0,
        t=t0,
        h=h0,
        length=jnp.asarray(0.0, dtype),
        turns=jnp.asarray(0, jnp.int32),
        k=jnp.asarray(0, jnp.int32),
        status=jnp.where(start_ok, _RUNNING, PATH_LOST).astype(jnp.int32),
        target=l_end,
    )
    # The first round (always run) certifies the start: its target l0 needs no step. The
    # placeholders below lose every comparison with a real certificate (finite, so that
    # _linalg.after can chain on them).
    qre0 = _normalised(game, x0[:-1].reshape(mask.shape), mask)
    gap0 = jax.tree_util.tree_map(
        lambda s: jnp.full(s.shape, jnp.finfo(s.dtype).max if s.dtype == dtype else 0, s.dtype),
        jax.eval_shape(nash_gap, game, qre0),
    )
    rounds = dict(
        path=path0,
        checkpoint=l0,
        qre=qre0,
        policy=qre0,
        gap=gap0,
        polished=jnp.asarray(False),
        temperature=_temperature(scale, x0[-1]),
        round=jnp.asarray(0, jnp.int32),
    )
    r = lax.while_loop(round_cond, round_body, rounds)
    p = r["path"]
    return Homotopy(
        r["policy"],
        r["qre"],
        r["temperature"],
        p["length"],
        p["status"],
        p["k"],
        p["turns"],
        r["polished"],
        r["gap"],
    )


def _support(x, t, mask, threshold):
    """``[n, S, A]`` bool: the actions the path's point ``x`` (tangent ``t``) keeps in play.

    On the QRE curve ``y_a - y_b = lambda (Q_a - Q_b)``, so for an action that leaves the
    support ``l d(y_a - y_top)/dl ~ -lambda gap_a -> -inf`` while for one that stays
    ``y_a - y_top -> log(sigma_a / sigma_top)`` and its elasticity ``-> 0``. An action is kept
    when that elasticity (from the tangent) is above ``-_ELASTICITY``; the row's most likely
    action always is. Where the curve goes backwards in ``l`` (``t_l <= 0``) the probability
    ``>= threshold`` decides instead.
    """
    y = jnp.where(mask, x[:-1].reshape(mask.shape), -jnp.inf)
    top = jax.nn.one_hot(jnp.argmax(y, axis=-1), mask.shape[-1], dtype=bool)
    t_l = t[-1]
    forward = t_l > 0
    slope = t[:-1].reshape(mask.shape) / jnp.where(forward, t_l, 1.0)
    elasticity = x[-1] * (slope - jnp.sum(jnp.where(top, slope, 0.0), axis=-1, keepdims=True))
    by_tangent = elasticity > -_ELASTICITY
    by_threshold = jnp.exp(jnp.where(mask, y, 0.0)) >= threshold
    return mask & (top | jnp.where(forward, by_tangent, by_threshold))


def _pick(flag, a, b):
    return jax.tree_util.tree_map(lambda u, v: jnp.where(flag, u, v), a, b)


def _temperature(scale, lam):
    return jnp.where(lam > 0, scale / jnp.where(lam > 0, lam, 1.0), jnp.inf)


def _normalised(game, z, mask):
    """Rows of ``exp(z)`` on the real actions, renormalised (the path keeps them normalised up
    to ``tol``; the certificate needs exact distributions)."""
    p = jnp.where(mask, jnp.exp(jnp.where(mask, z, -jnp.inf)), 0.0)
    p = p / jnp.sum(p, axis=-1, keepdims=True)
    return _unpad(game, p)


def _polish_round(game, p0, support, mask, scale, steps):
    """One round of Newton's method on the Nash conditions restricted to a support.

    Unknowns ``u = (p [n, S, A], v [n, S])``, from ``p0 [n, S, A]`` (padded) and
    ``v = sum_a p0 Q^{p0}``; equations ``Q_i^p(s, a) - v_i(s) = 0`` on the support, ``p = 0``
    off it, ``sum_a p_i(a|s) - 1 = 0``; ``steps`` Newton steps with the closed-form Jacobian.

    Returns:
      ``(p, support')``: the result clipped to ``p >= 0`` on the support and renormalised
      (``[n, S, A]``), and the support repaired by one pivot: the worst violation changes
      sides (a negative probability leaves, or an action off the support with
      ``Q_i^p(s, a) > v_i(s)`` joins; several at once overshoot). Where Newton's method broke
      down (non-finite), ``(p0, support)``.
    """
    shape = mask.shape
    n_p, n_v = mask.size, shape[0] * shape[1]
    # d(sum_a p_i(a|s)) / dp and d(q - v) / dv: constant.
    sums = jnp.repeat(jnp.eye(n_v, dtype=p0.dtype), shape[-1], axis=1)  # [n S, n S A]
    bottom = jnp.concatenate([sums, jnp.zeros((n_v, n_v), p0.dtype)], axis=1)

    def newton(_, u):
        p = u[:n_p].reshape(shape)
        v = u[n_p:].reshape(shape[:2])
        q, dq = _evaluate(game, _unpad(game, p), derivative=True)
        eq = jnp.where(support, q - v[..., None], p)
        f = jnp.concatenate([eq.ravel(), (jnp.sum(p, axis=-1) - 1.0).ravel()])
        top_left = jnp.where(
            support.reshape(-1, 1), dq.reshape(n_p, n_p), jnp.eye(n_p, dtype=p.dtype)
        )
        top_right = jnp.where(support.reshape(-1, 1), -sums.T, 0.0)
        jac = jnp.concatenate([jnp.concatenate([top_left, top_right], axis=1), bottom], axis=0)
        step = jnp.linalg.solve(jac, f)
        return jnp.where(jnp.all(jnp.isfinite(step)), u - step, u)

    q0, _ = _evaluate(game, _unpad(game, p0), derivative=False)
    u = lax.fori_loop(0, steps, newton, jnp.concatenate([p0.ravel(), jnp.sum(p0 * q0, -1).ravel()]))
    raw = u[:n_p].reshape(shape)
    v = u[n_p:].reshape(shape[:2])
    finite = jnp.all(jnp.isfinite(u))
    raw = jnp.where(finite, raw, p0)
    q, _ = _evaluate(game, _unpad(game, raw), derivative=False)
    violation = jnp.where(support, -raw, (q - v[..., None]) / scale)
    violation = jnp.where(mask, violation, -jnp.inf).ravel()
    worst = jnp.argmax(violation)
    flip = (jnp.arange(n_p) == worst) & (violation[worst] > 0) & finite
    p = jnp.clip(raw, 0.0, None) * support
    total = jnp.sum(p, axis=-1, keepdims=True)
    p = jnp.where(total > 0, p / jnp.where(total > 0, total, 1.0), p0)
    return p, support ^ flip.reshape(shape)
