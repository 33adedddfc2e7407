"""Checked mode (jaxmail/checking.py) and mixed dtypes.

The three reproductions of values that the kernels trust inside ``jit``: a discount of 1.5, a
NaN reward and out-of-range action indices. Unchecked, each returns a number with
``converged=True``; under ``jm.checked`` each raises a ValueError naming the field and the
violation, and valid inputs give the unchecked numbers. One small game (S = 3, actions (2, 2))
serves every test, so the kernels compile a few times only.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmail as jm
from jaxmail import checking
from jaxmail import data as jd

S, ACTIONS, GAMMA = 3, (2, 2), 0.9


@pytest.fixture(scope="module")
def game():
    return jm.games.random_game(
        jax.random.key(0), num_states=S, num_actions=ACTIONS, discount=GAMMA
    )


@pytest.fixture(scope="module")
def gap(game):
    """``(discount, reward entry, actions) -> NashGap``, the game and policy built inside jit.

    One jitted function for the three reproductions and the valid case: it compiles once
    unchecked and once checked.
    """

    @jax.jit
    def gap(discount, x, actions):
        g = game.replace(discount=discount, reward=game.reward.at[0, 1, 0, 1].set(x))
        return jm.nash_gap(g, jm.deterministic_policy(g, (actions, actions)))

    return gap


def _valid(game):
    """Valid arguments of ``gap``: the game's own discount and reward entry, actions in range.

    Every call passes float32 arrays and int32 actions, so that all calls share one trace.
    """
    return jnp.float32(GAMMA), game.reward[0, 1, 0, 1], jnp.array([0, 1, 1], jnp.int32)


def test_discount_out_of_range_inside_jit(game, gap):
    _, x, actions = _valid(game)
    unchecked = gap(jnp.float32(1.5), x, actions)  # the reproduction: a number, "converged"
    assert bool(jnp.all(unchecked.converged))
    assert float(jnp.min(unchecked.gains)) < 0  # impossible for a discount in [0, 1)
    # The same jit, already traced unchecked for these shapes: checked mode retraces it.
    with pytest.raises(ValueError, match=r"^discount: must lie in \[0, 1\) in float32, got 1\.5"):
        jm.checked(gap)(jnp.float32(1.5), x, actions)
    with pytest.raises(ValueError, match=r"discount: .* got -0\.5"):
        jm.checked(gap)(jnp.float32(-0.5), x, actions)


def test_valid_inputs_give_the_unchecked_numbers(game, gap):
    want = gap(*_valid(game))
    got = jm.checked(gap)(*_valid(game))
    # The checks only add host callbacks; the arithmetic is the same program's.
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_array_equal(a, b)
    # Checked mode does not leak: afterwards the unchecked jit serves bad input silently again,
    # and its program carries no callback.
    _, x, actions = _valid(game)
    assert bool(jnp.all(gap(jnp.float32(1.5), x, actions).converged))
    assert "callback" not in str(jax.make_jaxpr(gap)(*_valid(game)))
    with checking._CHECKED(True):
        assert "callback" in str(jax.make_jaxpr(gap)(*_valid(game)))


def test_nan_reward_inside_jit(game, gap):
    discount, _, actions = _valid(game)
    unchecked = gap(discount, jnp.float32(jnp.nan), actions)
    assert np.isnan(float(unchecked.nash_gap)) and bool(jnp.all(unchecked.converged))
    message = r"^reward: 1 entries are NaN or inf; first at index \(0, 1, 0, 1\) = nan"
    with pytest.raises(ValueError, match=message):
        jm.checked(gap)(discount, jnp.float32(jnp.nan), actions)


def test_deterministic_policy_indices_out_of_range_inside_jit(game, gap):
    discount, x, _ = _valid(game)
    bad = jnp.array([0, 5, 1], jnp.int32)
    assert np.isfinite(float(gap(discount, x, bad).nash_gap))  # rows of zeros, still a gap
    with pytest.raises(ValueError, match=r"^actions\[0\]: index 5 at state 1 is out of range"):
        jm.checked(gap)(discount, x, bad)


def test_policy_rows_inside_vmap(game):
    # A batch of policies, one of them with a row summing to 0.5: the kernel's check reports it
    # (the callback runs once per batch element). The while loops of nash_gap under vmap are
    # covered above (best responses are vmapped over players).
    uniform = jm.uniform_policy(game)
    p0 = jnp.stack([uniform[0], uniform[0].at[2].set(jnp.array([0.25, 0.25]))])
    p1 = jnp.stack([uniform[1], uniform[1]])
    gaps = jax.jit(jax.vmap(lambda a, b: jm.expected_values(game, (a, b))))
    message = (
        r"^policy\[0\]: rows must sum to 1 within 0\.0001; worst row \(s=2\) sums to 0\.5 "
        r"\(off by 0\.5\)"
    )
    with pytest.raises(ValueError, match=message):
        jm.checked(gaps)(p0, p1)


def test_dataset_indices_inside_jit(game):
    @jax.jit
    def occupancy(states):
        n, t = states.shape
        data = jd.Dataset(
            states=states,
            actions=jnp.zeros((n, t, 2), jnp.int32),
            mask=jnp.ones((n, t), bool),
            weights=jnp.ones((n, t)),
        )
        return jd.empirical_state_occupancy(game, data)

    states = jnp.array([[0, 1, 2], [2, 7, 0]])
    with pytest.raises(ValueError, match=r"^data: state 7 out of range \[0, 3\) at \(traj"):
        jm.checked(occupancy)(states)
    # states % 3 = [[0, 1, 2], [2, 1, 0]]: every state twice, equal weights.
    np.testing.assert_allclose(jm.checked(occupancy)(states % S), [1 / 3] * 3, rtol=1e-6)


def test_game_arguments_and_nan_results(game):
    # A game rebuilt from leaves skips validation; checked checks games among its arguments.
    bad = jax.tree.map(lambda x: x, game)
    bad = jm.MarkovGame.tree_unflatten(None, (bad.transition, bad.reward, bad.initial, 1.0))
    with pytest.raises(ValueError, match=r"^args\[0\]\.discount: must lie in \[0, 1\)"):
        jm.checked(lambda g: g.discount)(bad)
    # A NaN result from valid inputs: named by its path in the output.
    with pytest.raises(ValueError, match=r"^result\[1\]: 1 entries are NaN; first at index \(0,\)"):
        jm.checked(jax.jit(lambda x: (x, jnp.log(x))))(jnp.array([-1.0, 1.0]))
    with pytest.raises(RuntimeError, match="outermost"):
        jax.jit(jm.checked(lambda x: x))(1.0)


# ----------------------------------------------------------------------------------------------
# Mixed dtypes: a policy wider than the game raises instead of being rounded.
# ----------------------------------------------------------------------------------------------


def test_a_float64_policy_for_a_float32_game_raises(x64):
    game = jm.MarkovGame(  # float64 under x64; built from NumPy (nothing to compile)
        transition=np.full((S, *ACTIONS, S), 1 / S),
        reward=np.zeros((2, S, *ACTIONS)),
        initial=np.full(S, 1 / S),
        discount=GAMMA,
    )
    game32 = jax.tree.map(lambda x: x.astype(jnp.float32), game)  # how a float32 game arises
    policy64 = jm.uniform_policy(game)
    assert game32.dtype == jnp.float32 and policy64[0].dtype == jnp.float64
    message = r"policy\[0\]: dtype float64 is wider than the game's float32"
    with pytest.raises(TypeError, match=message):
        jm.nash_gap(game32, policy64)  # before: computed silently in float32
    with pytest.raises(TypeError, match=r"expert\[0\]: dtype float64"):
        jm.check_policy(game32, policy64, name="expert")
    # Lossless uses follow JAX's promotion: a float32 policy for a float64 game, weakly typed
    # Python numbers.
    policy32 = tuple(p.astype(jnp.float32) for p in policy64)
    assert jm.check_policy(game, policy32)[0].dtype == jnp.float64
    assert jm.check_policy(game32, ([[0.5, 0.5]] * S,) * 2)[0].dtype == jnp.float32


def test_numpy_float64_policy_is_float32_without_x64(game):
    # Without jax_enable_x64 JAX reads NumPy float64 as float32: no error, as JAX would.
    policy = (np.full((S, 2), 0.5), np.full((S, 2), 0.5))
    assert jm.check_policy(game, policy)[0].dtype == jnp.float32
