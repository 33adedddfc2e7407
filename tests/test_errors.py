"""Every bad input named in docs/design.md §4 raises a clear error naming the field.

Messages are checked with ``pytest.raises(..., match=...)``: the field, and where the design asks
for it the tolerance and the place and size of the worst violation. Games are float32 here
(the default), so probabilities must sum to 1 within 1e-4 (``game.probability_atol``).
"""

import re

import helpers as h
import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import jaxmail as jm

S, ACTS, GAMMA = 3, (2, 3), 0.9


@pytest.fixture
def arrays():
    P, R, mu0, policy = h.instance(0, S, ACTS, GAMMA)
    return dict(P=P, R=R, mu0=mu0, policy=policy)


def _game(P, R, mu0, gamma=GAMMA):
    return jm.MarkovGame(transition=P, reward=R, initial=mu0, discount=gamma)


# ---------------------------------------------------------------------------------------------
# Structure: shapes and player counts.
# ---------------------------------------------------------------------------------------------


def test_reward_shape_must_match_transition(arrays):
    P, R, mu0 = arrays["P"], arrays["R"], arrays["mu0"]
    with pytest.raises(
        ValueError,
        match=r"reward: shape \(2, 2, 2, 3\) disagrees with transition "
        r"shape \(3, 2, 3, 3\); expected \(2, 3, 2, 3\)",
    ):
        _game(P, R[:, :2], mu0)
    pattern = r"reward: .*2-player transition.*got shape \(1, 3, 2, 3\)"
    with pytest.raises(ValueError, match=pattern):
        _game(P, R[:1], mu0)  # one player's rewards for a two-player game
    with pytest.raises(ValueError, match=r"reward: .*got shape \(2, 3, 2\)"):
        _game(P, R[..., 0], mu0)  # an action axis missing
    with pytest.raises(ValueError, match=r"reward: shape \(2, 3, 3, 2\) disagrees"):
        _game(P, np.swapaxes(R, 2, 3), mu0)  # action axes in the wrong order


def test_initial_must_have_length_s(arrays):
    pattern = r"initial: expected shape \[S\] = \(3,\), got shape "
    with pytest.raises(ValueError, match=pattern + r"\(2,\)"):
        _game(arrays["P"], arrays["R"], np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match=pattern + r"\(1, 3\)"):
        _game(arrays["P"], arrays["R"], arrays["mu0"][None])


def test_transition_axes_must_agree(arrays):
    P, R, mu0 = arrays["P"], arrays["R"], arrays["mu0"]
    with pytest.raises(ValueError, match=r"transition: first and last axes .* \(3 != 2\)"):
        _game(P[..., :2], R, mu0)
    with pytest.raises(ValueError, match=r"transition: expected shape \[S, A_1, \.\.\., A_n, S\]"):
        _game(np.ones((1, 1)), R, mu0)
    with pytest.raises(ValueError, match="transition: every axis needs at least one entry"):
        _game(np.ones((3, 0, 3)), np.ones((1, 3, 0)), mu0)


def test_discount_must_be_a_scalar(arrays):
    with pytest.raises(ValueError, match=r"discount: expected a scalar, got shape \(1,\)"):
        _game(arrays["P"], arrays["R"], arrays["mu0"], np.array([0.9]))


def test_policy_must_have_one_array_per_player(arrays):
    game = _game(arrays["P"], arrays["R"], arrays["mu0"])
    policy = arrays["policy"]
    with pytest.raises(ValueError, match="policy: the game has 2 players but the policy has 1"):
        jm.values(game, policy[:1])
    with pytest.raises(ValueError, match="policy: the game has 2 players but the policy has 3"):
        jm.nash_gap(game, (*policy, policy[0]))
    with pytest.raises(ValueError, match=r"policy: expected a tuple of 2 arrays .* got ndarray"):
        jm.values(game, policy[0])
    with pytest.raises(
        ValueError,
        match=r"policy\[1\]: expected shape \[S, A_1\] = \(3, 3\), "
        r"got \(3, 2\)",
    ):
        jm.state_occupancy(game, (policy[0], policy[1][:, :2]))
    with pytest.raises(
        ValueError,
        match=r"policy\[0\]: expected shape \[S, A_0\] = \(3, 2\), "
        r"got \(2, 2\)",
    ):
        jm.values(game, (policy[0][:2], policy[1]))
    with pytest.raises(ValueError, match=r"expert: the game has 2 players"):
        jm.bc_error(game, policy, expert=policy[:1])


