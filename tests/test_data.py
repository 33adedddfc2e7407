"""Demonstrations: sampling against exact occupancies, empirical measures, files, errors."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference as ref
from helpers import instance, make_game

import jaxmail as jm
from jaxmail import data as jd

GAMMA = 0.9
NUM_STATES, NUM_ACTIONS = 5, (2, 3)


@pytest.fixture(scope="module")
def setting():
    P, R, mu0, policy = instance(0, NUM_STATES, NUM_ACTIONS, GAMMA)
    return P, R, mu0, policy, make_game(P, R, mu0, GAMMA)


# One sample per length mode, shared by the tests below: sample_demonstrations compiles once per
# (num_trajectories, horizon, lengths), so the file uses few such shapes.
NUM_TRAJECTORIES, HORIZON = 20_000, 80


@pytest.fixture(scope="module")
def samples(setting):
    *_, policy, game = setting
    return {
        lengths: jd.sample_demonstrations(
            jax.random.key(1),
            game,
            policy,
            num_trajectories=NUM_TRAJECTORIES,
            horizon=HORIZON,
            lengths=lengths,
        )
        for lengths in ("fixed", "geometric")
    }


def _prefix(data, k):
    """The first ``k`` trajectories as a NumPy-backed dataset (no JAX computation)."""
    return jd.Dataset(
        states=np.asarray(data.states)[:k],
        actions=np.asarray(data.actions)[:k],
        mask=np.asarray(data.mask)[:k],
        weights=np.asarray(data.weights)[:k],
    )


def _numpy_histogram(data, num_states, num_actions):
    """Loop reference of the weighted masked histograms (module docstring of jaxmail.data)."""
    states, actions = np.asarray(data.states), np.asarray(data.actions)
    w = np.asarray(data.weights, np.float64) * np.asarray(data.mask)
    mu = np.zeros(num_states)
    rho = [np.zeros((num_states, a)) for a in num_actions]
    joint = np.zeros((num_states, *num_actions))
    for k, t in np.ndindex(states.shape):
        s = states[k, t]
        mu[s] += w[k, t]
        for i in range(len(num_actions)):
            rho[i][s, actions[k, t, i]] += w[k, t]
        joint[(s, *actions[k, t])] += w[k, t]
    total = w.sum()
    return mu / total, [r / total for r in rho], joint / total


@pytest.mark.parametrize("lengths", ["fixed", "geometric"])
def test_empirical_occupancy_estimates_the_exact_one(setting, samples, lengths):
    P, _, mu0, policy, game = setting
    data = samples[lengths]
    N, T = NUM_TRAJECTORIES, HORIZON
    assert data.states.shape == (N, T) and data.actions.shape == (N, T, 2)
    assert data.states.dtype == jnp.int32 and data.mask.dtype == jnp.bool_
    mu = jd.empirical_state_occupancy(game, data)
    rho = jd.empirical_state_action_occupancy(game, data)
    joint = jd.empirical_joint_state_action_occupancy(game, data)
    # Each trajectory contributes a sub-distribution with entries in [0, 1], so an entry of the
    # mean over N = 20000 trajectories has standard deviation <= 1 / (2 sqrt(N)) = 0.0035 (fixed
    # horizon; the geometric ratio estimator behaves alike); the horizon truncates gamma^80 ~ 2e-4.
    # Five standard deviations: 0.018.
    tol = 5 / (2 * np.sqrt(N)) + GAMMA**T
    np.testing.assert_allclose(mu, ref.state_occupancy(P, mu0, GAMMA, policy), atol=tol)
    for got, want in zip(rho, ref.state_action_occupancy(P, mu0, GAMMA, policy)):
        np.testing.assert_allclose(got, want, atol=tol)
    np.testing.assert_allclose(
        joint, ref.joint_state_action_occupancy(P, mu0, GAMMA, policy), atol=tol
    )
    # The three are the same histogram: exact NumPy loop on the same data (its first 50
    # trajectories: truncate masks the rest, keeping the shape), and marginals agree.
    mu_np, rho_np, joint_np = _numpy_histogram(_prefix(data, 50), NUM_STATES, NUM_ACTIONS)
    small = data.truncate(50)
    np.testing.assert_allclose(jd.empirical_state_occupancy(game, small), mu_np, atol=1e-6)
    for got, want in zip(jd.empirical_state_action_occupancy(game, small), rho_np):
        np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_allclose(
        jd.empirical_joint_state_action_occupancy(game, small), joint_np, atol=1e-6
    )


def test_fixed_and_geometric_lengths(samples):
    fixed, geo = samples["fixed"], samples["geometric"]
    T = HORIZON
    assert bool(jnp.all(fixed.mask))
    # float32 gamma^t: at most t roundings of relative size eps = 1.2e-7 each (t < T = 80), so
    # rtol T eps = 9.5e-6; a wrong discount (0.9^t vs 0.9^(t+1)) is off by 10%.
    eps32 = float(np.finfo(np.float32).eps)
    np.testing.assert_allclose(fixed.weights[3], GAMMA ** np.arange(T), rtol=T * eps32)
    lengths = np.asarray(geo.mask.sum(axis=1))
    # Valid steps are a prefix; lengths are min(L, T), L ~ Geometric(1 - gamma) on {1, 2, ...}.
    assert np.all(np.asarray(geo.mask) == (np.arange(T)[None] < lengths[:, None]))
    assert lengths.min() >= 1 and np.all(np.asarray(geo.weights) == 1.0)
    # E[min(L, T)] = sum_{t<T} Pr(L > t) = (1 - gamma^T) / (1 - gamma) = 9.998 (T = 80); sd(L) <=
    # sqrt(gamma) / (1 - gamma) = 9.5, so the mean of 20000 has sd <= 0.067: 5 sd = 0.34.
    expected = (1 - GAMMA**T) / (1 - GAMMA)
    assert abs(lengths.mean() - expected) < 5 * np.sqrt(GAMMA) / (1 - GAMMA) / np.sqrt(20_000)
    # Pr(L > t) = gamma^t, checked at t = 5: 0.59, sd of the frequency <= 0.0035.
    assert abs(np.mean(lengths > 5) - GAMMA**5) < 5 * 0.5 / np.sqrt(20_000)


def test_deterministic_dynamics_give_the_exact_path():
    # Three states on a cycle: joint action (0, 0) moves s -> s + 1 mod 3, anything else stays.
    P = np.zeros((3, 2, 2, 3))
    for s in range(3):
        P[s, :, :, s] = 1.0
        P[s, 0, 0] = 0.0
        P[s, 0, 0, (s + 1) % 3] = 1.0
    game = make_game(P, np.zeros((2, 3, 2, 2)), np.array([0.0, 1.0, 0.0]), 0.5)
    policy = (np.array([[1.0, 0], [1, 0], [1, 0]]), np.array([[1.0, 0], [1, 0], [0, 1]]))
    data = jd.sample_demonstrations(jax.random.key(0), game, policy, num_trajectories=3, horizon=5)
    # From s1: (0,0) moves to s2, where player 2 plays 1 and the state stays forever.
    np.testing.assert_array_equal(data.states, np.tile([1, 2, 2, 2, 2], (3, 1)))
    np.testing.assert_array_equal(data.actions[0], [[0, 0], [0, 1], [0, 1], [0, 1], [0, 1]])
    counts = jd.action_counts(game, data)
    np.testing.assert_array_equal(counts[1], [[0, 0], [3, 0], [0, 12]])
    weighted = jd.action_counts(game, data, weighted=True)
    # Steps 1..4 at s2 weigh 0.5 + 0.25 + 0.125 + 0.0625 = 0.9375 per trajectory.
    np.testing.assert_allclose(weighted[1], [[0, 0], [3, 0], [0, 3 * 0.9375]])


@pytest.mark.slow
def test_vmap_over_keys_equals_a_loop_and_truncate_sweeps_sizes(setting):
    *_, policy, game = setting
    keys = jax.random.split(jax.random.key(3), 3)

    def sample(key):
        return jd.sample_demonstrations(key, game, policy, num_trajectories=10, horizon=7)

    batch = jax.vmap(sample)(keys)
    for b, key in enumerate(keys):
        one = sample(key)
        np.testing.assert_array_equal(batch.states[b], one.states)
        np.testing.assert_array_equal(batch.actions[b], one.actions)
    data = sample(keys[0])
    sizes = jnp.array([1, 4, 10])
    swept = jax.vmap(lambda k: jd.empirical_state_occupancy(game, data.truncate(k)))(sizes)
    for row, k in zip(swept, sizes):
        # The first k trajectories through the NumPy loop reference (one compile fewer per k).
        mu_np, _, _ = _numpy_histogram(_prefix(data, int(k)), NUM_STATES, NUM_ACTIONS)
        np.testing.assert_allclose(row, mu_np, atol=1e-6)
    assert int(data.truncate(4).num_samples) == 28


def test_save_and_load_round_trip(samples, tmp_path):
    data = _prefix(samples["geometric"], 5)  # 5 trajectories with geometric lengths (a mask)
    assert not bool(np.all(data.mask))
    path = tmp_path / "demos.npz"
    jd.save_dataset(path, data)
    loaded = jd.load_dataset(path)
    for field in ("states", "actions", "mask", "weights"):
        np.testing.assert_array_equal(getattr(loaded, field), getattr(data, field))
    assert os.listdir(tmp_path) == ["demos.npz"]  # no temporary file left behind
    with np.load(path, allow_pickle=False) as f:  # plain arrays, no pickle
        assert set(f.files) == {"states", "actions", "mask", "weights", "format"}
    with pytest.raises(ValueError, match="must end in .npz"):
        jd.save_dataset(tmp_path / "demos.bin", data)
    np.savez(tmp_path / "other.npz", states=np.zeros((1, 1), int))
    with pytest.raises(ValueError, match="not a jaxmail dataset file"):
        jd.load_dataset(tmp_path / "other.npz")


def _dataset(**changes):
    fields = dict(
        states=np.zeros((2, 3), np.int32),
        actions=np.zeros((2, 3, 2), np.int32),
        mask=np.ones((2, 3), bool),
        weights=np.ones((2, 3)),
    )
    fields.update(changes)
    return jd.Dataset(**fields)


def test_bad_datasets_raise(setting):
    *_, game = setting
    with pytest.raises(ValueError, match=r"actions: expected \[N, T, n\]"):
        _dataset(actions=np.zeros((2, 4, 2), np.int32))
    with pytest.raises(ValueError, match="mask: expected shape"):
        _dataset(mask=np.ones((3, 3), bool))
    with pytest.raises(TypeError, match="states: expected integers"):
        _dataset(states=np.zeros((2, 3)))
    with pytest.raises(TypeError, match="mask: expected booleans"):
        _dataset(mask=np.ones((2, 3)))
    with pytest.raises(ValueError, match="weights: 1 entries are NaN"):
        _dataset(weights=np.array([[1, 1, np.nan], [1, 1, 1]]))
    with pytest.raises(ValueError, match="weights: must be non-negative"):
        _dataset(weights=-np.ones((2, 3)))
    with pytest.raises(ValueError, match="states: negative value -1 at index"):
        _dataset(states=np.array([[0, 0, -1], [0, 0, 0]], np.int32))
    with pytest.raises(ValueError, match="dataset is empty"):
        _dataset(mask=np.zeros((2, 3), bool))
    with pytest.raises(
        ValueError, match=r"state 7 out of range \[0, 5\) at \(trajectory=1, step=2"
    ):
        jd.check_dataset(game, _dataset(states=np.array([[0, 0, 0], [0, 0, 7]], np.int32)))
    actions = np.zeros((2, 3, 2), np.int32)
    actions[0, 1, 1] = 3
    with pytest.raises(ValueError, match=r"action 3 of player 1 out of range \[0, 3\)"):
        jd.empirical_state_occupancy(game, _dataset(actions=actions))
    with pytest.raises(ValueError, match="actions have 3 players, the game has 2"):
        jd.check_dataset(game, _dataset(actions=np.zeros((2, 3, 3), np.int32)))
    with pytest.raises(TypeError, match="expected a jaxmail.data.Dataset"):
        jd.check_dataset(game, {"states": np.zeros((2, 3))})
    # Out-of-range values at MASKED steps are padding, not errors.
    padded = _dataset(
        states=np.array([[0, 0, 9], [0, 0, 0]], np.int32),
        mask=np.array([[1, 1, 0], [1, 1, 1]], bool),
    )
    assert jd.check_dataset(game, padded) is padded
    with pytest.raises(ValueError, match="lengths: expected 'fixed' or 'geometric'"):
        jd.sample_demonstrations(
            jax.random.key(0), game, jm.uniform_policy(game), num_trajectories=2, horizon=3,
            lengths="poisson",
        )  # fmt: skip
    with pytest.raises(ValueError, match="horizon: expected a positive int"):
        jd.sample_demonstrations(
            jax.random.key(0), game, jm.uniform_policy(game), num_trajectories=2, horizon=0
        )


# ---------------------------------------------------------------------------------------------
# Integer ranges (issue 13, item 9) and printing (item 21).
# ---------------------------------------------------------------------------------------------

BIG = 2**31 + 1  # wraps to -2147483647 when cast to int32


def test_indices_beyond_int32_are_rejected_before_the_cast(setting):
    *_, game = setting
    states = np.zeros((2, 3), np.int64)
    states[1, 2] = BIG
    with pytest.raises(
        ValueError, match=r"states: value 2147483649 at index \(1, 2\) does not fit"
    ):
        _dataset(states=states)
    actions = np.zeros((2, 3, 2), np.int64)
    actions[0, 1, 1] = -(2**40)
    with pytest.raises(ValueError, match="actions: negative value"):
        _dataset(actions=actions)
    actions[0, 1, 1] = BIG
    with pytest.raises(ValueError, match=r"actions: value 2147483649 at index \(0, 1, 1\)"):
        _dataset(actions=actions)
    unsigned = np.zeros((2, 3), np.uint64)
    unsigned[0, 0] = 2**63
    with pytest.raises(ValueError, match="states: value 9223372036854775808 at index"):
        _dataset(states=unsigned)
    # A masked-out (padding) entry must also fit: the cast would wrap it all the same.
    with pytest.raises(ValueError, match="does not fit int32"):
        _dataset(states=states, mask=np.array([[1, 1, 1], [1, 1, 0]], bool))
    # The largest int32 passes the constructor; check_dataset then finds it out of range.
    states[1, 2] = 2**31 - 1
    with pytest.raises(ValueError, match=r"state 2147483647 out of range \[0, 5\)"):
        jd.check_dataset(game, _dataset(states=states))


def test_check_dataset_and_cloning_reject_wrapped_or_negative_leaves(setting):
    """A dataset rebuilt from leaves skips the constructor; check_dataset must still refuse it."""
    *_, game = setting
    good = _dataset()
    wrapped = np.asarray(np.array([[0, 0, BIG], [0, 0, 0]], np.int64).astype(np.int32))
    assert wrapped[0, 2] == -2147483647  # what the unchecked cast produces
    bad = jd.Dataset.tree_unflatten(None, (wrapped, good.actions, good.mask, good.weights))
    with pytest.raises(ValueError, match=r"state -2147483647 out of range \[0, 5\)"):
        jd.check_dataset(game, bad)
    with pytest.raises(ValueError, match=r"data: state -2147483647 out of range"):
        jm.imitation.behavior_cloning(game, bad)
    actions = np.zeros((2, 3, 2), np.int32)
    actions[1, 0, 0] = -1
    bad = jd.Dataset.tree_unflatten(None, (good.states, actions, good.mask, good.weights))
    with pytest.raises(ValueError, match=r"action -1 of player 0 out of range \[0, 2\)"):
        jd.check_dataset(game, bad)
    with jax.enable_x64(True):  # int64 leaves survive only under x64
        big = np.zeros((2, 3), np.int64)
        big[0, 0] = BIG
        bad = jd.Dataset.tree_unflatten(None, (big, good.actions, good.mask, good.weights))
        with pytest.raises(ValueError, match="data.states: value 2147483649 at index"):
            jd.check_dataset(game, bad)


def test_repr_of_datasets_whose_leaves_are_not_arrays(setting):
    data = _dataset()
    assert repr(data) == "Dataset(num_trajectories=2, horizon=3, num_players=2, num_samples=6)"
    shapes = jax.eval_shape(lambda: data)
    assert repr(shapes) == "Dataset(num_trajectories=2, horizon=3, num_players=2, num_samples=?)"
    nothing = jax.tree_util.tree_map(lambda x: None, data, is_leaf=lambda x: x is None)
    assert repr(nothing) == "Dataset(states=None, ...)"
    batch = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), data, data)
    assert repr(batch) == (
        "Dataset(batch_shape=(2,), num_trajectories=2, horizon=3, num_players=2, num_samples=?)"
    )
    assert batch.batch_shape == (2,) and data.batch_shape == ()
    *_, game = setting
    with pytest.raises(ValueError, match=r"data: expected one dataset .*a batch of 2 datasets"):
        jd.check_dataset(game, batch)
