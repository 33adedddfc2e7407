"""jaxmail.testing: the contract checks pass on jaxmail's own generators, solvers and learners,
and fail, naming the contract, on objects built to break one contract each."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmail as jm
from jaxmail import testing

S, A = 3, (2, 2)
GAMMA = 0.9
generator = functools.partial(jm.games.random_game, num_states=S, num_actions=A, discount=GAMMA)


@pytest.fixture(scope="module")
def game():
    return generator(jax.random.key(0))


def qre(game):
    # The default iteration cap (converged in 15 iterations here): the same compiled program as
    # the logit_qre call of tests/test_experiment_families.py, so the suite compiles it once.
    return jm.equilibria.logit_qre(game, temperature=0.5)


def bc_learner(key, game, expert):
    data = jm.data.sample_demonstrations(key, game, expert, num_trajectories=8, horizon=5)
    return jm.imitation.behavior_cloning(game, data, smoothing=1.0)


def test_jaxmail_objects_pass(game):
    testing.assert_game(game)
    testing.assert_generator(generator)
    testing.assert_policy(game, jm.uniform_policy(game))


# quick: test_a_solver_with_hidden_state_fails runs assert_solver's eager and certificate checks
# on the same qre (compiling its jit and vmap copies costs ~8 s)
@pytest.mark.slow
def test_more_jaxmail_objects_pass(game):
    testing.assert_solver(qre, game)
    testing.assert_game(jm.games.matching_pennies())
    testing.assert_generator(
        functools.partial(jm.games.zero_sum_game, num_states=S, num_actions=A, discount=GAMMA)
    )
    testing.assert_learner(bc_learner, game, jm.random_policy(jax.random.key(3), game))


def test_a_generator_that_ignores_its_key_fails():
    fixed = generator(jax.random.key(7))
    with pytest.raises(AssertionError, match="keys: two different keys gave the same game"):
        testing.assert_generator(lambda key: fixed)


def test_an_impure_generator_fails():
    state = {"calls": 0}

    def impure(key):  # a hidden counter shifts the rewards: eager calls differ
        state["calls"] += 1
        g = generator(key)
        return g.replace(reward=g.reward + 0.01 * state["calls"])

    with pytest.raises(AssertionError, match="pure"):
        testing.assert_generator(impure)


def test_a_solver_whose_certificate_lies_fails(game):
    def liar(g):
        record = qre(g)
        gap = record.nash_gap
        return record._replace(nash_gap=gap._replace(gains=gap.gains * 0.0))

    # The QRE at tau = 0.5 is not a Nash equilibrium: its true gains are far from 0.
    assert float(jm.nash_gap(game, qre(game).policy).nash_gap) > 1e-2
    with pytest.raises(AssertionError, match="certificate"):
        testing.assert_solver(liar, game)


def test_a_solver_with_hidden_state_fails(game):
    calls = [0]

    def impure_solver(g):  # a hidden call counter moves the policy on every other call
        calls[0] += 1
        record = qre(g)
        t = 0.1 * (calls[0] % 2)
        policy = (record.policy[0] * (1 - t) + t / A[0], *record.policy[1:])
        return record._replace(policy=policy, nash_gap=jm.nash_gap(g, policy))

    with pytest.raises(AssertionError, match="deterministic"):
        testing.assert_solver(impure_solver, game)


def test_an_invalid_policy_fails(game):
    bad = (jnp.full((S, 2), 0.6, game.dtype), jm.uniform_policy(game)[1])
    with pytest.raises(AssertionError, match=r"policy\[0\]: a row sums to 1"):
        testing.assert_policy(game, bad)
    with pytest.raises(AssertionError, match="expected a tuple of 2"):
        testing.assert_policy(game, bad[:1])


def test_bad_learners_fail(game):
    expert = jm.random_policy(jax.random.key(3), game)
    no_steps = jnp.zeros((0,), game.dtype)

    def bare_policy(key, g, target):  # a policy, not a Fit record
        return target

    with pytest.raises(AssertionError, match="learner record: expected a jaxmail.imitation.Fit"):
        testing.assert_learner(bare_policy, game, expert)

    def not_normalised(key, g, target):
        return jm.imitation.Fit((target[0] * 2.0, target[1]), no_steps)

    with pytest.raises(AssertionError, match="learned policy"):
        testing.assert_learner(not_normalised, game, expert)

    def nan_curve(key, g, target):
        return jm.imitation.Fit(target, jnp.full((3,), jnp.nan, g.dtype))

    with pytest.raises(AssertionError, match="learner losses"):
        testing.assert_learner(nan_curve, game, expert)

    calls = [0]

    def stateful(key, g, target):  # a hidden counter changes the result between calls
        calls[0] += 1
        t = 0.2 * (calls[0] % 2)
        return jm.imitation.Fit((target[0] * (1 - t) + t / A[0], target[1]), no_steps)

    with pytest.raises(AssertionError, match="deterministic in the key"):
        testing.assert_learner(stateful, game, expert)

    def hidden_curve(key, g, target):  # the curve depends on hidden state
        calls[0] += 1
        return jm.imitation.Fit(target, jnp.full((2,), float(calls[0]), g.dtype))

    with pytest.raises(AssertionError, match=r"deterministic in the key \(losses\)"):
        testing.assert_learner(hidden_curve, game, expert)


def test_tolerances_follow_dtype_and_discount(game):
    eps = np.finfo(np.float32).eps
    r_max = float(np.max(np.abs(np.asarray(game.reward))))
    assert testing.value_tolerance(game) == pytest.approx(64 * eps * max(1, r_max) / (1 - GAMMA))
    assert testing.policy_tolerance(game) == pytest.approx(np.sqrt(eps))
