"""OpenSpiel interop: conversion of its games, and NashConv against OpenSpiel's own.

The cross-check evaluates the SAME seeded random policy on both sides: ours with
``jm.nash_gap``, OpenSpiel's with ``exploitability.nash_conv`` (its Python best responses handle
simultaneous nodes directly) on the policy that :func:`policy_to_openspiel` builds.

Where the numbers must agree exactly, the tests run in float64 (the ``x64`` fixture) and allow
``1e-9``: both sides add up a few hundred products of payoffs <= 10 and probabilities, so
rounding stays near 1e-13.

* One-shot games with ``discount=0``: one state, ``V = u(pi)``, equal gains.
* One-shot games at ``discount=gamma``: one self-looping state, every gain is OpenSpiel's
  divided by ``1 - gamma``.
* Multi-step games with ``preserve_returns=True``: rewards out of a state at depth ``t`` are
  scaled by ``gamma^-t``, so ``V_i^pi(mu0)`` equals the undiscounted expected return for every
  policy and the gains agree exactly (module docstring of jaxmail/games/openspiel.py).
* Multi-step games with OpenSpiel's own rewards and ``gamma = 0.99``: a value moves by at most
  ``delta = sum_{t<H} (1 - gamma^t) max|r|``, a gain by at most ``2 delta``; tested against
  that bound.

Exactness also needs each player's information state to determine our state (perfect
information): with ``kuhn_poker`` our best responses see the hidden cards, and our gains are
tested to be at least OpenSpiel's.
"""

import collections
import itertools
import sys

import jax.numpy as jnp
import numpy as np
import pytest

pyspiel = pytest.importorskip("pyspiel")

from open_spiel.python import policy as policy_lib  # noqa: E402
from open_spiel.python.algorithms import expected_game_score, exploitability  # noqa: E402

import jaxmail as jm  # noqa: E402
from jaxmail.games.openspiel import (  # noqa: E402
    from_openspiel,
    policy_from_openspiel,
    policy_to_openspiel,
)

EXACT = 1e-9
MATRIX_GAMES = ("matrix_mp", "matrix_pd", "matrix_rps", "matrix_cd")
REPEATED_PD = "repeated_game(stage_game=matrix_pd(),num_repetitions=2)"
OSHI_ZUMO = "oshi_zumo(coins=4,size=1,horizon=3)"  # bids vary with coins left: illegal actions
GOOFSPIEL = "goofspiel(num_cards=3,points_order=random,imp_info=False)"  # chance each round
NIM = "nim(pile_sizes=2;3)"  # turn-based


def _policy(game, seed):
    """A seeded random policy: Dirichlet(1) rows (NumPy: nothing to compile)."""
    rng = np.random.default_rng(seed)
    return tuple(
        jnp.asarray(rng.dirichlet(np.ones(a), size=game.num_states), dtype=game.dtype)
        for a in game.num_actions
    )


def _openspiel_nash_conv(meta, policy):
    """(player improvements [n], nash_conv) of OpenSpiel's exploitability.nash_conv."""
    result = exploitability.nash_conv(
        meta.game, policy_to_openspiel(policy, meta), return_only_nash_conv=False
    )
    return np.asarray(result.player_improvements), float(result.nash_conv)


def _openspiel_values(meta, policy):
    """OpenSpiel's expected returns ``[n]`` of the policy from the initial state."""
    os_policy = policy_to_openspiel(policy, meta)
    simultaneous = meta.game.get_type().dynamics == pyspiel.GameType.Dynamics.SIMULTANEOUS
    policies = os_policy if simultaneous else [os_policy] * meta.game.num_players()
    return np.asarray(expected_game_score.policy_value(meta.game.new_initial_state(), policies))


