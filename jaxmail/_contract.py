"""Contractions of the dense game tensors with product policies.

Every contraction is a broadcast-multiply-and-sum, which XLA fuses into one pass over the
tensor (a chain of ``einsum``s measured up to 6x slower at ``n >= 3``, docs/design.md §2.8).

The induced MDPs of all ``n`` players are computed by splitting the players in halves
recursively: contract the right half's actions out of the tensor to get the left half's
partial tensor and vice versa, then recurse. The full transition tensor is read twice whatever
``n`` is (``n`` times by the obvious per-player loop); every later level reads tensors smaller by
the contracted players' action counts.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp

Array = jax.Array

_MAX_UNROLL = 64  # largest number of dropped joint actions summed term by term


def _weights(policy: Sequence[Array], players: Sequence[int], drop: Sequence[int], trailing: int):
    """Product of the dropped players' policies, broadcastable to ``[S, (A_p), *trail]``."""
    w = None
    for p in drop:
        shape = (
            (policy[p].shape[0],)
            + tuple(policy[p].shape[1] if q == p else 1 for q in players)
            + (1,) * trailing
        )
        term = jnp.reshape(policy[p], shape)
        w = term if w is None else w * term
    return w


def contract(
    tensor: Array,
    policy: Sequence[Array],
    players: Sequence[int],
    drop: Sequence[int],
    trailing: int,
) -> Array:
    """Sums the actions of ``drop`` out of ``tensor`` weighted by their policies.

    Args:
      tensor: ``[S, A_{players[0]}, ..., A_{players[-1]}, *trail]`` with ``trailing`` trailing
        axes.
      policy: all players' ``[S, A_i]`` policies.
      players: the players whose action axes ``tensor`` has, in axis order.
      drop: the players to contract out (a subset of ``players``).
      trailing: number of trailing (non-action) axes.

    Returns:
      ``tensor`` with the dropped action axes summed out.
    """
    if not drop:
        return tensor
    axes = tuple(1 + list(players).index(p) for p in drop)
    sizes = [tensor.shape[a] for a in axes]
    if math.prod(sizes) > _MAX_UNROLL:
        return jnp.sum(tensor * _weights(policy, players, drop, trailing), axis=axes)
    # Unrolled over the dropped joint actions: sum_k w_k * tensor[..., k, ...]. Each term is a
    # static slice, and XLA fuses the sum into one elementwise pass over the tensor; a reduce
    # over a middle axis (and two sibling reduces fused together) measured 2-5x slower on CPU.
    keep_shape = [1] * (len(players) - len(drop))
    total = None
    for joint in itertools.product(*(range(n) for n in sizes)):
        index = [slice(None)] * tensor.ndim
        for axis, a in zip(axes, joint):
            index[axis] = a
        weight = None
        for p, a in zip(drop, joint):
            w = policy[p][:, a]
            weight = w if weight is None else weight * w
        weight = weight.reshape((-1, *keep_shape) + (1,) * trailing)
        term = tensor[tuple(index)] * weight
        total = term if total is None else total + term
    return total


def contract_all(tensor: Array, policy: Sequence[Array], trailing: int) -> Array:
    """Sums every player's action out: ``[S, A_1..A_n, *trail] -> [S, *trail]``."""
    players = list(range(len(policy)))
    return contract(tensor, policy, players, players, trailing)


def induced_tensors(tensor: Array, policy: Sequence[Array], trailing: int) -> list[Array]:
    """Each player's tensor with every OTHER player's actions contracted out.

    Args:
      tensor: ``[S, A_1, ..., A_n, *trail]``.
      policy: ``n`` arrays ``[S, A_i]``.
      trailing: number of trailing axes.

    Returns:
      A list of ``n`` arrays, entry ``i`` of shape ``[S, A_i, *trail]``:
      ``out_i[s, a_i] = sum_{a_-i} prod_{j != i} pi_j(a_j|s) tensor[s, a]``.
    """

    def split(t, players):
        if len(players) == 1:
            return [t]
        half = len(players) // 2
        left, right = players[:half], players[half:]
        t_left = contract(t, policy, players, right, trailing)
        t_right = contract(t, policy, players, left, trailing)
        return split(t_left, left) + split(t_right, right)

    return split(tensor, list(range(len(policy))))


def marginalise(tensor: Array, pi: Array) -> Array:
    """``sum_a pi[s, a] tensor[s, a, ...]`` for ``tensor [S, A, *trail]`` and ``pi [S, A]``.

    One player's policy applied to its own induced tensor (e.g. ``P_pi`` from ``P_i``); the
    same unrolled pass as :func:`contract`.
    """
    return contract(tensor, (pi,), [0], [0], trailing=tensor.ndim - 2)
