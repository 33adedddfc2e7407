"""How far a policy is from a dominant strategy (docs/theory.md §3 item 5).

Shapes: ``n`` players, ``S`` states, ``A_i`` actions of player ``i``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmail import _linalg
from jaxmail._args import check_count, check_tol
from jaxmail.game import MarkovGame
from jaxmail.policy import check_player, check_policy
from jaxmail.responses import solve_best_response
from jaxmail.tolerances import policy_improvement_tol

Array = jax.Array
Policy = tuple[Array, ...]


def _player_gain(game, policy, player, tol, max_iters):
    """``V_i^{*, pi_-i}(mu0) - V_i^pi(mu0)`` for one player (chained solves)."""
    response, v_pi = solve_best_response(game, policy, player, tol=tol, max_iters=max_iters)
    return game.initial @ (response.values - v_pi)


def _map_chunks(f, xs, batch_size):
    """``f`` (one example) over the leading axis of the pytree ``xs``, ``batch_size`` at a time.

    The leading axis is padded (repeating the first example) to a multiple of ``batch_size`` so
    that every chunk runs in ONE sequential ``lax.map`` (``lax.map``'s own remainder handling
    would add an independent vmapped call beside the loop; see ``_linalg`` on why not).
    """
    count = jax.tree_util.tree_leaves(xs)[0].shape[0]
    batch = max(1, min(batch_size, count))
    chunks = -(-count // batch)
    pad = chunks * batch - count

    def reshape(x):
        if pad:
            x = jnp.concatenate([x, jnp.repeat(x[:1], pad, axis=0)])
        return x.reshape((chunks, batch) + x.shape[1:])

    out = lax.map(jax.vmap(f), jax.tree_util.tree_map(reshape, xs))
    return out.reshape((-1,) + out.shape[2:])[:count]


def _deterministic_opponents(game, player, max_enumerate):
    """``[N, S]`` int32 action tables, one per opponent, for all ``N = prod_j A_j^S`` policies."""
    others = [j for j in range(game.num_players) if j != player]
    if not others:
        return {}  # a one-player game: the single (empty) opponent
    per_state = int(np.prod([game.num_actions[j] for j in others], dtype=np.int64))
    s = game.num_states
    count = per_state**s  # Python int: exact
    if count > max_enumerate:
        raise ValueError(
            f"dominance_violation: the other players of player {player} have {per_state}^{s} = "
            f"{count} deterministic joint policies, more than max_enumerate={max_enumerate}; "
            "raise max_enumerate or use method='sampled'"
        )
    index = np.arange(count, dtype=np.int64)
    digits = (index[:, None] // per_state ** np.arange(s, dtype=np.int64)[None, :]) % per_state
    joint = np.unravel_index(digits, [game.num_actions[j] for j in others])  # per opponent [N, S]
    return {j: jnp.asarray(a, jnp.int32) for j, a in zip(others, joint)}


def dominance_violation(
    game: MarkovGame,
    policy: Sequence[Array],
    *,
    player: int | None = None,
    method: str = "exact",
    key: Array | None = None,
    num_samples: int = 1024,
    max_enumerate: int = 65_536,
    batch_size: int = 256,
    tol: float | Array | None = None,
    max_iters: int | None = None,
) -> Array:
    """How far ``policy_i`` is from a dominant strategy, for every player (theory.md §3 item 5).

    ``D_i = max over opponents pi_-i of [V_i^{*, pi_-i}(mu0) - V_i^{policy_i, pi_-i}(mu0)]``: the
    most player ``i`` can gain by deviating from ``policy_i`` against some behaviour of the
    others. ``policy_i`` is a (weakly) dominant strategy iff ``D_i = 0`` over ALL stationary
    ``pi_-i``. Each gain is an exact best-response computation (policy iteration on the induced
    MDP); the max is taken over a finite set of opponents, so the result is always a LOWER bound
    on the maximum over all stationary opponents:

    * ``method="exact"``: every deterministic stationary joint policy of the others
      (``prod_{j != i} A_j^S`` of them, vmapped in chunks of ``batch_size``). This is the true
      maximum over all stationary opponents when the transitions do not depend on the others'
      actions (action-independent transitions, player ``i`` the single controller, one-state
      games): then for every fixed deviation of player ``i`` its value is multilinear in the
      opponents' per-state action distributions, so the gain is convex in each of them and
      maximal at a deterministic opponent. Otherwise the occupancy depends on ``pi_-i``, the
      gain is not convex, and a STOCHASTIC opponent can do strictly better (the tests hold a
      two-state game with deterministic transitions where the best deterministic opponent
      yields 0.8 and a mixed one 2.40): the result is then the maximum over deterministic
      opponents, a lower bound on ``D_i``, and 0 certifies "best response to every
      deterministic stationary opponent", not Def 8 in full.
    * ``method="sampled"``: ``num_samples`` random opponents (even-numbered draws deterministic
      with uniform random actions, odd-numbered ones with Dirichlet(1) rows): a cheaper lower
      bound for games too large to enumerate (it can exceed ``"exact"`` in the non-convex case
      above, since it includes stochastic opponents). ``key`` is required and consumed.

    Args:
      game: one game.
      policy: ``n`` arrays ``[S, A_i]``; ``policy[j]`` for ``j != i`` only fixes shapes.
      player: static int for one player; ``None`` for all.
      method: ``"exact"`` or ``"sampled"``.
      key: PRNG key for ``"sampled"``.
      num_samples: opponents drawn per player (``"sampled"``).
      max_enumerate: ``"exact"`` raises beyond this many opponent policies per player.
      batch_size: opponents evaluated together (memory: ``batch_size`` induced MDPs).
      tol: the best-response solver's (:func:`jaxmail.solve_mdp`).
      max_iters: the best-response solver's (:func:`jaxmail.solve_mdp`).

    Returns:
      ``[n]`` violations (``[]`` if ``player`` is given); tiny negative values are rounding.

    Raises:
      ValueError: unknown method, missing key, too many opponent policies for ``"exact"``,
        bad player, ``num_samples < 1``.
    """
    policy = check_policy(game, policy)
    if method not in ("exact", "sampled"):
        raise ValueError(f"method: expected 'exact' or 'sampled', got {method!r}")
    if method == "sampled" and key is None:
        raise ValueError("key: method='sampled' needs a PRNG key")
    num_samples = check_count("num_samples", num_samples)
    max_enumerate = check_count("max_enumerate", max_enumerate)
    batch_size = check_count("batch_size", batch_size)
    if max_iters is not None:
        max_iters = check_count("max_iters", max_iters)
    players = tuple(range(game.num_players)) if player is None else (check_player(game, player),)
    tol = check_tol(game, tol)
    if method == "exact":
        opponents = tuple(_deterministic_opponents(game, i, max_enumerate) for i in players)
        num_samples = None
    else:
        opponents = key  # sampled inside the compiled program
    result = _dominance_violation(
        game,
        policy,
        opponents,
        tol,
        players=players,
        single=player is not None,
        num_samples=num_samples,
        batch_size=batch_size,
        max_iters=max_iters,
    )
    return result


def _sample_opponents(uniforms, game, player):
    """Random joint policies of the others, ``{j: [N, S, A_j]}``, from ``uniforms``.

    ``uniforms``: ``[N, S, sum_j A_j]`` iid U(0, 1] (columns of player ``j`` at its offset).
    Even-numbered samples are deterministic (the argmax of iid uniforms: a uniformly random
    action per state), odd-numbered ones have Dirichlet(1) rows (normalised ``-log U``, i.e.
    Exp(1), draws): one random draw in all, which keeps the compiled program small.
    """
    deterministic = (jnp.arange(uniforms.shape[0]) % 2 == 0)[:, None, None]
    offsets = np.cumsum((0,) + game.num_actions)
    out = {}
    for j in range(game.num_players):
        if j == player:
            continue
        u = uniforms[..., offsets[j] : offsets[j + 1]]
        one = jax.nn.one_hot(jnp.argmax(u, axis=-1), game.num_actions[j], dtype=game.dtype)
        soft = -jnp.log(u)
        out[j] = jnp.where(deterministic, one, soft / jnp.sum(soft, axis=-1, keepdims=True))
    return out


@functools.partial(
    jax.jit, static_argnames=("players", "single", "num_samples", "batch_size", "max_iters")
)
def _dominance_violation(
    game, policy, opponents, tol, *, players, single, num_samples, batch_size, max_iters
):
    """``opponents``: per player ``{j: [N, S] int actions}`` (exact), or a PRNG key (sampled)."""
    if tol is None:
        tol = policy_improvement_tol(game.dtype, game.discount, jnp.max(jnp.abs(game.reward)))
    if num_samples is not None:
        shape = (len(players), num_samples, game.num_states, sum(game.num_actions))
        tiny = jnp.finfo(game.dtype).tiny
        uniforms = jax.random.uniform(opponents, shape, game.dtype, minval=tiny, maxval=1.0)
        opponents = tuple(_sample_opponents(u, game, i) for u, i in zip(uniforms, players))
    out = []
    dependency = None
    for i, xs in zip(players, opponents):
        others = [j for j in range(game.num_players) if j != i]
        base = policy if dependency is None else _linalg.after_tree(policy, dependency)

        def gain(x, i=i, others=others, base=base):
            opp = {  # sampled: policies [S, A_j]; enumerated: actions [S]
                j: x[j]
                if jnp.issubdtype(x[j].dtype, jnp.floating)
                else jax.nn.one_hot(x[j], game.num_actions[j], dtype=game.dtype)
                for j in others
            }
            joint = tuple(base[j] if j == i else opp[j] for j in range(game.num_players))
            return _player_gain(game, joint, i, tol, max_iters)

        if not jax.tree_util.tree_leaves(xs):  # no opponents: one evaluation
            xs = jnp.zeros((1,), game.dtype)
        dependency = jnp.max(_map_chunks(gain, xs, batch_size))  # chains the next player
        out.append(dependency)
    return out[0] if single else jnp.stack(out)