def test_structure_is_checked_under_jit_too(arrays):
    game = _game(arrays["P"], arrays["R"], arrays["mu0"])
    policy = arrays["policy"]
    with pytest.raises(ValueError, match=r"policy\[1\]: expected shape"):
        jax.jit(jm.values)(game, (policy[0], policy[1][:, :2]))
    with pytest.raises(ValueError, match="player: 2 is out of range"):
        jax.jit(lambda g, p: jm.best_response(g, p, 2))(game, policy)
    with pytest.raises(ValueError, match="reward: shape"):
        jax.jit(lambda P, R, mu0: _game(P, R, mu0))(arrays["P"], arrays["R"][:, :2], arrays["mu0"])


# ---------------------------------------------------------------------------------------------
# Values: probabilities, NaN/inf, discount range.
# ---------------------------------------------------------------------------------------------


def test_transition_rows_must_sum_to_one(arrays):
    P = arrays["P"].copy()
    P[1, 0, 2] *= 0.9  # this row sums to 0.9
    P[2, 1, 1] *= 0.99  # a smaller violation elsewhere: the message names the WORST row
    with pytest.raises(
        ValueError,
        match=r"transition: rows must sum to 1 within 0\.0001; worst row \(s=1, a=\(0, 2\)\) "
        r"sums to 0\.9\b",
    ):
        _game(P, arrays["R"], arrays["mu0"])


def test_transition_rows_within_tolerance_are_accepted(arrays):
    P = arrays["P"].copy()
    P[1, 0, 2, 0] += 5e-5  # off by half the float32 tolerance
    game = _game(P, arrays["R"], arrays["mu0"])
    # Accepted as given: nothing is renormalised.
    assert float(np.asarray(game.transition)[1, 0, 2].sum()) == pytest.approx(1 + 5e-5, abs=1e-6)


def test_transition_must_not_be_negative(arrays):
    P = arrays["P"].copy()
    P[1, 0, 2, 0] = -0.3
    P[1, 0, 2, 1] += 0.3 + arrays["P"][1, 0, 2, 0]  # the row still sums to 1
    with pytest.raises(
        ValueError,
        match=r"transition: probabilities must be non-negative; most negative entry at index "
        r"\(1, 0, 2, 0\) is -0\.3 \(tolerance 0\.0001\)",
    ):
        _game(P, arrays["R"], arrays["mu0"])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("field", ["transition", "reward", "initial"])
def test_nan_and_inf_are_rejected(arrays, field, bad):
    P, R, mu0 = arrays["P"].copy(), arrays["R"].copy(), arrays["mu0"].copy()
    target = {"transition": P, "reward": R, "initial": mu0}[field]
    index = {"transition": (2, 1, 0, 1), "reward": (1, 2, 0, 1), "initial": (1,)}[field]
    target[index] = bad
    pattern = rf"{field}: 1 entries are NaN or inf; first at index {re.escape(str(index))}"
    with pytest.raises(ValueError, match=pattern):
        _game(P, R, mu0)


@pytest.mark.parametrize("gamma", [-0.1, 1.0, 1.5, np.nan, np.inf])
def test_discount_must_lie_in_zero_one(arrays, gamma):
    with pytest.raises(ValueError, match=r"discount: must lie in \[0, 1\), got"):
        _game(arrays["P"], arrays["R"], arrays["mu0"], gamma)