def _tree_counts(game):
    """Independent count of decision nodes: (by history, by (move_number, str))."""
    histories, strings = 0, set()
    stack = [game.new_initial_state()]
    while stack:
        state = stack.pop()
        if state.is_terminal():
            continue
        if state.is_chance_node():
            stack.extend(state.child(a) for a, _ in state.chance_outcomes())
            continue
        histories += 1
        strings.add((state.move_number(), str(state)))
        if state.is_simultaneous_node():
            legal = [state.legal_actions(i) for i in range(game.num_players())]
            for joint in itertools.product(*legal):
                child = state.clone()
                child.apply_actions(list(joint))
                stack.append(child)
        else:
            stack.extend(state.child(a) for a in state.legal_actions())
    return histories, len(strings)


# ----------------------------------------------------------------------------------------------
# Matrix (one-shot) games.
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MATRIX_GAMES)
def test_matrix_payoffs_are_openspiel_utilities(name):
    game, meta = from_openspiel(name, discount=0.0)
    os_game = pyspiel.load_game(name)
    assert (game.num_states, game.num_actions) == (1, (os_game.num_rows(), os_game.num_cols()))
    assert meta.one_shot and meta.sink is None
    np.testing.assert_array_equal(game.transition, 1.0)  # the stage game, looping on itself
    np.testing.assert_array_equal(game.reward[0, 0], os_game.row_utilities())
    np.testing.assert_array_equal(game.reward[1, 0], os_game.col_utilities())
    np.testing.assert_array_equal(game.initial, [1.0])
    assert all(mask.all() for mask in meta.legal_actions)


def test_matrix_game_with_unequal_action_counts():
    row = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    col = [[6.0, 5.0, 4.0], [3.0, 2.0, 1.0]]
    os_game = pyspiel.create_matrix_game(row, col)
    assert os_game.num_distinct_actions() == 3  # OpenSpiel's count is the larger one
    game, _ = from_openspiel(os_game, discount=0.0)
    assert game.num_actions == (2, 3)
    np.testing.assert_array_equal(game.reward[:, 0], [row, col])


@pytest.mark.parametrize("name", (*MATRIX_GAMES, "matching_pennies_3p"))
def test_one_shot_nash_conv_matches_openspiel(x64, name):
    game, meta = from_openspiel(name, discount=0.0)
    for seed in (0, 1):
        policy = _policy(game, seed)
        ours = jm.nash_gap(game, policy)
        gains, nash_conv = _openspiel_nash_conv(meta, policy)
        np.testing.assert_allclose(ours.gains, gains, rtol=0, atol=EXACT)
        np.testing.assert_allclose(ours.nash_conv, nash_conv, rtol=0, atol=EXACT)
        np.testing.assert_allclose(ours.policy_values, _openspiel_values(meta, policy), atol=EXACT)


def test_one_shot_nash_conv_float32():
    """Default dtype: payoffs <= 10, so float32 rounding of a few products is below 1e-5."""
    game, meta = from_openspiel("matrix_pd", discount=0.0)
    policy = _policy(game, 3)
    gains, _ = _openspiel_nash_conv(meta, policy)
    np.testing.assert_allclose(jm.nash_gap(game, policy).gains, gains, rtol=0, atol=1e-4)


def test_uniform_is_nash_in_zero_sum_matrix_games(x64):
    for name in ("matrix_mp", "matrix_rps"):
        game, meta = from_openspiel(name, discount=0.0)
        policy = jm.uniform_policy(game)
        _, nash_conv = _openspiel_nash_conv(meta, policy)
        assert abs(nash_conv) < EXACT
        assert abs(float(jm.nash_gap(game, policy).nash_conv)) < EXACT


def test_one_shot_discounted(x64):
    """Repeated stage game: gains scale by 1/(1-gamma); the sink version keeps them."""
    gamma = 0.9
    repeated, meta = from_openspiel("matrix_rps", discount=gamma)
    absorbing, meta_abs = from_openspiel("matrix_rps", discount=gamma, repeat_one_shot=False)
    assert absorbing.num_states == 2 and meta_abs.sink == 1 and not meta_abs.one_shot
    policy = _policy(repeated, 4)
    gains, _ = _openspiel_nash_conv(meta, policy)
    np.testing.assert_allclose(
        jm.nash_gap(repeated, policy).gains * (1 - gamma), gains, rtol=0, atol=EXACT
    )
    lifted = tuple(np.concatenate([p, p]) for p in policy)  # same row at the sink (irrelevant)
    np.testing.assert_allclose(jm.nash_gap(absorbing, lifted).gains, gains, rtol=0, atol=EXACT)
    preserved, meta_pr = from_openspiel("matrix_rps", discount=gamma, preserve_returns=True)
    assert preserved.num_states == 2 and not meta_pr.one_shot  # returns asked for: no repeat
    np.testing.assert_array_equal(preserved.reward, absorbing.reward)


