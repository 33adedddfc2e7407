"""Occupancy-measure matching: the product policy whose EXACT occupancy is closest to a target.

The learner is a product policy ``pi_i = softmax(theta_i)`` with logits ``theta_i [S, A_i]``. Its
measures come from the exact occupancy ``d^pi`` (:func:`jaxmail.state_occupancy`, one linear
solve differentiated implicitly), so the objective below is minimised by exact gradients:

    L(theta) = D(m^pi, m_target) - entropy * H(pi),
    H(pi)    = sum_s d^pi(s) sum_i H(pi_i(.|s)),   H(p) = -sum_a p(a) log p(a),

``H`` the (normalised) causal entropy of the joint policy, which for a product policy is the
sum of the players' entropies: entropy-regularised occupancy matching, GAIL's objective with the
discriminator solved in closed form (Ho & Ermon 2016; MA-GAIL, docs/theory.md §6). The measure
``m`` (``measure=``) is

* ``"state"``: ``d^pi(s)``, ``[S]`` (what eps_mu compares, docs/theory.md §2);
* ``"state_action"``: the JOINT ``rho^pi(s, a) = d^pi(s) prod_i pi_i(a_i|s)``,
  ``[S, A_1, ..., A_n]`` (what eps_rho compares);
* ``"per_player"``: the players' marginals ``rho_i^pi(s, a_i) = d^pi(s) pi_i(a_i|s)``,
  ``[S, A_i]``, with ``D = sum_i D(rho_i^pi, rho_i_target)``.

The target is either a :class:`~jaxmail.data.Dataset` of demonstrations (its empirical measures,
:mod:`jaxmail.data`) or an expert policy (its exact measures).

Divergences (:func:`divergence`; ``p`` is the learner's measure, ``q`` the target's, both
normalised, sums over every entry):

* ``"l1"``: pseudo-Huber-smoothed L1, ``sum sqrt((p - q)^2 + c^2) - c`` with ``c = smoothing``;
  it lies within ``c`` per entry of ``||p - q||_1`` (exact at ``c = 0``, where the gradient at a
  tie is the subgradient 0).
* ``"kl"``: forward ``KL(q || p) = sum q log(q / p)`` (mode covering; the maximum-likelihood
  direction).
* ``"reverse_kl"``: ``KL(p || q) = sum p log(p / q)`` (mode seeking; what GAIL's logit reward
  minimises).
* ``"js"``: Jensen-Shannon ``(KL(p || m) + KL(q || m)) / 2``, ``m = (p + q) / 2``; at most
  ``log 2``.
* ``"chi2"``: Pearson ``chi^2(q || p) = sum (q - p)^2 / p = E_p[(q/p - 1)^2]``, the target
  against the learner (the learner's measure is the reference in the denominator).

NaN safety: ``0 log 0 = 0`` (entries where the first argument of ``x log y`` is zero contribute
exactly zero, gradients included), and every probability inside a ``log`` or a denominator is
clipped from below at :func:`probability_floor` ``= eps^2`` of the dtype (``1.4e-14`` in
float32, ``4.9e-32`` in float64): an infinite divergence (the target has mass where the learner
has none, in ``"kl"`` and ``"chi2"``; the converse in ``"reverse_kl"``) becomes large and finite
and its gradient stays finite.

Shapes: ``n`` players, ``S`` states, ``A_i`` actions of player ``i``, ``T`` optimisation steps.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import optax

from jaxmail import _linalg
from jaxmail._args import check_choice, check_nonnegative
from jaxmail.data import (
    Dataset,
    check_dataset,
    empirical_joint_state_action_occupancy,
    empirical_state_action_occupancy,
    empirical_state_occupancy,
)
from jaxmail.evaluation import state_occupancy
from jaxmail.game import MarkovGame
from jaxmail.gradients import logit_entropy
from jaxmail.imitation.base import Fit, check_optimizer, check_steps, initial_logits, minimize
from jaxmail.policy import check_policy, joint_policy

Array = jax.Array
Measure = Array | tuple[Array, ...]

DIVERGENCES = ("l1", "kl", "reverse_kl", "js", "chi2")
MEASURES = ("state", "state_action", "per_player")

# Created once, so that repeated calls with the default hit the jit cache (the optimizer is a
# static argument: a new optax object, even an identical one, compiles again).
DEFAULT_OPTIMIZER = optax.adam(0.05)


def probability_floor(dtype) -> float:
    """``eps^2`` of ``dtype``: the smallest probability used inside a ``log`` or a denominator.

    Far below any probability that matters (``1.4e-14`` in float32), yet ``1/floor`` and
    ``q^2/floor^2`` stay finite, so gradients through a clipped entry never overflow.
    """
    return float(jnp.finfo(dtype).eps) ** 2


def _xlogy(x: Array, y: Array, floor: float) -> Array:
    """``x log max(y, floor)`` with ``0 log y = 0`` (value and gradient) wherever ``x == 0``."""
    safe = x * jnp.log(jnp.maximum(y, floor))
    return jnp.where(x > 0, safe, jnp.zeros_like(safe))


def _divergence(p: Array, q: Array, kind: str, smoothing: Array) -> Array:
    floor = probability_floor(p.dtype)
    if kind == "l1":
        # sqrt(max(., tiny)): a finite gradient (0) at p == q even when smoothing == 0.
        tiny = jnp.finfo(p.dtype).tiny
        return jnp.sum(jnp.sqrt(jnp.maximum((p - q) ** 2 + smoothing**2, tiny)) - smoothing)
    if kind == "kl":
        return jnp.sum(_xlogy(q, q, floor) - _xlogy(q, p, floor))
    if kind == "reverse_kl":
        return jnp.sum(_xlogy(p, p, floor) - _xlogy(p, q, floor))
    if kind == "js":
        m = 0.5 * (p + q)
        kl_p = _xlogy(p, p, floor) - _xlogy(p, m, floor)
        kl_q = _xlogy(q, q, floor) - _xlogy(q, m, floor)
        return 0.5 * jnp.sum(kl_p + kl_q)
    # "chi2": Pearson chi^2 of the target against the learner.
    return jnp.sum((q - p) ** 2 / jnp.maximum(p, floor))


def divergence(p: Array, q: Array, kind: str = "kl", *, smoothing: float | Array = 1e-6) -> Array:
    """A divergence between a learner measure ``p`` and a target measure ``q``.

    See the module docstring for the formulas; sums run over EVERY entry, so ``p`` and ``q`` may
    be ``[S]``, ``[S, A_i]`` or ``[S, A_1, ..., A_n]`` measures (normalised to sum 1 for the
    divergences to be non-negative). Zero at ``p = q``, positive otherwise; differentiable and
    NaN-free with zeros on either side.

    Args:
      p: the learner's measure, any shape.
      q: the target's measure, the same shape.
      kind: one of ``"l1"``, ``"kl"`` (``KL(q || p)``), ``"reverse_kl"`` (``KL(p || q)``),
        ``"js"``, ``"chi2"`` (``sum (q - p)^2 / p``).
      smoothing: ``c >= 0`` of the smoothed L1 (ignored by the others).

    Returns:
      ``[]`` the divergence.

    Raises:
      ValueError: an unknown ``kind`` or shapes that differ.

    Example:
      >>> p, q = jnp.array([0.5, 0.5]), jnp.array([1.0, 0.0])
      >>> float(divergence(p, q, "kl"))   # log 2: q puts all its mass where p has 1/2
      0.693...
    """
    check_choice("kind", kind, DIVERGENCES)
    p, q = jnp.asarray(p), jnp.asarray(q)
    if p.shape != q.shape:
        raise ValueError(f"p and q: shapes differ, {p.shape} and {q.shape}")
    dtype = jnp.result_type(p, q, float)
    return _divergence(p.astype(dtype), q.astype(dtype), kind, jnp.asarray(smoothing, dtype))


def _measure_divergence(p: Measure, q: Measure, kind: str, smoothing: Array) -> Array:
    if isinstance(p, tuple):  # per player: the sum of the players' divergences
        return sum(_divergence(a, b, kind, smoothing) for a, b in zip(p, q))
    return _divergence(p, q, kind, smoothing)


def policy_entropy(policy: Sequence[Array]) -> Array:
    """``[S]``: ``sum_i H(pi_i(.|s))``, the entropy of the product policy at each state.

    Rows are clipped at :func:`probability_floor` inside the ``log`` (``0 log 0 = 0``).
    """
    total = 0.0
    for p in policy:
        total = total + jnp.sum(-_xlogy(p, p, probability_floor(p.dtype)), axis=-1)
    return total


def _measure(occupancy: Array, policy: Sequence[Array], measure: str) -> Measure:
    """The learner's (or an expert's) measure from its state occupancy ``d [S]``."""
    if measure == "state":
        return occupancy
    if measure == "per_player":
        return tuple(occupancy[:, None] * p for p in policy)
    jp = joint_policy(policy)
    return jp * occupancy.reshape((-1,) + (1,) * (jp.ndim - 1))


def learner_measure(game: MarkovGame, policy: Sequence[Array], *, measure: str) -> Measure:
    """The exact measure of a policy: ``d [S]``, joint ``rho [S, A_1..A_n]`` or ``n`` ``[S, A_i]``.

    One occupancy solve; differentiable in the policy and the game.
    """
    check_choice("measure", measure, MEASURES)
    policy = check_policy(game, policy)
    return _measure(state_occupancy(game, policy), policy, measure)


def target_measure(game: MarkovGame, target: Dataset | Sequence[Array], *, measure: str) -> Measure:
    """The target's measure: empirical for a :class:`~jaxmail.data.Dataset`, exact for a policy.

    Shapes as :func:`learner_measure`.

    Raises:
      TypeError, ValueError: a dataset that does not fit the game, or a malformed policy.
    """
    check_choice("measure", measure, MEASURES)
    if isinstance(target, Dataset):
        check_dataset(game, target, name="target")
        if measure == "state":
            return empirical_state_occupancy(game, target)
        if measure == "per_player":
            return empirical_state_action_occupancy(game, target)
        return empirical_joint_state_action_occupancy(game, target)
    return learner_measure(game, check_policy(game, target, name="target"), measure=measure)


def matching_loss(
    game: MarkovGame,
    logits: Sequence[Array],
    target: Measure,
    *,
    divergence: str = "kl",
    measure: str = "state_action",
    entropy: float | Array = 0.0,
    smoothing: float | Array = 1e-6,
) -> Array:
    """The objective ``L(theta) = D(m^pi, m_target) - entropy * H(pi)`` of the module docstring.

    Args:
      game: one game.
      logits: ``n`` arrays ``[S, A_i]``; ``pi_i = softmax(logits_i)``.
      target: the target measure, shaped as ``measure`` says (:func:`target_measure`).
      divergence: as :func:`measure_matching`.
      measure: as :func:`measure_matching`.
      entropy: as :func:`measure_matching`.
      smoothing: as :func:`measure_matching`.

    Returns:
      ``[]`` the loss; differentiable in ``logits`` (through the exact occupancy).
    """
    kind = check_choice("divergence", divergence, DIVERGENCES)
    check_choice("measure", measure, MEASURES)
    dtype = game.dtype
    policy = tuple(jax.nn.softmax(x, axis=-1) for x in logits)
    d = state_occupancy(game, policy)
    learned = _measure(d, policy, measure)
    fit = _measure_divergence(learned, target, kind, jnp.asarray(smoothing, dtype))
    bonus = sum(logit_entropy(x) for x in logits)  # [S] sum_i H(pi_i(.|s))
    return fit - jnp.asarray(entropy, dtype) * (d @ bonus)


def measure_matching(
    game: MarkovGame,
    target: Dataset | Sequence[Array],
    *,
    divergence: str = "kl",
    measure: str = "state_action",
    entropy: float | Array = 0.0,
    smoothing: float | Array = 1e-6,
    optimizer: optax.GradientTransformation | None = None,
    steps: int = 1000,
    init: Sequence[Array] | None = None,
) -> Fit:
    """Fits a product policy whose exact occupancy measure matches a target.

    Minimises ``L(theta) = D(m^pi, m_target) - entropy * H(pi)`` (module docstring) over
    per-player logits with ``steps`` optax updates in one ``lax.scan``; every gradient goes
    through the exact occupancy (no sampling). ``entropy`` and ``smoothing`` are array leaves: a
    ``jax.vmap`` over them compiles once. ``divergence``, ``measure``, ``optimizer`` and
    ``steps`` are static: reuse ONE optimizer object across calls (an identical but new
    ``optax.adam(...)`` compiles again).

    With ``measure="state"`` a policy can match the target perfectly and still be exploitable
    (Lemma 1, docs/theory.md §4); with ``"state_action"`` the same holds where the target has no
    support (Theorem 2), but with a full-support expert an exact match recovers the expert
    (Theorem 1).

    Args:
      game: one game.
      target: a :class:`~jaxmail.data.Dataset` of demonstrations (empirical measures) or an
        expert policy, ``n`` arrays ``[S, A_i]`` (its exact measures).
      divergence: ``"kl"`` (``KL(target || learner)``), ``"reverse_kl"``, ``"js"``,
        ``"chi2"`` (``sum (target - learner)^2 / learner``) or ``"l1"`` (smoothed).
      measure: ``"state"``, ``"state_action"`` (joint) or ``"per_player"``.
      entropy: weight ``>= 0`` of the causal-entropy bonus.
      smoothing: ``c`` of the smoothed L1 (``"l1"`` only).
      optimizer: an optax transformation; default ``optax.adam(0.05)`` (:data:`DEFAULT_OPTIMIZER`).
      steps: number of updates (static).
      init: the starting policy (``n`` arrays ``[S, A_i]``; logits ``max(log p, -30)``);
        default uniform (zero logits).

    Returns:
      :class:`~jaxmail.imitation.Fit` with ``policy`` the learned policy, ``n`` arrays
      ``[S, A_i]``, and ``losses`` ``[steps]``, each before its update.

    Raises:
      ValueError: an unknown ``divergence`` or ``measure``, a bad ``steps``, a negative
        ``entropy`` or ``smoothing`` (when concrete), a target policy
        or ``init`` that does not fit the game, a dataset with the wrong number of players or
        out-of-range states/actions.
      TypeError: an ``optimizer`` that is not an optax transformation.

    Example:
      >>> ce = jm.games.lemma1_game(0.9)
      >>> fit = measure_matching(ce.game, ce.expert, measure="state", steps=200)
      >>> float(jm.state_occupancy_error(ce.game, fit.policy, ce.expert)) < 1e-3
      True
    """
    kind = check_choice("divergence", divergence, DIVERGENCES)
    measure = check_choice("measure", measure, MEASURES)
    optimizer = check_optimizer(DEFAULT_OPTIMIZER if optimizer is None else optimizer)
    steps = check_steps(steps)
    if isinstance(target, Dataset):
        target = check_dataset(game, target, name="target")
    else:
        target = check_policy(game, target, name="target")
    logits = initial_logits(game, init)
    hyper = (
        check_nonnegative("entropy", entropy, game.dtype),
        check_nonnegative("smoothing", smoothing, game.dtype),
    )
    policy, losses = _fit(game, target, logits, hyper, kind, measure, optimizer, steps)
    return Fit(policy, losses)


@functools.partial(jax.jit, static_argnames=("kind", "measure", "optimizer", "steps"))
def _fit(game, target, logits, hyper, kind, measure, optimizer, steps):
    entropy, smoothing = hyper
    goal = target_measure(game, target, measure=measure)
    # The target's own occupancy solve (expert targets) and the learner's must not run side by
    # side (jaxlib 0.10 CPU deadlock, see jaxmail._linalg): start the learner after the target.
    first = jax.tree_util.tree_leaves(goal)[0]
    logits = tuple(_linalg.after(x, first) for x in logits)

    def loss(theta):
        return matching_loss(
            game,
            theta,
            goal,
            divergence=kind,
            measure=measure,
            entropy=entropy,
            smoothing=smoothing,
        )

    logits, losses = minimize(loss, logits, optimizer, steps)
    return tuple(jax.nn.softmax(x, axis=-1) for x in logits), losses