def test_discount_that_rounds_to_one_in_float32(arrays):
    with pytest.raises(ValueError, match="discount: 0.99999999 rounds to 1.0 in float32"):
        _game(arrays["P"], arrays["R"], arrays["mu0"], 0.99999999)


def test_discount_close_to_one_is_fine_under_x64(x64, arrays):
    game = _game(arrays["P"], arrays["R"], arrays["mu0"], 0.99999999)
    assert float(game.discount) == 0.99999999


@pytest.mark.parametrize(
    "mu0, pattern",
    [
        (np.array([0.5, 0.4, 0.0]), r"initial: rows must sum to 1 within 0\.0001; .*sums to 0\.9"),
        (np.array([1.2, -0.2, 0.0]), r"initial: probabilities must be non-negative; .* -0\.2"),
        (np.zeros(3), r"initial: rows must sum to 1 .*sums to 0\b"),
    ],
)
def test_initial_must_be_a_distribution(arrays, mu0, pattern):
    with pytest.raises(ValueError, match=pattern):
        _game(arrays["P"], arrays["R"], mu0)


@pytest.mark.parametrize("field", ["transition", "reward", "initial", "discount"])
def test_non_real_dtypes_raise_type_error(arrays, field):
    kwargs = dict(transition=arrays["P"], reward=arrays["R"], initial=arrays["mu0"], discount=GAMMA)
    kwargs[field] = np.asarray(kwargs[field]).astype(complex)
    with pytest.raises(
        TypeError,
        match=rf"{field}: expected a real numeric array, got dtype "
        r"kind 'c'",
    ):
        jm.MarkovGame(**kwargs)
    kwargs[field] = np.asarray(kwargs[field]).astype(str)
    with pytest.raises(TypeError, match=rf"{field}: expected a real numeric array"):
        jm.MarkovGame(**kwargs)


def test_policy_rows_must_be_distributions(arrays):
    game = _game(arrays["P"], arrays["R"], arrays["mu0"])
    p0, p1 = arrays["policy"]
    bad = p1.copy()
    bad[2] *= 0.5
    with pytest.raises(
        ValueError,
        match=r"policy\[1\]: rows must sum to 1 within 0\.0001; worst row "
        r"\(s=2\) sums to 0\.5\b",
    ):
        jm.values(game, (p0, bad))
    neg = np.array([[1.5, -0.5]] * S)
    with pytest.raises(
        ValueError,
        match=r"policy\[0\]: probabilities must be non-negative; most "
        r"negative entry at index \(0, 1\) is -0\.5",
    ):
        jm.expected_values(game, (neg, p1))
    nan = p0.copy()
    nan[1, 1] = np.nan
    with pytest.raises(ValueError, match=r"policy\[0\]: 1 entries are NaN or inf"):
        jm.state_occupancy(game, (nan, p1))
    # The expert of a metric is named "expert".
    with pytest.raises(ValueError, match=r"expert\[1\]: rows must sum to 1"):
        jm.bc_error(game, (p0, p1), expert=(p0, bad))
    # check_policy is the public entry point of the same check.
    with pytest.raises(ValueError, match=r"policy\[1\]: rows must sum to 1"):
        jm.check_policy(game, (p0, bad))


# ---------------------------------------------------------------------------------------------
# Player indices, action indices, method and solver names.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("player", [-1, 2, 10])
def test_player_out_of_range(arrays, player):
    game = _game(arrays["P"], arrays["R"], arrays["mu0"])
    pattern = rf"player: {player} is out of range for a 2-player game \(valid: 0\.\.1\)"
    with pytest.raises(ValueError, match=pattern):
        jm.best_response(game, arrays["policy"], player)
    with pytest.raises(ValueError, match=pattern):
        jm.induced_mdp(game, arrays["policy"], player)
    with pytest.raises(ValueError, match=pattern):
        jm.best_response_set(game, arrays["policy"], player)