# ----------------------------------------------------------------------------------------------
# Multi-step games.
# ----------------------------------------------------------------------------------------------


def test_repeated_game_states():
    """Two rounds of the prisoner's dilemma: the root, its 4 children, the sink."""
    game, meta = from_openspiel(REPEATED_PD, discount=0.9)
    assert game.num_states == 6 and meta.sink == 5 and game.num_actions == (2, 2)
    np.testing.assert_array_equal(meta.depth, [0, 1, 1, 1, 1, -1])
    assert sorted(meta.histories[1:5]) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    np.testing.assert_array_equal(game.initial, np.eye(6)[0])
    # Round 1 goes to the state of its joint action and pays the stage game.
    stage = np.stack(
        [
            pyspiel.load_game("matrix_pd").row_utilities(),
            pyspiel.load_game("matrix_pd").col_utilities(),
        ]
    )
    np.testing.assert_array_equal(game.reward[:, 0], stage)
    for a, b in itertools.product(range(2), range(2)):
        nxt = meta.histories.index((a, b))
        assert game.transition[0, a, b, nxt] == 1.0
        np.testing.assert_array_equal(game.transition[nxt, ..., meta.sink], 1.0)
        np.testing.assert_array_equal(game.reward[:, nxt], stage)
    np.testing.assert_array_equal(game.transition[meta.sink, ..., meta.sink], 1.0)
    np.testing.assert_array_equal(game.reward[:, meta.sink], 0.0)


@pytest.mark.parametrize("name", [REPEATED_PD, OSHI_ZUMO, GOOFSPIEL, NIM])
def test_state_counts_match_tree_walk(name):
    histories, strings = _tree_counts(pyspiel.load_game(name))
    by_history, _ = from_openspiel(name, discount=0.9)
    by_string, _ = from_openspiel(name, discount=0.9, state_key="string")
    assert (by_history.num_states, by_string.num_states) == (histories + 1, strings + 1)


@pytest.mark.parametrize(
    "name,state_key,seeds",
    [
        (REPEATED_PD, "history", (0, 1)),
        (OSHI_ZUMO, "history", (0,)),
        # Each game is its own shape (a compilation, 3-4 s): the quick suite keeps three, one
        # per state key; test_string_key_merges_exactly also checks the string key.
        pytest.param(OSHI_ZUMO, "string", (0, 1), marks=pytest.mark.slow),
        (GOOFSPIEL, "string", (0, 1)),
        pytest.param(NIM, "history", (0, 1), marks=pytest.mark.slow),
    ],
)
def test_multistep_nash_conv_matches_openspiel_exactly(x64, name, state_key, seeds):
    game, meta = from_openspiel(name, discount=0.9, state_key=state_key, preserve_returns=True)
    for seed in seeds:
        policy = _policy(game, seed)
        ours = jm.nash_gap(game, policy)
        gains, nash_conv = _openspiel_nash_conv(meta, policy)
        assert nash_conv > 0.1  # a random policy is far from equilibrium: not a vacuous check
        np.testing.assert_allclose(ours.gains, gains, rtol=0, atol=EXACT)
        np.testing.assert_allclose(ours.nash_conv, nash_conv, rtol=0, atol=EXACT)
        np.testing.assert_allclose(ours.policy_values, _openspiel_values(meta, policy), atol=EXACT)


