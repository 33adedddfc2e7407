"""Behavioural cloning: per-player, per-state maximum likelihood from demonstrations.

Tabular BC is decentralised by construction: player ``i``'s policy at state ``s`` depends only on
the counts ``c_i(s, a_i)`` of its own actions at ``s`` (:func:`jaxmail.data.action_counts`).

Closed form (``method="closed_form"``), additive smoothing ``alpha`` towards a prior ``q_i``
(uniform unless given):

    pi_i(a|s) = (c_i(s, a) + alpha A_i q_i(a|s)) / (c(s) + alpha A_i),   c(s) = sum_a c_i(s, a),

which is the MLE at ``alpha = 0`` and the prior ``q_i(.|s)`` at every state never seen. With a
uniform prior the numerator is ``c_i(s, a) + alpha`` (Laplace smoothing).

Gradient BC (``method="gradient"``) minimises, over logits ``theta_i [S, A_i]`` with optax in one
``lax.scan``,

    L(theta) = sum_i sum_s (c(s)/C) [ CE(y_i(s), pi_i(.|s)) - entropy * H(pi_i(.|s)) ]
               + (l2 / 2) sum_i ||theta_i||^2,

``C`` the number of samples, ``y_i(s)`` the empirical action distribution at ``s`` smoothed with
``optax.smooth_labels(., label_smoothing)``, ``pi_i = softmax(theta_i)``. The cross entropy over
the counts equals the mean per-sample negative log-likelihood (up to a constant of the labels).

Shapes: ``n`` players, ``S`` states, ``A_i`` actions of player ``i``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import optax

from jaxmail.data import Dataset, action_counts, check_dataset
from jaxmail.game import MarkovGame
from jaxmail.imitation._optim import check_optimizer, minimize
from jaxmail.policy import check_policy, uniform_policy

Array = jax.Array
Policy = tuple[Array, ...]

DEFAULT_OPTIMIZER = optax.adam(0.1)
_METHODS = ("closed_form", "gradient")


def behavior_cloning(
    game: MarkovGame,
    data: Dataset,
    *,
    method: str = "closed_form",
    smoothing: float | Array = 0.0,
    prior: Sequence[Array] | None = None,
    weighted: bool = False,
    optimizer: optax.GradientTransformation | None = None,
    steps: int = 500,
    entropy: float | Array = 0.0,
    l2: float | Array = 0.0,
    label_smoothing: float | Array = 0.0,
    init: Sequence[Array] | None = None,
    return_losses: bool = False,
) -> Policy | tuple[Policy, Array]:
    """Behavioural cloning of every player from demonstrations (module docstring for the maths).

    Hyper-parameters (``smoothing``, ``entropy``, ``l2``, ``label_smoothing``) may be arrays
    traced under ``vmap``: a sweep over them compiles once. ``method``, ``steps``, ``weighted``
    and ``optimizer`` are static; reuse one optimizer object across calls to hit the jit cache.

    Args:
      game: the game (its shapes; the dataset is checked against it).
      data: demonstrations, usually of the expert (:func:`jaxmail.data.sample_demonstrations`).
      method: ``"closed_form"`` (counting) or ``"gradient"`` (optax on logits).
      smoothing: ``alpha >= 0``, additive smoothing of the closed form.
      prior: ``n`` arrays ``[S, A_i]``: the policy at states never seen and the direction of the
        smoothing (closed form), and the initial policy of gradient BC unless ``init`` is given.
        Default uniform.
      weighted: count each step with its dataset weight (``gamma^t`` under fixed horizons)
        instead of 1.
      optimizer: optax transformation for ``method="gradient"``; default ``optax.adam(0.1)``.
      steps: number of gradient steps (static).
      entropy: weight of the entropy bonus (gradient BC).
      l2: weight of the L2 penalty on the logits (gradient BC).
      label_smoothing: ``optax.smooth_labels`` parameter in ``[0, 1]`` (gradient BC).
      init: initial policy of gradient BC (default: ``prior``, else uniform).
      return_losses: also return the ``[steps]`` training losses (``[0]`` for the closed form).

    Returns:
      The cloned policy, ``n`` arrays ``[S, A_i]``; or ``(policy, losses)``.

    Raises:
      ValueError: unknown ``method``, a dataset that does not fit the game.

    Examples:
      >>> import jax, jaxmail as jm
      >>> game = jm.games.matching_pennies()
      >>> expert = jm.uniform_policy(game)
      >>> data = jm.data.sample_demonstrations(
      ...     jax.random.key(0), game, expert, num_trajectories=50, horizon=10)
      >>> bc = jm.imitation.behavior_cloning(game, data, smoothing=1.0)
      >>> [p.shape for p in bc]
      [(1, 2), (1, 2)]
    """
    if method not in _METHODS:
        raise ValueError(f"method: expected one of {_METHODS}, got {method!r}")
    check_dataset(game, data)
    prior = uniform_policy(game) if prior is None else check_policy(game, prior, name="prior")
    if method == "closed_form":
        policy = _closed_form(game, data, jnp.asarray(smoothing, game.dtype), prior, weighted)
        return (policy, jnp.zeros((0,), game.dtype)) if return_losses else policy
    init = prior if init is None else check_policy(game, init, name="init")
    optimizer = check_optimizer(DEFAULT_OPTIMIZER if optimizer is None else optimizer)
    regularisers = tuple(jnp.asarray(x, game.dtype) for x in (entropy, l2, label_smoothing))
    policy, losses = _gradient(game, data, init, regularisers, weighted, optimizer, steps)
    return (policy, losses) if return_losses else policy


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
        log_p = jax.nn.log_softmax(theta, axis=-1)
        neg_entropy = jnp.sum(jnp.exp(log_p) * log_p, axis=-1)  # -H, [S]
        loss += jnp.sum(visits * (cross_entropy + entropy * neg_entropy)) / total
        loss += 0.5 * l2 * jnp.sum(theta**2)
    return loss


@functools.partial(jax.jit, static_argnames=("weighted", "optimizer", "steps"))
def _gradient(game, data, init, regularisers, weighted, optimizer, steps):
    entropy, l2, label_smoothing = regularisers
    counts = action_counts(game, data, weighted=weighted)
    tiny = jnp.finfo(game.dtype).tiny
    logits = tuple(jnp.log(jnp.clip(p, tiny)) for p in init)
    # Zero-probability init entries would start at log(tiny) ~ -87: keep logits moderate.
    logits = tuple(jnp.maximum(x, -30.0) for x in logits)

    def loss(theta):
        return bc_loss(theta, counts, entropy=entropy, l2=l2, label_smoothing=label_smoothing)

    logits, losses = minimize(loss, logits, optimizer, steps)
    return tuple(jax.nn.softmax(x, axis=-1) for x in logits), losses