@pytest.mark.parametrize("player", [1.0, True, "0", None, np.array(0)])
def test_player_must_be_a_python_int(arrays, player):
    game = _game(arrays["P"], arrays["R"], arrays["mu0"])
    with pytest.raises(ValueError, match=r"player: expected a Python int \(static\), got"):
        jm.best_response(game, arrays["policy"], player)


def test_numpy_integer_player_is_accepted(x64, arrays):
    game = _game(arrays["P"], arrays["R"], arrays["mu0"])
    mdp = jm.induced_mdp(game, arrays["policy"], np.int64(1))
    assert mdp.reward.shape == (S, 3)


def test_deterministic_policy_rejects_bad_indices(arrays):
    game = _game(arrays["P"], arrays["R"], arrays["mu0"])
    good = [np.array([0, 1, 1]), np.array([0, 1, 2])]
    pi = jm.deterministic_policy(game, good)
    np.testing.assert_array_equal(pi[1], np.eye(3))
    pattern = r"actions\[0\]: index 2 at state 2 is out of range \[0, 2\)"
    with pytest.raises(ValueError, match=pattern):
        jm.deterministic_policy(game, [np.array([0, 1, 2]), good[1]])
    pattern = r"actions\[1\]: index -1 at state 0 is out of range \[0, 3\)"
    with pytest.raises(ValueError, match=pattern):
        jm.deterministic_policy(game, [good[0], np.array([-1, 1, 2])])
    with pytest.raises(ValueError, match=r"actions\[1\]: index 3 at state 1 is out of range"):
        jm.deterministic_policy(game, [good[0], np.array([0, 3, 2])])
    pattern = r"actions\[0\]: expected integer indices, got dtype float64"
    with pytest.raises(ValueError, match=pattern):
        jm.deterministic_policy(game, [np.array([0.0, 1.0, 1.0]), good[1]])
    with pytest.raises(ValueError, match=r"actions: expected 2 arrays \(one per player\), got 1"):
        jm.deterministic_policy(game, good[:1])
    with pytest.raises(ValueError, match=r"actions: expected 2 arrays \(one per player\), got 3"):
        jm.deterministic_policy(game, [*good, good[0]])
    pattern = r"actions\[1\]: expected shape \[S\] = \(3,\), got \(2,\)"
    with pytest.raises(ValueError, match=pattern):
        jm.deterministic_policy(game, [good[0], np.array([0, 1])])


def test_unknown_method_names(arrays):
    game = _game(arrays["P"], arrays["R"], arrays["mu0"])
    policy = arrays["policy"]
    pattern = r"method: expected one of \('policy_iteration', 'value_iteration'\), got 'newton'"
    for call in (
        lambda: jm.best_response(game, policy, 0, method="newton"),
        lambda: jm.best_responses(game, policy, method="newton"),
        lambda: jm.nash_gap(game, policy, method="newton"),
        lambda: jm.best_response_set(game, policy, 0, method="newton"),
        lambda: jm.solve_mdp(np.ones((2, 2, 2)) / 2, np.ones((2, 2)), GAMMA, method="newton"),
    ):
        with pytest.raises(ValueError, match=pattern):
            call()


def test_unknown_solver_names(arrays):
    game = _game(arrays["P"], arrays["R"], arrays["mu0"])
    policy = arrays["policy"]
    pattern = r"solver: expected one of \('lu', 'iterative'\), got 'cg'"
    for fn in (
        jm.evaluate,
        jm.values,
        jm.expected_values,
        jm.state_occupancy,
        jm.state_action_occupancy,
        jm.joint_state_action_occupancy,
        jm.q_values,
        jm.joint_q_values,
    ):
        with pytest.raises(ValueError, match=pattern):
            fn(game, policy, solver="cg")