@pytest.mark.parametrize("name", [REPEATED_PD, GOOFSPIEL])
def test_multistep_discounted_within_bound(x64, name):
    gamma = 0.99
    game, meta = from_openspiel(name, discount=gamma)
    horizon = int(meta.depth.max()) + 1  # decision steps of the longest play
    r_max = float(np.abs(game.reward).max())
    delta = sum((1 - gamma**t) * r_max for t in range(horizon))
    policy = _policy(game, 5)
    ours = jm.nash_gap(game, policy)
    gains, _ = _openspiel_nash_conv(meta, policy)
    assert np.all(np.abs(np.asarray(ours.gains) - gains) <= 2 * delta)
    assert np.all(np.abs(np.asarray(ours.policy_values) - _openspiel_values(meta, policy)) <= delta)


def test_string_key_merges_exactly(x64):
    """Merged oshi_zumo states give the same gains as the game tree, for the lifted policy."""
    tree, tree_meta = from_openspiel(OSHI_ZUMO, discount=0.8)
    merged, merged_meta = from_openspiel(OSHI_ZUMO, discount=0.8, state_key="string")
    assert merged.num_states < tree.num_states
    policy = _policy(merged, 6)
    rows = [merged_meta.state_index(tree_meta.states[s]) for s in range(tree.num_states - 1)]
    rows.append(merged_meta.sink)
    lifted = tuple(np.asarray(p)[rows] for p in policy)
    np.testing.assert_allclose(
        jm.nash_gap(tree, lifted).gains, jm.nash_gap(merged, policy).gains, rtol=0, atol=EXACT
    )
    # Why the key holds the move number: the string alone repeats after two bids of 0.
    root = pyspiel.load_game(OSHI_ZUMO).new_initial_state()
    later = root.clone()
    later.apply_actions([0, 0])
    assert str(later) == str(root) and later.move_number() != root.move_number()
    with pytest.raises(ValueError, match="preserve_returns"):
        from_openspiel(OSHI_ZUMO, discount=0.8, state_key=str, preserve_returns=True)


def test_illegal_actions_act_as_first_legal():
    game, meta = from_openspiel(OSHI_ZUMO, discount=0.9, state_key="string")
    P, R = np.asarray(game.transition), np.asarray(game.reward)
    checked = 0
    for i, mask in enumerate(meta.legal_actions):
        for s in range(game.num_states - 1):
            first = int(np.argmax(mask[s]))
            for a in np.flatnonzero(~mask[s]):
                checked += 1
                np.testing.assert_array_equal(np.take(P[s], a, axis=i), np.take(P[s], first, i))
                np.testing.assert_array_equal(
                    np.take(R[:, s], a, axis=i + 1), np.take(R[:, s], first, axis=i + 1)
                )
    assert checked > 0
    with pytest.raises(ValueError, match="illegal_actions='raise'"):
        from_openspiel(OSHI_ZUMO, discount=0.9, illegal_actions="raise")
    from_openspiel(REPEATED_PD, discount=0.9, illegal_actions="raise")  # all legal: fine


def test_turn_based_waiting_player_is_a_no_op():
    game, meta = from_openspiel(NIM, discount=0.9)
    P, R = np.asarray(game.transition), np.asarray(game.reward)
    for s in range(game.num_states - 1):
        mover = int(meta.current_player[s])
        waiting = 1 - mover
        assert meta.legal_actions[mover][s].any() and not meta.legal_actions[waiting][s].any()
        np.testing.assert_array_equal(
            P[s], np.take(P[s], [0], axis=waiting).repeat(game.num_actions[waiting], axis=waiting)
        )
        np.testing.assert_array_equal(
            R[:, s],
            np.take(R[:, s], [0], axis=waiting + 1).repeat(
                game.num_actions[waiting], axis=waiting + 1
            ),
        )


def test_imperfect_information_our_gains_dominate(x64):
    """kuhn_poker: our best responses see the cards, OpenSpiel's only information states."""
    game, meta = from_openspiel("kuhn_poker", discount=0.9, preserve_returns=True)
    # Deal: 6 equally likely card pairs, each a state where player 0 moves first.
    assert np.count_nonzero(game.initial) == 6
    np.testing.assert_allclose(game.initial[game.initial > 0], 1 / 6)
    policy = _policy(game, 7)
    ours = jm.nash_gap(game, policy)
    gains, _ = _openspiel_nash_conv(meta, policy)
    np.testing.assert_allclose(ours.policy_values, _openspiel_values(meta, policy), atol=EXACT)
    assert np.all(np.asarray(ours.gains) >= gains - EXACT)
    assert np.any(np.asarray(ours.gains) > gains + 1e-3)


