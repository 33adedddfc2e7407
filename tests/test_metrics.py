"""The imitation error metrics (jaxmail/metrics.py) against the NumPy oracle.

``bc_error`` (eps_BC, and per player), ``state_occupancy_error`` (eps_mu), ``occupancy_error``
(eps_rho, over JOINT actions) and ``value_gap`` (signed); ``imitation_report`` (all of them
plus the NashGap and the BR shift at once) against the separate functions and the oracle.
Tolerances: helpers.py.
"""

import functools

import helpers as h
import jax
import numpy as np
import pytest
import reference as ref

import jaxmail as jm


@jax.jit
def _metrics(game, policy, expert):
    return dict(
        bc=jm.bc_error(game, policy, expert=expert),
        bc_per_player=jm.bc_error(game, policy, expert=expert, per_player=True),
        state_occupancy=jm.state_occupancy_error(game, policy, expert),
        occupancy=jm.occupancy_error(game, policy, expert),
        value_gap=jm.value_gap(game, policy, expert=expert),
    )


@jax.jit
def _report(game, policy, expert):
    return dict(
        report=jm.metrics.imitation_report(game, policy, expert=expert),
        nash_gap=jm.nash_gap(game, policy),
        br_shift=jm.best_response_shift(game, policy, expert),
    )


CASES = [
    pytest.param(np.float64, 5, (2, 3), 0.9, id="float64-S5-A(2, 3)"),
    pytest.param(np.float64, 5, (3, 2, 2), 0.9, id="float64-S5-A(3, 2, 2)"),
    pytest.param(
        np.float64, 2, (2, 2, 3, 2), 0.9, id="float64-S2-A(2, 2, 3, 2)", marks=pytest.mark.slow
    ),
    pytest.param(np.float32, 5, (2, 3), 0.9, id="float32-S5-A(2, 3)"),
]
SEEDS = (0, 1, 2, 3)


@functools.cache
def _computed(dtype, S, acts, gamma, seed):
    P, R, mu0, policy = h.instance(seed, S, acts, gamma)
    expert = ref.random_policy(np.random.default_rng(1000 + seed), S, acts)
    with jax.enable_x64(dtype == np.float64):
        game = h.make_game(P, R, mu0, gamma)
        out = jax.tree_util.tree_map(np.asarray, _metrics(game, policy, expert))
        same = jax.tree_util.tree_map(np.asarray, _metrics(game, expert, expert))
    for x in jax.tree_util.tree_leaves(out):
        assert x.dtype == dtype
    return (P, R, mu0, policy, expert), out, same


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype, S, acts, gamma", CASES)
def test_metrics_match_reference(dtype, S, acts, gamma, seed):
    (P, R, mu0, policy, expert), out, _ = _computed(dtype, S, acts, gamma, seed)
    occ = h.occupancy_atol(dtype, gamma)
    # bc_error: an L1 distance (<= 2) weighted by the expert's occupancy (error occ in L1).
    np.testing.assert_allclose(
        out["bc"], ref.bc_error(P, R, mu0, gamma, policy, expert), rtol=0, atol=2 * occ
    )
    want = ref.bc_error(P, R, mu0, gamma, policy, expert, per_player=True)
    assert out["bc_per_player"].shape == (len(acts),)
    np.testing.assert_allclose(out["bc_per_player"], want, rtol=0, atol=2 * occ)
    assert out["bc"] == out["bc_per_player"].max()
    # Differences of two occupancies, each off by at most occ in L1.
    np.testing.assert_allclose(
        out["state_occupancy"],
        ref.state_occupancy_error(P, mu0, gamma, policy, expert),
        rtol=0,
        atol=2 * occ,
    )
    np.testing.assert_allclose(
        out["occupancy"],
        ref.occupancy_error(P, mu0, gamma, policy, expert),
        rtol=0,
        atol=2 * occ,
    )
    np.testing.assert_allclose(
        out["value_gap"],
        ref.value_gap(P, R, mu0, gamma, policy, expert),
        rtol=0,
        atol=2 * h.value_atol(dtype, gamma),
    )
    # Random policy and random expert differ: the comparisons are not vacuous.
    assert out["bc"] > 0.1 and out["occupancy"] > 0.1


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype, S, acts, gamma", CASES)
def test_metrics_vanish_when_policy_is_the_expert(dtype, S, acts, gamma, seed):
    *_, same = _computed(dtype, S, acts, gamma, seed)
    # ||pi_i - pi_i||_1 is exactly 0 whatever the occupancy weighting.
    assert same["bc"] == 0.0
    np.testing.assert_array_equal(same["bc_per_player"], 0.0)
    # The other metrics solve twice (the two solves are chained, so XLA may fuse them
    # differently): zero up to the rounding of one solve.
    occ = h.occupancy_atol(dtype, gamma)
    assert abs(same["state_occupancy"]) <= 2 * occ
    assert abs(same["occupancy"]) <= 2 * occ
    assert abs(same["value_gap"]) <= 2 * h.value_atol(dtype, gamma)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype, S, acts, gamma", CASES)