def test_solve_mdp_rejects_bad_shapes():
    pattern = r"transition: expected shape \[S, A, S\], got \(2, 2, 3\)"
    with pytest.raises(ValueError, match=pattern):
        jm.solve_mdp(np.ones((2, 2, 3)) / 3, np.ones((2, 2)), GAMMA)
    pattern = r"reward: expected shape \[S, A\] = \(2, 2\), got \(2, 3\)"
    with pytest.raises(ValueError, match=pattern):
        jm.solve_mdp(np.ones((2, 2, 2)) / 2, np.ones((2, 3)), GAMMA)


# ---------------------------------------------------------------------------------------------
# Properties (hypothesis).
# ---------------------------------------------------------------------------------------------


@st.composite
def _shapes(draw):
    n = draw(st.integers(1, 3))
    acts = tuple(draw(st.lists(st.integers(1, 3), min_size=n, max_size=n)))
    return draw(st.integers(1, 4)), acts


def _valid(S, acts):
    P = np.full((S, *acts, S), 1.0 / S)
    R = np.zeros((len(acts), S, *acts))
    mu0 = np.full(S, 1.0 / S)
    return P, R, mu0


@given(shape=_shapes(), field=st.sampled_from(["reward", "initial", "transition"]), data=st.data())
def test_any_shape_mismatch_names_its_field(shape, field, data):
    S, acts = shape
    P, R, mu0 = _valid(S, acts)
    if field == "reward":
        # Grow, or drop, one axis of the reward.
        axis = data.draw(st.integers(0, R.ndim - 1), label="axis")
        if data.draw(st.booleans(), label="drop"):
            R = R.sum(axis=axis)
        else:
            R = np.concatenate([R, np.take(R, [0], axis=axis)], axis=axis)
    elif field == "initial":
        size = data.draw(st.integers(0, 6).filter(lambda k: k != S), label="size")
        mu0 = np.full(size, 1.0 / max(size, 1))
    else:
        # The next-state axis of the transition disagrees with its first axis.
        k = data.draw(st.integers(1, 6).filter(lambda k: k != S), label="next states")
        P = np.full((S, *acts, k), 1.0 / k)
    with pytest.raises(ValueError, match=rf"^{field}: "):
        _game(P, R, mu0)


@given(
    shape=_shapes(),
    delta=st.floats(2e-4, 0.5),
    data=st.data(),
)
def test_any_perturbed_transition_row_is_found(shape, delta, data):
    S, acts = shape
    P, R, mu0 = _valid(S, acts)
    row = tuple(data.draw(st.integers(0, k - 1), label="row index") for k in P.shape[:-1])
    entry = data.draw(st.integers(0, S - 1), label="entry")
    P[(*row, entry)] += delta  # that row sums to 1 + delta > 1 + 1e-4; the others to 1
    with pytest.raises(ValueError) as info:
        _game(P, R, mu0)
    message = str(info.value)
    assert message.startswith("transition: rows must sum to 1 within 0.0001; worst row")
    assert f"(s={row[0]}, a={row[1:]})" in message, message
    reported = float(message.rsplit("sums to ", 1)[1].split(" (off by")[0])
    assert reported == pytest.approx(1 + delta, rel=1e-5)


@given(
    shape=_shapes(),
    scale=st.floats(0.0, 2.0).filter(lambda x: abs(x - 1) > 1e-3),
    data=st.data(),
)
def test_any_perturbed_policy_row_is_found(shape, scale, data):
    S, acts = shape
    P, R, mu0 = _valid(S, acts)
    game = _game(P, R, mu0)
    policy = [np.full((S, a), 1.0 / a) for a in acts]
    player = data.draw(st.integers(0, len(acts) - 1), label="player")
    state = data.draw(st.integers(0, S - 1), label="state")
    policy[player][state] *= scale
    with pytest.raises(
        ValueError,
        match=rf"^policy\[{player}\]: rows must sum to 1 within 0\.0001; worst row "
        rf"\(s={state}\)",
    ):
        jm.check_policy(game, tuple(policy))