# ----------------------------------------------------------------------------------------------
# Policies.
# ----------------------------------------------------------------------------------------------


def test_policy_round_trip_folds_illegal_mass():
    game, meta = from_openspiel(OSHI_ZUMO, discount=0.9, state_key="string")
    policy = _policy(game, 8)
    back = policy_from_openspiel(policy_to_openspiel(policy, meta), meta)
    for p, q, mask in zip(policy, back, meta.legal_actions):
        p = np.asarray(p, dtype=np.float64)
        for s in range(game.num_states - 1):
            legal = np.flatnonzero(mask[s])
            expected = np.where(mask[s], p[s], 0.0)
            expected[legal[0]] += p[s][~mask[s]].sum()
            np.testing.assert_allclose(q[s], expected, atol=1e-6)


def test_openspiel_tabular_policy_to_jaxmail(x64):
    """An OpenSpiel TabularPolicy (random rows) read into jaxmail: the same gains."""
    game, meta = from_openspiel(NIM, discount=0.9, preserve_returns=True)
    tabular = policy_lib.TabularPolicy(meta.game)
    rng = np.random.default_rng(0)
    probs = rng.random(tabular.action_probability_array.shape) * tabular.legal_actions_mask
    tabular.action_probability_array[:] = probs / probs.sum(axis=1, keepdims=True)
    theirs = exploitability.nash_conv(meta.game, tabular, return_only_nash_conv=False)
    ours = jm.nash_gap(game, policy_from_openspiel(tabular, meta))
    assert theirs.nash_conv > 0.1
    np.testing.assert_allclose(ours.gains, theirs.player_improvements, rtol=0, atol=EXACT)


def test_policy_to_openspiel_at_simultaneous_node_needs_player():
    game, meta = from_openspiel("matrix_pd", discount=0.0)
    os_policy = policy_to_openspiel(jm.uniform_policy(game), meta)
    state = meta.game.new_initial_state()
    assert os_policy.action_probabilities(state, 1) == {0: 0.5, 1: 0.5}
    with pytest.raises(ValueError, match="player_id"):
        os_policy.action_probabilities(state)
    with pytest.raises(ValueError, match="policy"):
        policy_to_openspiel(jm.uniform_policy(game)[:1], meta)


# ----------------------------------------------------------------------------------------------
# Errors.
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(discount=1.0), "discount"),
        (dict(discount=0.0, preserve_returns=True), "discount"),
        (dict(discount=0.9, state_key="bogus"), "state_key"),
        (dict(discount=0.9, illegal_actions="bogus"), "illegal_actions"),
        (dict(discount=0.9, max_states=3), "max_states"),
        (dict(discount=0.9, max_states=0), "max_states"),
        (dict(discount=0.9, max_bytes=500), "max_bytes"),  # needs 6 * 6 * 4 * 4 = 576
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        from_openspiel(REPEATED_PD, **kwargs)


def test_missing_openspiel_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyspiel", None)  # makes `import pyspiel` fail
    with pytest.raises(ImportError, match=r'pip install "jaxmail\[openspiel\]"'):
        from_openspiel("matrix_pd", discount=0.0)


def test_chance_folds_into_initial_and_transitions(x64):
    """goofspiel(points_order=random): each round's point card is drawn by chance."""
    game, meta = from_openspiel(GOOFSPIEL, discount=0.9)
    np.testing.assert_allclose(game.initial[game.initial > 0], 1 / 3)  # the first point card
    counts = collections.Counter(int(d) for d in meta.depth[meta.depth >= 0])
    assert counts[0] == 3  # one root decision state per first card
    np.testing.assert_allclose(np.asarray(game.transition).sum(-1), 1.0, atol=1e-12)
