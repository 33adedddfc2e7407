"""Matrix (normal-form) games as one-state Markov games.

Shapes: ``n`` players, ``A_i`` actions of player ``i``.

A matrix game with payoffs ``U[i, a_1, ..., a_n]`` becomes the Markov game with ONE state that
loops to itself: ``P[0, a, 0] = 1``, ``R[i, 0, a] = U[i, a]``, ``mu0 = [1]``. With the default
``discount = 0`` a policy's values are its expected payoffs and the NashGap is the one-shot
game's; with ``0 < gamma < 1`` it is the infinitely repeated game played with stationary
policies, where every value and every best-response gain is the one-shot one times
``1 / (1 - gamma)`` (the induced MDP of a player has one state, so its best responses are the
one-shot ones).

The named games scale their classic payoff tables into ``[-1, 1]``. In the tables the row is
player 0's action, the column player 1's, and an entry ``(x, y)`` lists player 0's and player 1's
payoffs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxmail._arrays import default_float_dtype, is_concrete
from jaxmail.game import MarkovGame

Array = jax.Array


def matrix_game(payoffs: Array, *, discount: float | Array = 0.0) -> MarkovGame:
    """The one-state Markov game of a matrix game.

    ``P[0, a, 0] = 1`` for every joint action ``a``, ``R[i, 0, a] = payoffs[i, a]``,
    ``mu0 = [1]``.

    Args:
      payoffs: ``[n, A_1, ..., A_n]``; ``payoffs[i, a]`` is player ``i``'s payoff for the joint
        action ``a``. May be traced (``vmap`` over payoff tables works).
      discount: ``gamma`` in ``[0, 1)`` (an array leaf; may be traced). The default ``0`` makes
        values equal expected one-shot payoffs.

    Returns:
      A :class:`~jaxmail.MarkovGame` with ``S = 1``.

    Raises:
      ValueError: ``payoffs`` is not ``[n, A_1, ..., A_n]`` with ``n >= 1`` and every
        ``A_i >= 1``, or (concrete input) it holds NaN/inf, or ``discount`` is outside ``[0, 1)``.

    Example:
      >>> game = matrix_game(jnp.stack([jnp.eye(2), -jnp.eye(2)]))   # matching pennies
      >>> game.num_states, game.num_actions
      (1, (2, 2))
    """
    payoffs = payoffs if not is_concrete(payoffs) else np.asarray(payoffs)
    shape = tuple(payoffs.shape)
    if len(shape) < 2 or shape[0] != len(shape) - 1:
        raise ValueError(
            "payoffs: expected shape [n, A_1, ..., A_n] (one action axis per player), got "
            f"shape {shape}"
        )
    if any(a < 1 for a in shape[1:]):
        raise ValueError(f"payoffs: every player needs at least one action; got shape {shape}")
    dtype = default_float_dtype()
    actions = shape[1:]
    transition = jnp.ones((1, *actions, 1), dtype=dtype)
    reward = jnp.asarray(payoffs, dtype=dtype)[:, None]
    return MarkovGame(
        transition=transition,
        reward=reward,
        initial=jnp.ones((1,), dtype=dtype),
        discount=discount,
    )


def _two_player(row: list[list[float]], col: list[list[float]], discount) -> MarkovGame:
    return matrix_game(
        np.stack([np.asarray(row, float), np.asarray(col, float)]), discount=discount
    )


def prisoners_dilemma(*, discount: float | Array = 0.0) -> MarkovGame:
    """The prisoner's dilemma; actions 0 = cooperate, 1 = defect.

    The classic table ``T = 5 > R = 3 > P = 1 > S = 0`` divided by 5::

                    C            D
        C     (0.6, 0.6)   (0.0, 1.0)
        D     (1.0, 0.0)   (0.2, 0.2)

    Equilibria: the unique Nash equilibrium is (D, D), and D strictly dominates C for both
    players (``1 > 0.6`` and ``0.2 > 0``). Mutual cooperation (C, C) is not an equilibrium: each
    player gains ``1 - 0.6 = 0.4`` by defecting (one-shot; times ``1 / (1 - gamma)`` repeated).
    """
    return _two_player([[0.6, 0.0], [1.0, 0.2]], [[0.6, 1.0], [0.0, 0.2]], discount)


def matching_pennies(*, discount: float | Array = 0.0) -> MarkovGame:
    """Matching pennies (zero-sum); actions 0 = heads, 1 = tails.

    Player 0 wins when the pennies match::

                    H          T
        H     (+1, -1)   (-1, +1)
        T     (-1, +1)   (+1, -1)

    Equilibria: the unique Nash equilibrium is both players uniform, value 0 to each. There is
    no pure equilibrium: at (H, H) player 1 gains ``1 - (-1) = 2`` by switching to T.
    """
    return _two_player([[1.0, -1.0], [-1.0, 1.0]], [[-1.0, 1.0], [1.0, -1.0]], discount)


def rock_paper_scissors(*, discount: float | Array = 0.0) -> MarkovGame:
    """Rock-paper-scissors (zero-sum); actions 0 = rock, 1 = paper, 2 = scissors.

    A win pays +1, a loss -1, a tie 0; player 0's payoffs (player 1's are their negatives)::

                 R    P    S
        R        0   -1   +1
        P       +1    0   -1
        S       -1   +1    0

    Equilibria: the unique Nash equilibrium is both players uniform, value 0 to each. Against a
    pure action the opponent's best response wins, a gain of 1 over the tie.
    """
    win = np.array([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]])
    return _two_player(win, -win, discount)


def coordination(
    *, num_actions: int = 2, num_players: int = 2, discount: float | Array = 0.0
) -> MarkovGame:
    """Pure coordination: every player gets 1 when all choose the same action, 0 otherwise.

    For two players and two actions::

                 0         1
        0     (1, 1)    (0, 0)
        1     (0, 0)    (1, 1)

    Equilibria: every profile where all play the same action ``k`` (value 1, strict), and all
    players uniform (against ``n - 1`` uniform others every action earns ``A^{-(n-1)}``, so
    every action is a best response; value ``A^{-(n-1)}``). A miscoordinated pure profile is not
    an equilibrium for two players: at (0, 1) each player gains 1 by matching the other.

    Args:
      num_actions: ``A >= 1``, the same for every player.
      num_players: ``n >= 1``.
      discount: ``gamma``.
    """
    for name, value in (("num_actions", num_actions), ("num_players", num_players)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
    grids = np.meshgrid(*[np.arange(num_actions)] * num_players, indexing="ij")
    same = np.all([g == grids[0] for g in grids], axis=0).astype(float)
    return matrix_game(np.broadcast_to(same, (num_players, *same.shape)), discount=discount)


def shapley_game(*, discount: float | Array = 0.0) -> MarkovGame:
    """Shapley's 3x3 game (Shapley 1964), on which fictitious play cycles forever.

    Player 0 earns 1 by matching player 1's action; player 1 earns 1 by playing "one ahead",
    ``a_1 = a_0 + 1 (mod 3)``::

                 0         1         2
        0     (1, 0)    (0, 1)    (0, 0)
        1     (0, 0)    (1, 0)    (0, 1)
        2     (0, 1)    (0, 0)    (1, 0)

    Equilibria: the unique Nash equilibrium is both players uniform, value 1/3 to each. No pure
    profile is an equilibrium: at any profile one of the two players earns 0 and could earn 1.
    """
    row = np.eye(3)
    col = np.roll(np.eye(3), 1, axis=1)  # col[a0, a1] = 1 iff a1 = a0 + 1 mod 3
    return _two_player(row, col, discount)


def battle_of_the_sexes(*, discount: float | Array = 0.0) -> MarkovGame:
    """Battle of the sexes; actions 0 = opera (player 0's favourite), 1 = football.

    The classic table (2, 1) / (1, 2) / 0 divided by 2::

                    O            F
        O     (1.0, 0.5)   (0.0, 0.0)
        F     (0.0, 0.0)   (0.5, 1.0)

    Equilibria: the pure (O, O) with values (1, 1/2) and (F, F) with values (1/2, 1), and the
    mixed one where player 0 plays O with probability 2/3 (making player 1 indifferent:
    ``0.5 p = 1 - p``) and player 1 plays O with probability 1/3 (making player 0 indifferent:
    ``q = 0.5 (1 - q)``); its values are (1/3, 1/3).
    """
    return _two_player([[1.0, 0.0], [0.0, 0.5]], [[0.5, 0.0], [0.0, 1.0]], discount)
