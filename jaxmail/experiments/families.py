"""Game families of the experiments: one vocabulary and one draw of a game with its expert.

Shapes: ``n`` players, ``S`` states, ``A`` actions of every player.

A random family is a pair ``(generator, expert)``:

* generators (:data:`GENERATORS`): ``"general_sum"`` (:func:`jaxmail.games.random_game`),
  ``"zero_sum"`` (:func:`jaxmail.games.zero_sum_game`, two players) and ``"dominant"``
  (:func:`jaxmail.games.dominant_strategy_game`, which also gives the dominant-strategy
  expert);
* experts (:data:`EXPERTS`): ``"qre"`` (the logit QRE at a temperature,
  :func:`jaxmail.equilibria.logit_qre`), ``"nash"`` (a certified Nash equilibrium,
  :func:`nash_expert`) and ``"exact"`` (the generator's own expert: the dominant strategies).

Each experiment names its families as its tables always have (``continuity``: ``"general"``,
``"general_nash"``; ``demonstrations``: ``"general_sum"``, ``"general_sum_nash"``; both
``"zero_sum"`` and ``"dominant"``) and maps the names to :class:`Family` pairs, so that the
tables keep their ``family`` column while the draw is written once (:func:`draw`).

Families of one player count share one compiled program: :func:`draw` takes the family as a
traced index into ``lax.switch`` over the generators (and over the expert kinds present), so
each call runs one branch while every branch compiles once. The index is the same for every
seed (unbatched), so the switch stays a conditional under ``vmap``.

Also here: :func:`rotate_players`, the player relabelling that reads every player's quantity
as player 0's (continuity's adversarial delta), and :func:`tag_expert`, Tag's soft Nash expert
shared by the experiments that use it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import jaxmail as jm
from jaxmail.homotopy import CONVERGED, default_end_temperature
from jaxmail.tolerances import homotopy_corrector_tol, nash_gap_zero_tol

GENERATORS = ("general_sum", "zero_sum", "dominant")
EXPERTS = ("qre", "nash", "exact")


class Family(NamedTuple):
    """A random family: how the game is drawn and how its expert is computed."""

    generator: str
    expert: str


class Draw(NamedTuple):
    """One game of a family with its expert (:func:`draw`).

    Attributes:
      game: the game.
      given: ``n`` arrays ``[S, A]``: the generator's expert (dominant strategies) or the
        uniform policy (a placeholder of the same shape).
      expert: ``n`` arrays ``[S, A]``, the family's expert.
      converged: ``[]`` bool: the expert's solver converged (certified, for ``"nash"``).
      gap_tol: ``[]`` the Nash certificate's tolerance (NaN for the other experts).
    """

    game: jm.MarkovGame
    given: tuple[jax.Array, ...]
    expert: tuple[jax.Array, ...]
    converged: jax.Array
    gap_tol: jax.Array


def check_family(family: Family) -> Family:
    if family.generator not in GENERATORS or family.expert not in EXPERTS:
        raise ValueError(
            f"family: expected a generator in {GENERATORS} and an expert in {EXPERTS}, got "
            f"{tuple(family)}"
        )
    if family.expert == "exact" and family.generator != "dominant":
        raise ValueError(f"family: only the dominant generator gives an exact expert, got {family}")
    return family


def draw_game(
    generator: str,
    key: jax.Array,
    *,
    num_players: int,
    num_states: int,
    num_actions: int,
    discount: jax.Array,
    own_weight: jax.Array,
    branching: int | None = None,
):
    """``(game, given)``: a game of ``generator`` and its own expert (uniform if none)."""
    actions = (num_actions,) * num_players
    sizes = {"num_states": num_states, "discount": discount, "branching": branching}
    if generator == "dominant":
        dse = jm.games.dominant_strategy_game(
            key, num_actions=actions, own_weight=own_weight, **sizes
        )
        return dse.game, dse.expert
    if generator == "general_sum":
        game = jm.games.random_game(key, num_actions=actions, **sizes)
    else:
        game = jm.games.zero_sum_game(key, num_actions=num_actions, **sizes)
    return game, jm.uniform_policy(game)


def nash_expert(game, gap_tol, end_temperature):
    """``(policy, certified [], gap_tol [])``: the general-sum Nash expert of one game.

    :func:`jaxmail.equilibria.qre_homotopy` (the logit-QRE path to ``tau -> 0`` with support
    polish); ``certified`` is its status ``CONVERGED``, which means exactly "the certificate
    :func:`jaxmail.nash_gap` of the returned policy is at most ``gap_tol``".

    The corrector tolerance is the larger of the solver's default
    (:func:`jaxmail.tolerances.homotopy_corrector_tol`, ``sqrt(eps)``) and ten times the
    rounding floor of the residual ``y - log_softmax(lambda Q)`` at the path's end,
    ``eps lambda_end max|Q| = eps / (end_temperature (1 - gamma))`` (temperature in units of
    ``max|R|``, ``|Q| <= max|R| / (1 - gamma)``): 1.2e-2 in float32 at ``gamma = 0.9`` (its
    default ``sqrt(eps) = 3.5e-4`` lies below the floor 1.2e-3 there, and the path is lost
    before the last checkpoints), the default 1.5e-8 in float64. It changes only how the path
    is followed: the certificate is computed apart and judges the result. Measured in float32
    at ``gamma = 0.9`` (64 games, ``n = 2``, ``A = 2``, ``S = 8`` with two successors per
    row): 53 certified instead of 40.

    Args:
      game: one game.
      gap_tol: ``[]``; NaN for the solver's default :func:`jaxmail.tolerances.nash_gap_zero_tol`.
      end_temperature: ``[]`` in units of ``max |R|``; NaN for the solver's default
        :func:`jaxmail.homotopy.default_end_temperature`. Both are array leaves, always passed
        to the solver, so that any value (default or not) runs the same compiled program.

    Returns:
      ``(policy, certified, gap_tol)``: ``n`` arrays ``[S, A_i]``, ``[]`` bool, ``[]``.
    """
    gap_tol = jnp.where(jnp.isnan(gap_tol), nash_gap_zero_tol(game), gap_tol)
    relative = jnp.where(
        jnp.isnan(end_temperature), default_end_temperature(game.dtype), end_temperature
    )
    scale = jnp.maximum(jnp.max(jnp.abs(game.reward)), jnp.finfo(game.dtype).tiny)
    floor = jnp.finfo(game.dtype).eps / (relative * (1.0 - game.discount))
    tol = jnp.maximum(homotopy_corrector_tol(game.dtype), 10.0 * floor)
    out = jm.equilibria.qre_homotopy(
        game, gap_tol=gap_tol, end_temperature=relative * scale, tol=tol
    )
    return out.policy, out.status == CONVERGED, gap_tol


def switch(index, families: Sequence, key_of, branches):
    """``branches[key_of(families[index])](*args)`` as one program: the distinct keys in the
    order of ``families`` (a plain call when there is one), ``index`` traced.

    Returns a function of the branches' arguments.
    """
    keys = list(dict.fromkeys(key_of(f) for f in families))
    if len(keys) == 1:
        return branches[keys[0]]
    which = jnp.asarray([keys.index(key_of(f)) for f in families], jnp.int32)[index]
    return functools.partial(lax.switch, which, [branches[k] for k in keys])


def draw(
    key: jax.Array,
    index: jax.Array,
    families: Sequence[Family],
    *,
    num_players: int,
    num_states: int,
    num_actions: int,
    discount: jax.Array,
    own_weight: jax.Array,
    temperature: jax.Array,
    nash_gap_tol: jax.Array,
    nash_end_temperature: jax.Array,
    branching: int | None = None,
    qre_max_iters: int = 10_000,
) -> Draw:
    """A game of ``families[index]`` and its expert (module docstring).

    Args:
      key: the game's PRNG key (consumed).
      index: ``[]`` int, which of ``families`` (traced; the same for every seed).
      families: the :class:`Family` pairs that share this program (static).
      num_players: ``n`` (static).
      num_states: ``S`` (static).
      num_actions: ``A``, every player (static).
      discount: ``gamma`` (array leaf).
      own_weight: the dominant generator's own-action share of the reward (array leaf).
      temperature: the QRE expert's ``tau`` (array leaf).
      nash_gap_tol: the Nash expert's certificate tolerance (array leaf; NaN: the default).
      nash_end_temperature: where the Nash expert's path stops (array leaf; NaN: the default).
      branching: nonzero entries per transition row (static; None: dense).
      qre_max_iters: the QRE solver's iteration cap (static).

    Returns:
      A :class:`Draw`.
    """
    families = [check_family(Family(*f)) for f in families]
    sizes = dict(
        num_players=num_players,
        num_states=num_states,
        num_actions=num_actions,
        discount=discount,
        own_weight=own_weight,
        branching=branching,
    )
    generators = {g: functools.partial(draw_game, g, **sizes) for g in GENERATORS}
    game, given = switch(index, families, lambda f: f.generator, generators)(key)
    solvers = expert_solvers(
        temperature=temperature,
        nash_gap_tol=nash_gap_tol,
        nash_end_temperature=nash_end_temperature,
        qre_max_iters=qre_max_iters,
    )
    expert, converged, gap_tol = switch(index, families, lambda f: f.expert, solvers)(game, given)
    return Draw(game, given, expert, converged, gap_tol)


def expert_solvers(
    *,
    temperature: jax.Array,
    nash_gap_tol: jax.Array,
    nash_end_temperature: jax.Array,
    qre_max_iters: int = 10_000,
) -> dict:
    """``{kind: (game, given) -> (expert, converged [], gap_tol [])}`` for every kind of
    :data:`EXPERTS` (``gap_tol`` NaN but for ``"nash"``); arguments as :func:`draw`."""

    def qre(game, given):
        del given
        eq = jm.equilibria.logit_qre(game, temperature=temperature, max_iters=qre_max_iters)
        return eq.policy, eq.converged, jnp.asarray(jnp.nan, game.dtype)

    def exact(game, given):
        return given, jnp.asarray(True), jnp.asarray(jnp.nan, game.dtype)

    def nash(game, given):
        del given
        return nash_expert(game, nash_gap_tol, nash_end_temperature)

    return {"qre": qre, "exact": exact, "nash": nash}


def rotate_players(game: jm.MarkovGame, policy: Sequence[jax.Array], first: int):
    """The game with players relabelled ``first, first + 1, ...`` (mod ``n``), so that player
    ``first`` becomes player 0; the policy relabelled alike.

    Every per-player quantity of player ``first`` in the original game is player 0's in the
    rotated one (relabelling permutes the outputs), so a kernel written for player 0 serves
    every player in one trace (``jax.vmap`` over the rotated games). Needs equal action
    counts (the rotated games then share one shape).

    Args:
      game: one game, ``transition [S, A, ..., A, S]``, ``reward [n, S, A, ..., A]``.
      policy: ``n`` arrays ``[S, A]``.
      first: the player that becomes player 0 (Python int).

    Returns:
      ``(rotated game, rotated policy)``; the game is rebuilt from its leaves (no
      re-validation).

    Raises:
      ValueError: the players' action counts differ.
    """
    n = game.num_players
    if len(set(game.num_actions)) != 1:
        raise ValueError(
            f"game: rotating players needs equal action counts, got {game.num_actions}"
        )
    order = [(first + k) % n for k in range(n)]
    transition = jnp.transpose(game.transition, (0, *[1 + j for j in order], n + 1))
    reward = jnp.transpose(game.reward[np.asarray(order)], (0, 1, *[2 + j for j in order]))
    leaves = (transition, reward, game.initial, game.discount)
    rotated = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(game), leaves)
    return rotated, tuple(policy[j] for j in order)


class TagExpert(NamedTuple):
    """The Tag game and its soft Nash expert at one temperature (:func:`tag_expert`).

    Attributes:
      game: the Tag game.
      policy: two arrays ``[S, A]``, the regularised equilibrium.
      occupancy: ``[S]`` the expert's state occupancy ``d^E``.
      nash_gap: ``[]`` its NashGap in the unregularised game.
      soft_nash_gap: ``[]`` its NashGap in the regularised game (~0).
      converged: ``[]`` bool: the solver and both certificates converged.
    """

    game: jm.MarkovGame
    policy: tuple[jax.Array, ...]
    occupancy: jax.Array
    nash_gap: jax.Array
    soft_nash_gap: jax.Array
    converged: jax.Array


@functools.lru_cache(maxsize=32)
def _tag_expert(rows, cols, discount, temperature, dtype):
    del dtype  # part of the cache key: the arrays follow the run's x64 mode
    game = jm.games.tag(rows, cols, discount=discount)
    eq = jm.equilibria.soft_nash_vi(game, temperature=temperature)
    occupancy = jm.state_occupancy(game, eq.policy)
    converged = eq.converged & jnp.all(eq.nash_gap.converged) & jnp.all(eq.soft_nash_gap.converged)
    return TagExpert(
        game, eq.policy, occupancy, eq.nash_gap.nash_gap, eq.soft_nash_gap.nash_gap, converged
    )


def tag_expert(rows: int, cols: int, discount: float, temperature: float) -> TagExpert:
    """Tag ``rows x cols`` at ``discount`` and its soft Nash expert at ``temperature``
    (:func:`jaxmail.equilibria.soft_nash_vi`, the paper's expert), solved once per process and
    dtype (the same for every seed; about 10 s to compile and solve on 2 CPU cores)."""
    dtype = jnp.zeros(()).dtype.name
    return _tag_expert(int(rows), int(cols), float(discount), float(temperature), dtype)
