"""eps_BC estimated from demonstrations, with a bootstrap confidence interval.

The exact eps_BC is :func:`jaxmail.bc_error` (it needs the model). From expert demonstrations,

    eps_hat_i = sum_kt w_kt m_kt ||pi_i(.|s_kt) - piE_i(.|s_kt)||_1 / sum_kt w_kt m_kt,
    eps_hat = max_i eps_hat_i,

the same weighted histogram as :func:`jaxmail.data.empirical_state_occupancy`, so it estimates
``max_i E_{s ~ d^expert} ||pi_i - piE_i||_1`` (consistent for geometric lengths; truncated at the
horizon for fixed ones). The interval is the percentile bootstrap over TRAJECTORIES (steps within
a trajectory are dependent), resampling among the trajectories with at least one valid step.

Shapes: ``n`` players, ``S`` states, ``A_i`` actions, ``N`` trajectories, ``T`` steps, ``B``
bootstrap replicates.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxmail.data import Dataset, check_dataset
from jaxmail.game import MarkovGame
from jaxmail.policy import check_policy, policy_distance

Array = jax.Array


class BCErrorEstimate(NamedTuple):
    """eps_BC estimated from demonstrations.

    Attributes:
      estimate: ``[]`` the point estimate ``max_i eps_hat_i``.
      low: ``[]`` lower end of the percentile bootstrap interval.
      high: ``[]`` upper end.
      per_player: ``[n]`` the point estimates ``eps_hat_i``.
    """

    estimate: Array
    low: Array
    high: Array
    per_player: Array


def estimate_bc_error(
    key: Array,
    game: MarkovGame,
    data: Dataset,
    policy: Sequence[Array],
    *,
    expert: Sequence[Array],
    num_bootstrap: int = 1000,
    confidence: float | Array = 0.95,
) -> BCErrorEstimate:
    """eps_BC of ``policy`` estimated from ``data`` (demonstrations OF THE EXPERT).

    Args:
      key: PRNG key for the bootstrap (consumed).
      game: the game (shapes).
      data: expert demonstrations; the estimate weighs states as the data visits them.
      policy: ``n`` arrays ``[S, A_i]``, the imitator.
      expert: ``n`` arrays ``[S, A_i]``.
      num_bootstrap: ``B``, bootstrap replicates (static; 0 gives ``low = high = estimate``).
      confidence: coverage of the interval, in ``(0, 1)``.

    Returns:
      :class:`BCErrorEstimate`.
    """
    check_dataset(game, data)
    policy = check_policy(game, policy)
    expert = check_policy(game, expert, name="expert")
    if not isinstance(num_bootstrap, int) or num_bootstrap < 0:
        raise ValueError(f"num_bootstrap: expected a non-negative int, got {num_bootstrap!r}")
    return _estimate(key, data, policy, expert, jnp.asarray(confidence, game.dtype), num_bootstrap)


@functools.partial(jax.jit, static_argnames=("num_bootstrap",))
def _estimate(key, data, policy, expert, confidence, num_bootstrap):
    distance = policy_distance(policy, expert)  # [n, S]
    w = jnp.where(data.mask, data.weights, 0.0).astype(distance.dtype)  # [N, T]
    # Per trajectory: total weight [N] and weighted distance per player [N, n].
    traj_weight = jnp.sum(w, axis=-1)
    traj_error = jnp.einsum("kt,ikt->ki", w, distance[:, data.states])

    def ratio(counts):  # counts [N]: how often each trajectory is drawn
        total = counts @ traj_weight
        return (counts @ traj_error) / jnp.where(total > 0, total, 1.0)  # [n]

    per_player = ratio(jnp.ones_like(traj_weight))
    estimate = jnp.max(per_player)
    if num_bootstrap == 0:
        return BCErrorEstimate(estimate, estimate, estimate, per_player)
    valid = traj_weight > 0
    num_valid = jnp.sum(valid)
    order = jnp.argsort(~valid, stable=True)  # the valid trajectories first
    num = data.num_trajectories

    def replicate(k):
        # num_valid draws with replacement among the valid trajectories; padded draws drop.
        draws = order[jax.random.randint(k, (num,), 0, jnp.maximum(num_valid, 1))]
        counts = jnp.zeros(num, w.dtype).at[draws].add(jnp.arange(num) < num_valid)
        return jnp.max(ratio(counts))

    replicates = jax.vmap(replicate)(jax.random.split(key, num_bootstrap))
    tail = (1.0 - confidence) / 2.0
    low, high = jnp.quantile(replicates, jnp.stack([tail, 1.0 - tail]))
    return BCErrorEstimate(estimate, low, high, per_player)
