"""Behavioural cloning: per-player, per-state maximum likelihood from demonstrations.

Tabular BC is decentralised by construction: player ``i``'s policy at state ``s`` depends only on
the counts ``c_i(s, a_i)`` of its own actions at ``s`` (:func:`jaxmail.data.action_counts`).
Two learners, which share nothing but the counts:

:func:`behavior_cloning` is the closed form, additive smoothing ``alpha`` towards a prior ``q_i``
(uniform unless given):

    pi_i(a|s) = (c_i(s, a) + alpha A_i q_i(a|s)) / (c(s) + alpha A_i),   c(s) = sum_a c_i(s, a),

which is the MLE at ``alpha = 0`` and the prior ``q_i(.|s)`` at every state never seen. With a
uniform prior the numerator is ``c_i(s, a) + alpha`` (Laplace smoothing).

:func:`gradient_behavior_cloning` minimises, over logits ``theta_i [S, A_i]`` with optax in one
``lax.scan``,

    L(theta) = sum_i sum_s (c(s)/C) [ CE(y_i(s), pi_i(.|s)) - entropy * H(pi_i(.|s)) ]
               + (l2 / 2) sum_i ||theta_i||^2,

``C`` the number of samples, ``y_i(s)`` the empirical action distribution at ``s`` smoothed with
``optax.smooth_labels(., label_smoothing)``, ``pi_i = softmax(theta_i)``. The cross entropy over
the counts equals the mean per-sample negative log-likelihood (up to a constant of the labels).

(Both were once one function with ``method="closed_form"`` / ``method="gradient"``; ``method=``
is gone: call the function of the method.)

Shapes: ``n`` players, ``S`` states, ``A_i`` actions of player ``i``, ``T`` gradient steps.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import optax

from jaxmail.data import Dataset, action_counts, check_dataset
from jaxmail.game import MarkovGame
from jaxmail.gradients import logit_entropy
from jaxmail.imitation.base import Fit, check_optimizer, check_steps, initial_logits, minimize
from jaxmail.policy import check_policy, uniform_policy

Array = jax.Array

# Created once, so that repeated calls with the default hit the jit cache (the optimizer is a
# static argument: a new optax object, even an identical one, compiles again).
DEFAULT_OPTIMIZER = optax.adam(0.1)


def behavior_cloning(
    game: MarkovGame,
    data: Dataset,
    *,
    smoothing: float | Array = 0.0,
    prior: Sequence[Array] | None = None,
    weighted: bool = False,
) -> Fit:
    """Closed-form behavioural cloning of every player: smoothed counting (module docstring).

    ``smoothing`` may be an array traced under ``vmap`` (a sweep compiles once); ``weighted`` is
    static. For BC by gradient descent on the logits (entropy, L2 and label-smoothing
    regularisers) use :func:`gradient_behavior_cloning`, which replaces the former
    ``method="gradient"``; passing ``method=`` here is a ``TypeError``.

    Args:
      game: the game (its shapes; the dataset is checked against it).
      data: demonstrations, usually of the expert (:func:`jaxmail.data.sample_demonstrations`).
      smoothing: ``alpha >= 0``, the additive smoothing.
      prior: ``n`` arrays ``[S, A_i]``: the policy at states never seen and the direction of
        the smoothing. Default uniform.
      weighted: count each step with its dataset weight (``gamma^t`` under fixed horizons)
        instead of 1.

    Returns:
      :class:`~jaxmail.imitation.Fit` with ``policy`` the cloned policy, ``n`` arrays
      ``[S, A_i]``, and ``losses`` of shape ``[0]`` (no iterations).

    Raises:
      ValueError: a dataset or ``prior`` that does not fit the game.

    Examples:
      >>> import jax, jaxmail as jm
      >>> game = jm.games.matching_pennies()
      >>> expert = jm.uniform_policy(game)
      >>> data = jm.data.sample_demonstrations(
      ...     jax.random.key(0), game, expert, num_trajectories=50, horizon=10)
      >>> bc = jm.imitation.behavior_cloning(game, data, smoothing=1.0)
      >>> [p.shape for p in bc.policy], bc.losses.shape
      ([(1, 2), (1, 2)], (0,))
    """
    check_dataset(game, data)
    prior = uniform_policy(game) if prior is None else check_policy(game, prior, name="prior")
    policy = _closed_form(game, data, jnp.asarray(smoothing, game.dtype), prior, weighted)
    return Fit(policy, jnp.zeros((0,), game.dtype))


def gradient_behavior_cloning(
    game: MarkovGame,
    data: Dataset,
    *,
    optimizer: optax.GradientTransformation | None = None,
    steps: int = 500,
    entropy: float | Array = 0.0,
    l2: float | Array = 0.0,
    label_smoothing: float | Array = 0.0,
    init: Sequence[Array] | None = None,
    weighted: bool = False,
) -> Fit:
    """Behavioural cloning by optax on per-player logits (the loss ``L`` of the module docstring).

    The regularisation weights (``entropy``, ``l2``, ``label_smoothing``) may be arrays traced
    under ``vmap``: a sweep over them compiles once. ``steps``, ``weighted`` and ``optimizer``
    are static; reuse one optimizer object across calls to hit the jit cache.

    Args:
      game: the game (its shapes; the dataset is checked against it).
      data: demonstrations, usually of the expert (:func:`jaxmail.data.sample_demonstrations`).
      optimizer: an optax transformation; default ``optax.adam(0.1)`` (:data:`DEFAULT_OPTIMIZER`).
      steps: number of gradient steps ``T`` (static).
      entropy: weight of the entropy bonus.
      l2: weight of the L2 penalty on the logits.
      label_smoothing: ``optax.smooth_labels`` parameter in ``[0, 1]``.
      init: the starting policy, ``n`` arrays ``[S, A_i]`` (logits ``max(log p, -30)``);
        default uniform (logits ``-log A_i``).
      weighted: count each step with its dataset weight instead of 1.

    Returns:
      :class:`~jaxmail.imitation.Fit` with ``policy`` ``n`` arrays ``[S, A_i]`` and ``losses``
      ``[T]``, the loss before each update.

    Raises:
      ValueError: a dataset or ``init`` that does not fit the game, a bad ``steps``.
      TypeError: an ``optimizer`` that is not an optax transformation.

    Examples:
      >>> fit = jm.imitation.gradient_behavior_cloning(game, data, steps=100, entropy=0.01)
      >>> fit.losses.shape
      (100,)
    """
    check_dataset(game, data)
    start = initial_logits(game, uniform_policy(game) if init is None else init, name="init")
    optimizer = check_optimizer(DEFAULT_OPTIMIZER if optimizer is None else optimizer)
    steps = check_steps(steps)
    regularisers = tuple(jnp.asarray(x, game.dtype) for x in (entropy, l2, label_smoothing))
    policy, losses = _gradient(game, data, start, regularisers, weighted, optimizer, steps)
    return Fit(policy, losses)


@functools.partial(jax.jit, static_argnames=("weighted",))
def _closed_form(game, data, smoothing, prior, weighted):
    counts = action_counts(game, data, weighted=weighted)
    policy = []
    for c, q in zip(counts, prior):
        num_actions = c.shape[-1]
        visits = jnp.sum(c, axis=-1, keepdims=True)
        denominator = visits + smoothing * num_actions
        smoothed = (c + smoothing * num_actions * q) / jnp.where(denominator > 0, denominator, 1.0)
        policy.append(jnp.where(denominator > 0, smoothed, q))
    return tuple(policy)


def bc_loss(
    logits: Sequence[Array],
    counts: Sequence[Array],
    *,
    entropy: float | Array = 0.0,
    l2: float | Array = 0.0,
    label_smoothing: float | Array = 0.0,
) -> Array:
    """The gradient-BC objective ``L(theta)`` of the module docstring.

    Args:
      logits: ``n`` arrays ``[S, A_i]``.
      counts: ``n`` arrays ``[S, A_i]`` of (possibly weighted) action counts.

    Returns:
      ``[]`` the loss, summed over players.
    """
    total = jnp.maximum(jnp.sum(counts[0]), jnp.finfo(counts[0].dtype).tiny)
    loss = 0.0
    for theta, c in zip(logits, counts):
        visits = jnp.sum(c, axis=-1)
        labels = c / jnp.where(visits > 0, visits, 1.0)[:, None]
        labels = optax.smooth_labels(labels, label_smoothing)
        cross_entropy = optax.softmax_cross_entropy(theta, labels)  # [S]
        loss += jnp.sum(visits * (cross_entropy - entropy * logit_entropy(theta))) / total
        loss += 0.5 * l2 * jnp.sum(theta**2)
    return loss


@functools.partial(jax.jit, static_argnames=("weighted", "optimizer", "steps"))
def _gradient(game, data, logits, regularisers, weighted, optimizer, steps):
    entropy, l2, label_smoothing = regularisers
    counts = action_counts(game, data, weighted=weighted)

    def loss(theta):
        return bc_loss(theta, counts, entropy=entropy, l2=l2, label_smoothing=label_smoothing)

    logits, losses = minimize(loss, logits, optimizer, steps)
    return tuple(jax.nn.softmax(x, axis=-1) for x in logits), losses