def test_marginalising_cannot_increase_l1(dtype, S, acts, gamma, seed):
    _, out, _ = _computed(dtype, S, acts, gamma, seed)
    # |sum_a x_a| <= sum_a |x_a|: the state measure is the joint one summed over actions.
    # Up to rounding of the two sums (each off by at most a few eps).
    assert out["occupancy"] >= out["state_occupancy"] - 8 * float(np.finfo(dtype).eps)
    # Both are L1 distances between probability measures: in [0, 2].
    assert 0.0 <= out["state_occupancy"] <= 2.0 and 0.0 <= out["occupancy"] <= 2.0 + 1e-6
    # eps_BC <= 2 (an L1 distance between distributions, averaged).
    assert 0.0 <= out["bc"] <= 2.0 + 1e-6


def test_metrics_by_hand_on_a_one_state_game(x64):
    # One state, d = (1) for every policy. bc_error = max_i ||pi_i - expert_i||_1;
    # occupancy_error = ||pi(.) - expert(.)||_1 over joint actions; state_occupancy_error = 0.
    game = h.matrix_game(np.stack([np.eye(2), -np.eye(2)]), gamma=0.5)
    policy = (np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]]))
    expert = (np.array([[0.5, 0.5]]), np.array([[0.5, 0.5]]))
    out = _metrics(game, policy, expert)
    # Player 0: |1 - 0.5| + |0 - 0.5| = 1; player 1: 0.
    np.testing.assert_allclose(out["bc_per_player"], [1.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(out["bc"], 1.0, atol=1e-15)
    np.testing.assert_allclose(out["state_occupancy"], 0.0, atol=1e-15)
    # Joint: policy (0.5, 0.5, 0, 0) vs expert (0.25, 0.25, 0.25, 0.25): L1 = 4 * 0.25 = 1.
    np.testing.assert_allclose(out["occupancy"], 1.0, atol=1e-15)
    # Values: R_0 = I, R_1 = -I; the stage payoff of player 0 is P(match) = 0.5 under both,
    # player 1's is -0.5 under both: value_gap = 0. (gamma = 0.5: V = 2 u.)
    np.testing.assert_allclose(out["value_gap"], 0.0, atol=1e-15)
    # A policy that matches always: player 0 gains 2 * (1 - 0.5) = 1, player 1 loses 1.
    # value_gap = max_i (V_i^expert - V_i^pi) = max(0.5 * 2 - 1 * 2, -0.5 * 2 - (-1) * 2) = 1.
    policy = (np.array([[1.0, 0.0]]), np.array([[1.0, 0.0]]))
    np.testing.assert_allclose(_metrics(game, policy, expert)["value_gap"], 1.0, atol=1e-14)


# The report compiles a best-response solve and the test two more (the separate NashGap and BR
# shift): two-player cases in the quick suite, more players under --runslow.
REPORT_CASES = [
    CASES[0],
    pytest.param(*CASES[1].values, id=CASES[1].id, marks=pytest.mark.slow),
    CASES[2],
    # quick: the float64 case above (same report kernel against the same reference); float32
    # metrics stay quick in test_metrics_match_reference
    pytest.param(*CASES[3].values, id=CASES[3].id, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype, S, acts, gamma", REPORT_CASES)
def test_imitation_report_matches_the_separate_metrics_and_the_reference(
    dtype, S, acts, gamma, seed
):
    (P, R, mu0, policy, expert), out, _ = _computed(dtype, S, acts, gamma, seed)
    with jax.enable_x64(dtype == np.float64):
        game = h.make_game(P, R, mu0, gamma)
        separate = jax.tree_util.tree_map(np.asarray, _report(game, policy, expert))
    for x in jax.tree_util.tree_leaves(separate):
        assert x.dtype in (dtype, np.bool_)
    report = separate["report"]
    out = {**out, "nash_gap": separate["nash_gap"], "br_shift": separate["br_shift"]}
    eps = float(np.finfo(dtype).eps)
    # The same operations as the separate functions, on the same factorisations: equal up to
    # the rounding of a fused sum (a few eps of the largest term; values are O(1 / (1 - g))).
    same = 8 * eps
    for got, want, scale in (
        (report.bc_error, out["bc"], 2.0),
        (report.bc_errors, out["bc_per_player"], 2.0),
        (report.state_occupancy_error, out["state_occupancy"], 2.0),
        (report.occupancy_error, out["occupancy"], 2.0),
        (report.value_gap, out["value_gap"], 1.0 / (1.0 - gamma)),
        (report.br_shift, out["br_shift"], 2.0),
    ):
        np.testing.assert_allclose(got, want, rtol=0, atol=same * scale)
    for name in ("gains", "nash_gap", "nash_conv", "policy_values", "best_response_values"):
        np.testing.assert_allclose(
            getattr(report.nash_gap, name),
            getattr(out["nash_gap"], name),
            rtol=0,
            atol=same / (1.0 - gamma),
        )
    np.testing.assert_array_equal(report.nash_gap.converged, out["nash_gap"].converged)
    assert report.bc_errors.shape == report.br_shift.shape == (len(acts),)
    assert report.converged.dtype == bool and bool(report.converged)
    # The NashGap against the brute-force oracle (values to value_atol each side).
    want = ref.nash_gap(P, R, mu0, gamma, policy)
    np.testing.assert_allclose(
        report.nash_gap.gains, want["gains"], rtol=0, atol=2 * h.value_atol(dtype, gamma)
    )
    # BR shift: the oracle's best-response set at the report's default tolerance
    # sqrt(eps) max(max|R|, 1) / (1 - gamma), then the action of least expert mass in each
    # state: shift_i = sum_s d^E(s) max_{a in set(s)} 2 (1 - E_i(a|s)).
    tol = np.sqrt(eps) * max(np.abs(R).max(), 1.0) / (1.0 - gamma)
    d_expert = ref.state_occupancy(P, mu0, gamma, expert)
    for i in range(len(acts)):
        mask = ref.best_response_set(P, R, gamma, policy, i, tol)
        per_state = np.where(mask, 2 * (1 - expert[i]), -np.inf).max(-1)
        np.testing.assert_allclose(
            report.br_shift[i],
            d_expert @ per_state,
            rtol=0,
            atol=2 * h.occupancy_atol(dtype, gamma),
        )
    # Random policies are far from Nash and from the expert: not vacuous.
    assert report.nash_gap.nash_gap > 0.1 and report.br_shift.max() > 0.1


def test_expert_is_keyword_only():
    # Swapping learner and expert changes eps_BC (the occupancy weighting is the expert's), so
    # the expert cannot be passed by position.
    game = h.matrix_game(np.stack([np.eye(2), -np.eye(2)]), gamma=0.5)
    policy = (np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]]))
    for fn in (jm.bc_error, jm.value_gap, jm.metrics.imitation_report):
        with pytest.raises(TypeError):
            fn(game, policy, policy)
