"""Policies: tuples of per-player ``[S, A_i]`` arrays.

A Markov, stationary, product policy is a tuple ``(pi_1, ..., pi_n)`` with ``pi_i[s, a_i]`` the
probability that player ``i`` plays ``a_i`` in state ``s``; the joint policy is the product
``pi(a|s) = prod_i pi_i(a_i|s)``. A tuple is a pytree: it jits and vmaps as is (a batch of
policies is the same tuple with a leading axis on every array). Learnable policies carry logits
of the same shapes; :func:`softmax_policy` turns them into policies.

Shapes: ``n`` players, ``S`` states, ``A_i`` actions of player ``i``.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxmail import checking
from jaxmail._arrays import is_concrete
from jaxmail.game import (
    MarkovGame,
    check_distributions,
    check_game,
    input_dtype,
    input_probability_atol,
)

Array = jax.Array
Policy = tuple[Array, ...]


def _one_game(game: MarkovGame) -> None:
    """Refuses a batch of games (a message that says to vmap); other objects pass through."""
    if isinstance(game, MarkovGame):
        check_game(game)


def check_policy(game: MarkovGame, policy: Sequence[Array], *, name: str = "policy") -> Policy:
    """Checks a policy against a game and returns it as a tuple in the game's dtype.

    Structure (a sequence of ``n`` arrays of shapes ``[S, A_i]``) is checked always, under
    ``jit`` too. Values (rows are distributions, no NaN) are checked when the arrays are concrete.

    Raises:
      TypeError: ``game`` is not a :class:`MarkovGame`, or an array has a dtype that is not
        real (complex, strings, float8).
      ValueError: naming the player and the worst violation; ``game`` is a batch of games.
    """
    check_game(game)
    if isinstance(policy, (jax.Array, np.ndarray)) or not isinstance(policy, Sequence):
        raise ValueError(
            f"{name}: expected a tuple of {game.num_players} arrays of shape [S, A_i], got "
            f"{type(policy).__name__}"
        )
    if len(policy) != game.num_players:
        raise ValueError(
            f"{name}: the game has {game.num_players} players but the policy has "
            f"{len(policy)} entries"
        )
    out = []
    for i, (p, a) in enumerate(zip(policy, game.num_actions)):
        shape = tuple(np.shape(p))
        if shape != (game.num_states, a):
            raise ValueError(
                f"{name}[{i}]: expected shape [S, A_{i}] = {(game.num_states, a)}, got {shape}"
            )
        input_dtype(f"{name}[{i}]", p)
        if is_concrete(p):
            check_distributions(
                f"{name}[{i}]",
                np.asarray(p),
                atol=input_probability_atol(p, game.dtype),
                index_names="s",
            )
        checking.check_dtype(f"{name}[{i}]", p, game.dtype)
        out.append(jnp.asarray(p, dtype=game.dtype))
    checking.check_policy_values(game, policy, name=name)
    return tuple(out)


def check_player(game: MarkovGame, player: int) -> int:
    """Returns ``player`` as an ``int`` in ``[0, n)`` or raises ``ValueError``."""
    if isinstance(player, (bool, np.bool_)) or not isinstance(player, (int, np.integer)):
        raise ValueError(f"player: expected a Python int (static), got {type(player).__name__}")
    if not 0 <= int(player) < game.num_players:
        raise ValueError(
            f"player: {player} is out of range for a {game.num_players}-player game "
            f"(valid: 0..{game.num_players - 1})"
        )
    return int(player)


def uniform_policy(game: MarkovGame) -> Policy:
    """Every player uniform over its actions: ``pi_i[s, a] = 1 / A_i``; shapes ``[S, A_i]``."""
    _one_game(game)
    return tuple(
        jnp.full((game.num_states, a), 1.0 / a, dtype=game.dtype) for a in game.num_actions
    )


def deterministic_policy(game: MarkovGame, actions: Sequence[Array]) -> Policy:
    """One-hot policies from action indices.

    Args:
      game: the game (for sizes and dtype).
      actions: ``n`` integer arrays of shape ``[S]``, ``actions[i][s]`` in ``[0, A_i)``.

    Returns:
      A policy, ``pi_i[s, a] = 1{a == actions[i][s]}``.

    Raises:
      ValueError: wrong count or shape, or (for concrete input) an index out of range.
    """
    _one_game(game)
    if len(actions) != game.num_players:
        raise ValueError(
            f"actions: expected {game.num_players} arrays (one per player), got {len(actions)}"
        )
    out = []
    for i, (act, a) in enumerate(zip(actions, game.num_actions)):
        act = jnp.asarray(act) if not is_concrete(act) else np.asarray(act)
        if tuple(act.shape) != (game.num_states,):
            raise ValueError(
                f"actions[{i}]: expected shape [S] = ({game.num_states},), got {tuple(act.shape)}"
            )
        if is_concrete(act):
            if act.dtype.kind not in "iu":
                raise ValueError(f"actions[{i}]: expected integer indices, got dtype {act.dtype}")
            if act.size and (act.min() < 0 or act.max() >= a):
                bad = int(np.argmax((act < 0) | (act >= a)))
                raise ValueError(
                    f"actions[{i}]: index {int(act[bad])} at state {bad} is out of range [0, {a})"
                )
        checking.check_indices(f"actions[{i}]", act, a)
        out.append(jax.nn.one_hot(act, a, dtype=game.dtype))
    return tuple(out)


def softmax_policy(logits: Sequence[Array], temperature: float | Array = 1.0) -> Policy:
    """``pi_i = softmax(logits_i / temperature)`` along the action axis; shapes ``[S, A_i]``."""
    return tuple(jax.nn.softmax(jnp.asarray(x) / temperature, axis=-1) for x in logits)


def random_policy(key: Array, game: MarkovGame, *, concentration: float | Array = 1.0) -> Policy:
    """Rows drawn from ``Dirichlet(concentration)``, independently per player and state.

    The key is consumed.
    """
    _one_game(game)
    keys = jax.random.split(key, game.num_players)
    if isinstance(concentration, (int, float)) and concentration == 1.0:
        # Dirichlet(1) = normalised Exponential(1) draws; much cheaper to compile than gamma.
        draws = (
            jax.random.exponential(k, (game.num_states, a), dtype=game.dtype)
            for k, a in zip(keys, game.num_actions)
        )
        return tuple(x / jnp.sum(x, axis=-1, keepdims=True) for x in draws)
    return tuple(
        jax.random.dirichlet(
            k, jnp.full((a,), concentration, dtype=game.dtype), shape=(game.num_states,)
        ).astype(game.dtype)
        for k, a in zip(keys, game.num_actions)
    )


def joint_policy(policy: Sequence[Array]) -> Array:
    """The joint policy ``pi(a|s) = prod_i pi_i(a_i|s)``, shape ``[S, A_1, ..., A_n]``.

    Its size is ``S * prod_i A_i``: compute it on request only.
    """
    n = len(policy)
    out = None
    for i, p in enumerate(policy):
        shape = (p.shape[0],) + tuple(p.shape[1] if j == i else 1 for j in range(n))
        term = jnp.reshape(p, shape)
        out = term if out is None else out * term
    return out


def sample_actions(key: Array, policy: Sequence[Array], state: Array) -> Array:
    """Samples a joint action in ``state``: ``a_i ~ pi_i(.|state)`` independently.

    Args:
      key: PRNG key (consumed).
      policy: ``n`` arrays ``[S, A_i]``.
      state: integer scalar.

    Returns:
      ``[n]`` int32 actions.
    """
    keys = jax.random.split(key, len(policy))
    return jnp.stack(
        [
            jax.random.categorical(k, jnp.log(jnp.clip(p[state], jnp.finfo(p.dtype).tiny)))
            for k, p in zip(keys, policy)
        ]
    ).astype(jnp.int32)


def policy_distance(policy: Sequence[Array], other: Sequence[Array]) -> Array:
    """Per-player, per-state L1 distance ``||pi_i(.|s) - other_i(.|s)||_1``, shape ``[n, S]``."""
    return jnp.stack([jnp.sum(jnp.abs(p - q), axis=-1) for p, q in zip(policy, other)])
