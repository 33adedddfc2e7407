"""Matrix games as one-state Markov games (jaxmail/games/matrix.py).

Every expected gain is derived in a comment from the payoff table in the game's docstring. With
``discount = 0`` values are expected one-shot payoffs; the one-state repeated game multiplies
every value and gain by ``1 / (1 - gamma)``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmail as jm
from jaxmail import games

ATOL = 1e-6  # float32 payoffs of size <= 1, a handful of products

# jm.nash_gap is jitted already: an outer jax.jit would compile a second program of the same
# shape, which other test files compile through jm.nash_gap (one-state 2x2 games).
_nash_gap = jm.nash_gap


def _profile(*rows):
    """A one-state policy from per-player action distributions."""
    return tuple(jnp.asarray([r], dtype=jnp.float32) for r in rows)


def _gains(game, policy):
    gap = _nash_gap(game, policy)
    assert bool(jnp.all(gap.converged))
    return np.asarray(gap.gains), np.asarray(gap.policy_values)


NAMED = [
    (games.prisoners_dilemma, (2, 2)),
    (games.matching_pennies, (2, 2)),
    (games.rock_paper_scissors, (3, 3)),
    (games.coordination, (2, 2)),
    (games.shapley_game, (3, 3)),
    (games.battle_of_the_sexes, (2, 2)),
]


def test_matrix_game_structure():
    payoffs = np.arange(3 * 2 * 3 * 2, dtype=float).reshape(3, 2, 3, 2) / 36.0
    game = games.matrix_game(payoffs, discount=0.5)
    assert (game.num_players, game.num_states, game.num_actions) == (3, 1, (2, 3, 2))
    np.testing.assert_array_equal(game.transition, np.ones((1, 2, 3, 2, 1)))
    np.testing.assert_allclose(game.reward[:, 0], payoffs, rtol=1e-6)
    np.testing.assert_array_equal(game.initial, [1.0])
    assert float(game.discount) == 0.5


@pytest.mark.parametrize(
    "shape", [(2,), (3, 2, 2), (2, 2, 2, 2), (1, 0)], ids=["rank1", "n3-axes2", "n2-axes3", "A0"]
)
def test_matrix_game_rejects_bad_payoffs(shape):
    with pytest.raises(ValueError, match="payoffs"):
        games.matrix_game(np.zeros(shape))


def test_matrix_game_rejects_bad_discount_and_nan():
    with pytest.raises(ValueError, match="discount"):
        games.matrix_game(np.zeros((1, 2)), discount=1.0)
    with pytest.raises(ValueError, match="reward"):
        games.matrix_game(np.array([[0.0, np.nan]]))


def test_matrix_game_vmaps_over_payoffs():
    payoffs = jnp.linspace(-1.0, 1.0, 4 * 2 * 2 * 3).reshape(4, 2, 2, 3)
    batch = jax.vmap(games.matrix_game)(payoffs)
    assert batch.transition.shape == (4, 1, 2, 3, 1)
    np.testing.assert_array_equal(batch.reward[:, :, 0], payoffs)


@pytest.mark.parametrize("make, actions", NAMED, ids=[f.__name__ for f, _ in NAMED])
def test_named_games_shape_and_payoff_range(make, actions):
    game = make()
    assert game.num_states == 1 and game.num_actions == actions
    assert float(jnp.max(jnp.abs(game.reward))) <= 1.0
    assert float(game.discount) == 0.0


U2, U3 = [0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]
EQUILIBRIA = [
    # (game, policy, values at the equilibrium)
    ("pd (D,D)", games.prisoners_dilemma, ([0, 1], [0, 1]), (0.2, 0.2)),
    ("pennies uniform", games.matching_pennies, (U2, U2), (0.0, 0.0)),
    ("rps uniform", games.rock_paper_scissors, (U3, U3), (0.0, 0.0)),
    ("coordination (0,0)", games.coordination, ([1, 0], [1, 0]), (1.0, 1.0)),
    ("coordination (1,1)", games.coordination, ([0, 1], [0, 1]), (1.0, 1.0)),
    # Against a uniform other, each action matches with probability 1/2.
    ("coordination uniform", games.coordination, (U2, U2), (0.5, 0.5)),
    # Uniform play: each player's winning cell has probability 1/9 * 3 = 1/3.
    ("shapley uniform", games.shapley_game, (U3, U3), (1 / 3, 1 / 3)),
    ("bos (O,O)", games.battle_of_the_sexes, ([1, 0], [1, 0]), (1.0, 0.5)),
    ("bos (F,F)", games.battle_of_the_sexes, ([0, 1], [0, 1]), (0.5, 1.0)),
    # Mixed BoS: player 0 plays O w.p. p; player 1 is indifferent when its payoff for O,
    # 0.5 p, equals its payoff for F, 1 - p: p = 2/3. Player 1 plays O w.p. q; player 0 is
    # indifferent when q * 1 = (1 - q) * 0.5: q = 1/3. Values: player 0 gets q = 1/3,
    # player 1 gets 0.5 p = 1/3.
    ("bos mixed", games.battle_of_the_sexes, ([2 / 3, 1 / 3], [1 / 3, 2 / 3]), (1 / 3, 1 / 3)),
]


@pytest.mark.parametrize(
    "make, policy, values", [e[1:] for e in EQUILIBRIA], ids=[e[0] for e in EQUILIBRIA]
)
def test_known_equilibria_have_zero_gap(make, policy, values):
    gains, vals = _gains(make(), _profile(*policy))
    np.testing.assert_allclose(gains, 0.0, atol=ATOL)
    np.testing.assert_allclose(vals, values, atol=ATOL)


NON_EQUILIBRIA = [
    # (C,C) pays 0.6 each; defecting against C pays 1: each gains 0.4.
    ("pd (C,C)", games.prisoners_dilemma, ([1, 0], [1, 0]), (0.4, 0.4)),
    # (H,H): player 0 already earns its max +1; player 1 earns -1 and +1 by switching: gain 2.
    ("pennies (H,H)", games.matching_pennies, ([1, 0], [1, 0]), (0.0, 2.0)),
    # Rock against uniform: player 0 earns 0 with every action (gain 0); player 1 earns
    # (0 + 1 - 1)/3 = 0 with uniform and +1 with paper: gain 1.
    ("rps (R,uniform)", games.rock_paper_scissors, ([1, 0, 0], U3), (0.0, 1.0)),
    # Miscoordination (0,1): both earn 0 and 1 by matching the other.
    ("coordination (0,1)", games.coordination, ([1, 0], [0, 1]), (1.0, 1.0)),
    # (0,0): player 0 matches (earns 1, its max); player 1 earns 0 and 1 by playing 0 + 1 = 1.
    ("shapley (0,0)", games.shapley_game, ([1, 0, 0], [1, 0, 0]), (0.0, 1.0)),
    # (O,F): both earn 0; against F player 0 earns 0.5 with F, against O player 1 earns 0.5.
    ("bos (O,F)", games.battle_of_the_sexes, ([1, 0], [0, 1]), (0.5, 0.5)),
]


@pytest.mark.parametrize(
    "make, policy, expected", [e[1:] for e in NON_EQUILIBRIA], ids=[e[0] for e in NON_EQUILIBRIA]
)
def test_known_non_equilibria_have_the_derived_gap(make, policy, expected):
    gains, _ = _gains(make(), _profile(*policy))
    np.testing.assert_allclose(gains, expected, atol=ATOL)


def test_shapley_game_has_no_pure_equilibrium():
    # At every pure profile one player earns 0 and could earn 1 (docstring): NashGap = 1.
    game = games.shapley_game()
    for a0 in range(3):
        for a1 in range(3):
            gains, _ = _gains(game, _profile(np.eye(3)[a0], np.eye(3)[a1]))
            assert gains.max() == pytest.approx(1.0, abs=ATOL)


@pytest.mark.parametrize("discount", [0.5, 0.9])
def test_repeated_game_scales_gains_by_the_horizon(discount):
    # One state looping to itself: values and gains are the one-shot ones / (1 - gamma).
    gains, vals = _gains(games.matching_pennies(discount=discount), _profile([1, 0], [1, 0]))
    horizon = 1.0 / (1.0 - discount)
    np.testing.assert_allclose(gains, np.array([0.0, 2.0]) * horizon, atol=ATOL * horizon)
    np.testing.assert_allclose(vals, np.array([1.0, -1.0]) * horizon, atol=ATOL * horizon)


def test_coordination_with_three_players():
    game = games.coordination(num_players=3)
    assert game.num_actions == (2, 2, 2)
    # All uniform: every action of a player matches both others w.p. 1/4 (gain 0, value 1/4).
    gains, vals = _gains(game, _profile(U2, U2, U2))
    np.testing.assert_allclose(gains, 0.0, atol=ATOL)
    np.testing.assert_allclose(vals, 0.25, atol=ATOL)
    # (0, 0, 1): only player 2 can restore agreement alone (gain 1); players 0 and 1 cannot.
    gains, _ = _gains(game, _profile([1, 0], [1, 0], [0, 1]))
    np.testing.assert_allclose(gains, [0.0, 0.0, 1.0], atol=ATOL)


@pytest.mark.parametrize("kwargs", [{"num_actions": 0}, {"num_players": 0}, {"num_actions": 2.0}])
def test_coordination_rejects_bad_sizes(kwargs):
    with pytest.raises(ValueError):
        games.coordination(**kwargs)
