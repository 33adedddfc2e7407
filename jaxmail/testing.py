"""Contract checks for users' games, generators, solvers and learners.

Each ``assert_*`` function runs a user's object through the contracts the library's kernels rely
on and raises ``AssertionError`` naming the first contract broken; it returns nothing when every
contract holds. Use them in a project's own tests:

    def test_my_solver():
        jaxmail.testing.assert_solver(my_solver, jm.games.random_game(key, ...))

The contracts:

* a **game** (:func:`assert_game`): a :class:`~jaxmail.MarkovGame` with finite leaves of one
  float dtype, stochastic transitions and initial distribution, ``0 <= gamma < 1``; a pytree that
  survives flatten/unflatten; and kernels give the same numbers eagerly, under ``jax.jit`` and
  under ``jax.vmap`` of a batch of copies.
* a **policy** (:func:`assert_policy`): ``n`` arrays ``[S, A_i]`` of the game's dtype whose rows
  are distributions.
* a **generator** ``key -> game`` (:func:`assert_generator`): pure (the same key gives the same
  game, different keys different games), ``jit``- and ``vmap``-able (a batch of keys gives the
  games of the keys one by one), every game valid.
* a **solver** ``game -> record`` (:func:`assert_solver`): the record has a ``policy`` valid for
  the game and a ``nash_gap`` certificate (:class:`~jaxmail.NashGap`) that equals
  :func:`jaxmail.nash_gap` of that policy recomputed from scratch; the solver is deterministic
  and gives the same record under ``jax.jit`` and ``jax.vmap``.
* a **learner** ``(key, game, target) -> Fit`` (:func:`assert_learner`): returns a
  :class:`~jaxmail.imitation.Fit` whose policy is valid and whose training curves are finite
  vectors, deterministic in the key, the same under ``jax.jit`` and under ``jax.vmap`` over
  keys.

Tolerances follow from the dtype and the discount: a value-scale quantity (values, gaps) is
compared with ``atol = 64 eps max(1, r_max) / (1 - gamma)`` (the rounding of an exact
evaluation, whose condition number is at most ``(1 + gamma) / (1 - gamma)``, with room for a few
hundred operations); policies from the same computation under two transformations (eager and
``jit``, one game and a batch) with ``sqrt(eps)``: iterative solvers can amplify rounding
differences in their intermediate steps, but a wrong batching rule or a hidden state gives
errors of order one. The checks use ``chex`` for tree structure, shapes and finiteness.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxmail import evaluation
from jaxmail.game import MarkovGame, probability_atol
from jaxmail.imitation.base import Fit
from jaxmail.policy import uniform_policy
from jaxmail.responses import NashGap, nash_gap
from jaxmail.tolerances import value_tol

__all__ = [
    "assert_game",
    "assert_generator",
    "assert_learner",
    "assert_policy",
    "assert_solver",
    "policy_tolerance",
    "value_tolerance",
]


def value_tolerance(game: MarkovGame) -> float:
    """The comparison tolerance of value-scale numbers: :func:`jaxmail.tolerances.value_tol`."""
    return float(value_tol(game))


def policy_tolerance(game: MarkovGame) -> float:
    """``sqrt(eps)``: the comparison tolerance of probabilities from one computation done two
    ways (module docstring)."""
    return float(np.sqrt(jnp.finfo(game.dtype).eps))


def _fail(contract: str, detail: str) -> None:
    raise AssertionError(f"{contract}: {detail}")


def _max_diff(a: Any, b: Any) -> float:
    leaves = jax.tree_util.tree_leaves(
        jax.tree_util.tree_map(
            lambda x, y: (
                np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)))
                if np.size(x)
                else 0.0
            ),
            a,
            b,
        )
    )
    return float(max(leaves, default=0.0))


def _close(contract: str, a: Any, b: Any, atol: float) -> None:
    try:
        chex.assert_trees_all_equal_structs(a, b)
        chex.assert_trees_all_equal_shapes(a, b)
    except AssertionError as e:
        _fail(contract, f"the two results differ in structure or shape ({e})")
    diff = _max_diff(a, b)
    if not diff <= atol:  # also NaN
        _fail(contract, f"the two results differ by {diff:.3g} > tolerance {atol:.3g}")


def _stack(tree: Any, copies: int = 2) -> Any:
    return jax.tree_util.tree_map(lambda x: jnp.stack([jnp.asarray(x)] * copies), tree)


def _index(tree: Any, i: int) -> Any:
    return jax.tree_util.tree_map(lambda x: x[i], tree)


def assert_policy(game: MarkovGame, policy: Sequence[Any], *, name: str = "policy") -> None:
    """A policy of ``game``: ``n`` arrays ``[S, A_i]`` of ``game.dtype``, rows distributions.

    Raises:
      AssertionError: naming the player and the first broken contract.
    """
    if not isinstance(policy, (tuple, list)) or len(policy) != game.num_players:
        _fail(name, f"expected a tuple of {game.num_players} arrays, got {type(policy).__name__}")
    atol = probability_atol(game.dtype)
    for i, (p, a) in enumerate(zip(policy, game.num_actions)):
        where = f"{name}[{i}]"
        try:
            chex.assert_shape(p, (game.num_states, a))
            chex.assert_type(p, game.dtype)
            chex.assert_tree_all_finite(p)
        except AssertionError as e:
            _fail(where, str(e))
        p = np.asarray(p, np.float64)
        if p.min() < -atol:
            _fail(where, f"negative probability {p.min():.3g}")
        worst = np.max(np.abs(p.sum(-1) - 1.0))
        if worst > atol:
            _fail(where, f"a row sums to 1 {worst:+.3g} away (tolerance {atol:.3g})")


def _uniform_values(game: MarkovGame) -> jax.Array:
    """``[n, S]`` values of the uniform policy (one function object: its ``jit`` is cached)."""
    return evaluation.values(game, uniform_policy(game))


def assert_game(game: MarkovGame) -> None:
    """A valid game that behaves under ``jit``, ``vmap`` and pytree round trips.

    Checks the leaves (one float dtype, finite, stochastic ``P`` and ``mu0``, ``0 <= gamma < 1``),
    that ``tree_unflatten(tree_flatten(game))`` is the same game, and that the values of the
    uniform policy are the same eagerly, under ``jax.jit`` and for each game of a
    ``jax.vmap``-ed batch of two copies.

    Raises:
      AssertionError: naming the first broken contract.
    """
    if not isinstance(game, MarkovGame):
        _fail("game", f"expected a jaxmail.MarkovGame, got {type(game).__name__}")
    if game.batch_shape:
        _fail("game", f"expected ONE game, got a batch of shape {game.batch_shape}")
    leaves = {
        "transition": game.transition,
        "reward": game.reward,
        "initial": game.initial,
        "discount": game.discount,
    }
    for name, x in leaves.items():
        if jnp.asarray(x).dtype != game.dtype:
            _fail(f"game.{name}", f"dtype {jnp.asarray(x).dtype} differs from {game.dtype}")
        try:
            chex.assert_tree_all_finite(x)
        except AssertionError as e:
            _fail(f"game.{name}", str(e))
    try:
        chex.assert_shape(game.reward, (game.num_players, game.num_states, *game.num_actions))
        chex.assert_shape(game.transition, (game.num_states, *game.num_actions, game.num_states))
        chex.assert_shape(game.initial, (game.num_states,))
    except AssertionError as e:
        _fail("game shapes", str(e))
    atol = probability_atol(game.dtype)
    p = np.asarray(game.transition, np.float64)
    mu0 = np.asarray(game.initial, np.float64)
    if p.min() < -atol or np.max(np.abs(p.sum(-1) - 1.0)) > atol:
        _fail("game.transition", "rows are not distributions over next states")
    if mu0.min() < -atol or abs(mu0.sum() - 1.0) > atol:
        _fail("game.initial", "not a distribution over states")
    gamma = float(game.discount)
    if not 0.0 <= gamma < 1.0:
        _fail("game.discount", f"expected 0 <= gamma < 1, got {gamma}")
    leaves, treedef = jax.tree_util.tree_flatten(game)
    again = jax.tree_util.tree_unflatten(treedef, leaves)
    if not isinstance(again, MarkovGame) or again.num_actions != game.num_actions:
        _fail("pytree", "tree_unflatten(tree_flatten(game)) is not the same game")

    eager = _uniform_values(game)
    atol = value_tolerance(game)
    _close("jit", eager, jax.jit(_uniform_values)(game), atol)
    batched = jax.vmap(_uniform_values)(_stack(game))
    for i in range(2):
        _close(f"vmap (game {i} of a batch of copies)", eager, _index(batched, i), atol)


def assert_generator(generator: Callable[[jax.Array], MarkovGame], *, seed: int = 0) -> None:
    """A pure, ``jit``- and ``vmap``-able generator ``key -> game`` of valid games.

    Draws with keys ``k0, k1`` split from ``jax.random.key(seed)``: the same key twice must give
    the same game, the two keys different games (some leaf differs), ``jax.jit(generator)`` the
    same games, and ``jax.vmap(generator)`` of both keys the games one by one. Each game must
    pass :func:`assert_game`.

    Raises:
      AssertionError: naming the first broken contract.
    """
    k0, k1 = jax.random.split(jax.random.key(seed))
    g0 = generator(k0)
    assert_game(g0)
    atol = value_tolerance(g0)
    _close("pure (the same key twice)", g0, generator(k0), 0.0)
    g1 = generator(k1)
    if _max_diff(g0, g1) == 0.0:
        _fail("keys", "two different keys gave the same game (is the key used?)")
    _close("jit", g0, jax.jit(generator)(k0), atol)
    batch = jax.vmap(generator)(jnp.stack([k0, k1]))
    for i, g in enumerate((g0, g1)):
        _close(f"vmap (key {i} of a batch)", g, _index(batch, i), atol)


def _certificate(record: Any) -> NashGap:
    gap = getattr(record, "nash_gap", None)
    if not isinstance(gap, NashGap):
        _fail(
            "solver record", f"expected a .nash_gap NashGap certificate, got {type(gap).__name__}"
        )
    return gap


def assert_solver(solver: Callable[[MarkovGame], Any], game: MarkovGame) -> None:
    """A deterministic, transformable solver ``game -> record`` with an honest certificate.

    The record needs ``.policy`` (``n`` arrays ``[S, A_i]``) and ``.nash_gap`` (a
    :class:`~jaxmail.NashGap`), as every jaxmail solver returns. Checks: the policy is valid
    (:func:`assert_policy`); the certificate's ``gains`` equal :func:`jaxmail.nash_gap` of the
    policy recomputed from scratch (within :func:`value_tolerance`); a second call gives the
    same record; ``jax.jit(solver)`` and ``jax.vmap(solver)`` over two copies of the game give
    the same policy (within :func:`policy_tolerance`) and certificate.

    Raises:
      AssertionError: naming the first broken contract.
    """
    assert_game(game)
    record = solver(game)
    policy = getattr(record, "policy", None)
    if policy is None:
        _fail("solver record", "expected a .policy attribute")
    assert_policy(game, policy, name="solver policy")
    claimed = _certificate(record)
    recomputed = nash_gap(game, tuple(policy))
    vtol = value_tolerance(game)
    diff = _max_diff(claimed.gains, recomputed.gains)
    if not diff <= vtol:
        _fail(
            "certificate",
            f"the record's NashGap gains differ from jm.nash_gap of its policy by {diff:.3g} "
            f"> {vtol:.3g} (claimed {np.asarray(claimed.gains)}, "
            f"recomputed {np.asarray(recomputed.gains)})",
        )
    ptol = policy_tolerance(game)
    _close("deterministic (a second call)", tuple(policy), tuple(solver(game).policy), ptol)
    jitted = jax.jit(solver)(game)
    _close("jit (policy)", tuple(policy), tuple(jitted.policy), ptol)
    _close("jit (certificate)", claimed.gains, _certificate(jitted).gains, vtol)
    batch = jax.vmap(solver)(_stack(game))
    for i in range(2):
        one = _index(batch, i)
        _close(f"vmap (policy of game {i})", tuple(policy), tuple(one.policy), ptol)
        _close(f"vmap (certificate of game {i})", claimed.gains, _certificate(one).gains, vtol)


def assert_learner(
    learner: Callable[[jax.Array, MarkovGame, Any], Any],
    game: MarkovGame,
    target: Any,
    *,
    seed: int = 0,
) -> None:
    """A learner ``(key, game, target) -> Fit``, as every jaxmail learner is.

    The result must be a :class:`~jaxmail.imitation.Fit`. Checks: its ``policy`` is a valid
    policy of ``game``; its ``losses`` (and ``discriminator_losses`` unless ``None``) are
    finite vectors ``[T]`` of the game's dtype; the same key gives the same record; ``jax.jit``
    gives it too, and ``jax.vmap`` over two keys gives each key's record. Policies are compared
    within :func:`policy_tolerance`, curves within ``policy_tolerance * max(1, max |loss|)``
    (the same relative rounding).

    Raises:
      AssertionError: naming the first broken contract.
    """
    assert_game(game)
    k0, k1 = jax.random.split(jax.random.key(seed))
    f0 = _fit_of(game, learner(k0, game, target))
    ptol = policy_tolerance(game)

    def same(contract: str, a: Fit, b: Any) -> None:
        b = _fit_of(game, b, contract=contract, check=False)
        _close(f"{contract} (policy)", a.policy, b.policy, ptol)
        for name in ("losses", "discriminator_losses"):
            x, y = getattr(a, name), getattr(b, name)
            scale = 0.0 if x is None or not np.size(x) else float(np.max(np.abs(x)))
            _close(f"{contract} ({name})", x, y, ptol * max(1.0, scale))

    same("deterministic in the key", f0, learner(k0, game, target))
    same("jit", f0, jax.jit(learner)(k0, game, target))
    f1 = _fit_of(game, learner(k1, game, target))
    batch = jax.vmap(learner, in_axes=(0, None, None))(jnp.stack([k0, k1]), game, target)
    if not isinstance(batch, Fit):
        _fail("vmap", f"expected a jaxmail.imitation.Fit, got {type(batch).__name__}")
    for i, f in enumerate((f0, f1)):
        same(f"vmap (key {i} of a batch)", f, _index(batch, i))


def _fit_of(game: MarkovGame, result: Any, *, contract: str = "learner", check: bool = True) -> Fit:
    """``result`` as a :class:`Fit` with a tuple policy; with ``check``, its contents checked."""
    if not isinstance(result, Fit):
        _fail(
            f"{contract} record",
            f"expected a jaxmail.imitation.Fit(policy, losses), got {type(result).__name__}",
        )
    fit = result._replace(policy=tuple(result.policy))
    if not check:
        return fit
    assert_policy(game, fit.policy, name="learned policy")
    for name in ("losses", "discriminator_losses"):
        curve = getattr(fit, name)
        if curve is None and name == "discriminator_losses":
            continue
        try:
            chex.assert_rank(curve, 1)
            chex.assert_type(curve, game.dtype)
            chex.assert_tree_all_finite(curve)
        except AssertionError as e:
            _fail(f"learner {name}", str(e))
    return fit
