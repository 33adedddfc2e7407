"""Internal consistency of the NumPy oracle (tests/reference.py).

These tests check the oracle against itself (two independent routes to the same number) and
against hand-derived values on matrix games; they do not use jax or jaxmail. All randomness is
seeded.
"""

import itertools

import numpy as np
import pytest
import reference as ref

GAMMAS = (0.0, 0.5, 0.9, 0.99)


def _instance(seed, num_states, num_actions, gamma=0.9):
    rng = np.random.default_rng(seed)
    P, R, mu0 = ref.random_game(rng, num_states, num_actions, gamma)
    policy = ref.random_policy(rng, num_states, num_actions)
    return P, R, mu0, policy


def _replace(policy, player, new):
    return tuple(new if j == player else p for j, p in enumerate(policy))


def _one_state_matrix_game(payoffs):
    """One state, self-loop transition; ``payoffs`` is ``R[:, 0]`` of shape ``[n, A_1..A_n]``."""
    payoffs = np.asarray(payoffs, dtype=np.float64)
    num_actions = payoffs.shape[1:]
    P = np.ones((1, *num_actions, 1))
    R = payoffs[:, None]
    mu0 = np.ones(1)
    return P, R, mu0


SHAPES = [
    (1, (2, 2)),
    (3, (2, 3)),
    (4, (3, 1)),
    (2, (2, 3, 2)),
    (5, (2, 2, 2, 2)),
]


# --------------------------------------------------------------------------------------------
# Random instances
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_states, num_actions", SHAPES)
def test_random_game_and_policy_are_valid(num_states, num_actions):
    P, R, mu0, policy = _instance(0, num_states, num_actions)
    n = len(num_actions)
    assert P.shape == (num_states, *num_actions, num_states)
    assert R.shape == (n, num_states, *num_actions)
    assert mu0.shape == (num_states,)
    np.testing.assert_allclose(P.sum(-1), 1.0, atol=1e-12)
    assert (P >= 0).all() and (mu0 >= 0).all()
    assert np.abs(R).max() <= 1.0
    np.testing.assert_allclose(mu0.sum(), 1.0, atol=1e-12)
    for p, k in zip(policy, num_actions, strict=True):
        assert p.shape == (num_states, k)
        np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-12)
    # Seeded: the same seed gives the same instance.
    P2, R2, mu02, policy2 = _instance(0, num_states, num_actions)
    np.testing.assert_array_equal(P, P2)
    np.testing.assert_array_equal(R, R2)
    np.testing.assert_array_equal(mu0, mu02)
    for p, q in zip(policy, policy2, strict=True):
        np.testing.assert_array_equal(p, q)


def test_random_game_rejects_bad_gamma():
    with pytest.raises(ValueError, match="gamma"):
        ref.random_game(np.random.default_rng(0), 2, (2, 2), 1.0)


def test_joint_actions_order():
    assert ref.joint_actions((2, 3)) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]


@pytest.mark.parametrize("num_states, num_actions", SHAPES)
def test_joint_policy_is_product_with_right_marginals(num_states, num_actions):
    _, _, _, policy = _instance(1, num_states, num_actions)
    pi = ref.joint_policy(policy)
    assert pi.shape == (num_states, *num_actions)
    np.testing.assert_allclose(pi.reshape(num_states, -1).sum(-1), 1.0, atol=1e-12)
    n = len(num_actions)
    for i in range(n):
        others = tuple(1 + j for j in range(n) if j != i)
        np.testing.assert_allclose(pi.sum(axis=others), policy[i], atol=1e-12)


# --------------------------------------------------------------------------------------------
# Occupancy
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("num_states, num_actions", SHAPES)
def test_power_series_occupancy_matches_linear_solve(num_states, num_actions, gamma):
    P, _, mu0, policy = _instance(2, num_states, num_actions)
    d = ref.state_occupancy(P, mu0, gamma, policy)
    P_pi = ref.policy_transition(P, policy)
    # d = (1 - gamma) mu0 (I - gamma P_pi)^{-1}, i.e. (I - gamma P_pi)^T d = (1 - gamma) mu0.
    d_solve = (1 - gamma) * np.linalg.solve((np.eye(num_states) - gamma * P_pi).T, mu0)
    np.testing.assert_allclose(d, d_solve, atol=1e-12)
    # Flow equation d = (1 - gamma) mu0 + gamma d P_pi.
    np.testing.assert_allclose(d, (1 - gamma) * mu0 + gamma * d @ P_pi, atol=1e-12)
    assert (d >= 0).all()
    np.testing.assert_allclose(d.sum(), 1.0, atol=1e-12)


@pytest.mark.parametrize("num_states, num_actions", SHAPES)
def test_state_action_occupancies_are_consistent(num_states, num_actions):
    gamma = 0.8
    P, _, mu0, policy = _instance(3, num_states, num_actions)
    d = ref.state_occupancy(P, mu0, gamma, policy)
    rho = ref.state_action_occupancy(P, mu0, gamma, policy)
    rho_joint = ref.joint_state_action_occupancy(P, mu0, gamma, policy)
    assert rho_joint.shape == (num_states, *num_actions)
    np.testing.assert_allclose(rho_joint.sum(), 1.0, atol=1e-12)
    np.testing.assert_allclose(rho_joint.reshape(num_states, -1).sum(-1), d, atol=1e-12)
    n = len(num_actions)
    for i in range(n):
        assert rho[i].shape == (num_states, num_actions[i])
        np.testing.assert_allclose(rho[i].sum(), 1.0, atol=1e-12)
        others = tuple(1 + j for j in range(n) if j != i)
        np.testing.assert_allclose(rho_joint.sum(axis=others), rho[i], atol=1e-12)


def test_occupancy_gamma_zero_is_initial_distribution():
    P, _, mu0, policy = _instance(4, 4, (2, 3))
    np.testing.assert_allclose(ref.state_occupancy(P, mu0, 0.0, policy), mu0, atol=0)


# --------------------------------------------------------------------------------------------
# Values and Q-values
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("num_states, num_actions", SHAPES)
def test_values_satisfy_bellman(num_states, num_actions, gamma):
    P, R, mu0, policy = _instance(5, num_states, num_actions)
    V = ref.values(P, R, gamma, policy)
    n = len(num_actions)
    assert V.shape == (n, num_states)
    P_pi = ref.policy_transition(P, policy)
    r_pi = ref.policy_reward(R, policy)
    np.testing.assert_allclose(V, r_pi + gamma * V @ P_pi.T, atol=1e-12)
    np.testing.assert_allclose(ref.values_at(P, R, mu0, gamma, policy), V @ mu0, atol=1e-12)
    # |V| <= max|R| / (1 - gamma).
    assert np.abs(V).max() <= 1.0 / (1.0 - gamma) + 1e-12
    # Value at mu0 equals the occupancy-weighted reward / (1 - gamma).
    d = ref.state_occupancy(P, mu0, gamma, policy)
    np.testing.assert_allclose(V @ mu0, r_pi @ d / (1 - gamma), atol=1e-10)


@pytest.mark.parametrize("num_states, num_actions", SHAPES)
def test_q_values_are_consistent(num_states, num_actions):
    gamma = 0.9
    P, R, _, policy = _instance(6, num_states, num_actions)
    V = ref.values(P, R, gamma, policy)
    Q = ref.q_values(P, R, gamma, policy)
    Q_joint = ref.joint_q_values(P, R, gamma, policy)
    pi = ref.joint_policy(policy)
    n = len(num_actions)
    assert Q_joint.shape == (n, num_states, *num_actions)
    for i in range(n):
        assert Q[i].shape == (num_states, num_actions[i])
        # V_i(s) = sum_{a_i} policy_i(a_i|s) Q_i(s, a_i) = sum_a pi(a|s) Q_i(s, a).
        np.testing.assert_allclose((policy[i] * Q[i]).sum(-1), V[i], atol=1e-12)
        np.testing.assert_allclose(
            (pi * Q_joint[i]).reshape(num_states, -1).sum(-1), V[i], atol=1e-12
        )
        # Marginalising the joint Q over the others' policies gives the per-player Q.
        others_weight = ref.joint_policy(_replace(policy, i, np.ones_like(policy[i])))
        others = tuple(1 + j for j in range(n) if j != i)
        np.testing.assert_allclose((others_weight * Q_joint[i]).sum(axis=others), Q[i], atol=1e-12)


@pytest.mark.parametrize("num_states, num_actions", SHAPES)
def test_induced_mdp_is_consistent_with_joint_evaluation(num_states, num_actions):
    P, R, _, policy = _instance(7, num_states, num_actions)
    P_pi = ref.policy_transition(P, policy)
    r_pi = ref.policy_reward(R, policy)
    for i in range(len(num_actions)):
        P_i, r_i = ref.induced_mdp(P, R, policy, i)
        assert P_i.shape == (num_states, num_actions[i], num_states)
        assert r_i.shape == (num_states, num_actions[i])
        np.testing.assert_allclose(P_i.sum(-1), 1.0, atol=1e-12)
        np.testing.assert_allclose(np.einsum("sat,sa->st", P_i, policy[i]), P_pi, atol=1e-12)
        np.testing.assert_allclose((r_i * policy[i]).sum(-1), r_pi[i], atol=1e-12)


# --------------------------------------------------------------------------------------------
# Best responses
# --------------------------------------------------------------------------------------------


def test_deterministic_policies_enumerates_all():
    pols = list(ref.deterministic_policies(3, 2))
    assert len(pols) == 2**3
    choices = {tuple(p.argmax(-1)) for p in pols}
    assert choices == set(itertools.product(range(2), repeat=3))
    for p in pols:
        assert p.shape == (3, 2)
        np.testing.assert_array_equal(p.sum(-1), 1.0)
        assert set(np.unique(p)) <= {0.0, 1.0}


TINY = [(s, a) for s in (1, 2, 3, 4) for a in ((2, 3), (3, 2), (1, 2), (2, 3, 2), (3, 2, 1))]


@pytest.mark.parametrize("gamma", (0.5, 0.9))
@pytest.mark.parametrize("num_states, num_actions", TINY)
def test_brute_force_best_response_matches_value_iteration(num_states, num_actions, gamma):
    P, R, _, policy = _instance(8 + num_states, num_states, num_actions)
    V = ref.values(P, R, gamma, policy)
    for i in range(len(num_actions)):
        V_star, best = ref.best_response_brute_force(P, R, gamma, policy, i)
        P_i, r_i = ref.induced_mdp(P, R, policy, i)
        np.testing.assert_allclose(V_star, ref.optimal_values(P_i, r_i, gamma), atol=1e-9)
        # The returned deterministic policy, played in the full game, attains V_star: this
        # checks the induced-MDP reduction against the joint evaluation.
        np.testing.assert_allclose(
            ref.values(P, R, gamma, _replace(policy, i, best))[i], V_star, atol=1e-10
        )
        # A best response is no worse than the current (stochastic) policy, from every state.
        assert (V_star >= V[i] - 1e-10).all()
        # It is greedy with respect to its own Q*, so it lies in the best-response set.
        br_set = ref.best_response_set(P, R, gamma, policy, i, 1e-9)
        assert br_set[best.astype(bool)].all()
        assert br_set.any(axis=1).all()


def test_brute_force_refuses_large_enumerations():
    P, R, _, policy = _instance(9, 18, (2, 2))  # 2**18 = 262144 > 200000
    with pytest.raises(ValueError, match="deterministic policies"):
        ref.best_response_brute_force(P, R, 0.9, policy, 0)


@pytest.mark.parametrize("gamma", (0.0, 0.5, 0.95))
def test_best_response_values_value_iteration_branch(gamma):
    # 3**8 = 6561 > 4096: best_response_values takes the value-iteration branch; compare with
    # the brute force, which still accepts it (<= 200000).
    P, R, _, policy = _instance(10, 8, (3, 2))
    np.testing.assert_allclose(
        ref.best_response_values(P, R, gamma, policy, 0),
        ref.best_response_brute_force(P, R, gamma, policy, 0)[0],
        atol=1e-9,
    )


NASH_SHAPES = [
    (1, (2, 2)),
    (3, (3, 2)),
    (8, (2, 2)),
    (6, (2, 4)),
    (8, (3, 2)),
    (4, (2, 3, 2)),
    (8, (2, 2, 2)),
    (5, (2, 2, 3, 2)),
    (8, (2, 3, 2, 2)),
]


@pytest.mark.parametrize("seed", (0, 1))
@pytest.mark.parametrize("gamma", (0.5, 0.95))
@pytest.mark.parametrize("num_states, num_actions", NASH_SHAPES)
def test_policy_iteration_baseline_matches_nash_gap(num_states, num_actions, gamma, seed):
    P, R, mu0, policy = _instance(100 + seed, num_states, num_actions)
    expected = ref.nash_gap(P, R, mu0, gamma, policy)
    got = ref.nash_gap_policy_iteration(P, R, mu0, gamma, policy)
    n = len(num_actions)
    for result in (expected, got):
        assert result["gains"].shape == (n,)
        assert (result["gains"] >= -1e-10).all()
        np.testing.assert_allclose(result["nash_gap"], result["gains"].max(), atol=0)
        np.testing.assert_allclose(result["nash_conv"], result["gains"].sum(), atol=0)
    np.testing.assert_allclose(got["gains"], expected["gains"], atol=1e-9)
    np.testing.assert_allclose(got["nash_gap"], expected["nash_gap"], atol=1e-9)
    np.testing.assert_allclose(got["nash_conv"], expected["nash_conv"], atol=1e-9)


def test_nash_gap_is_zero_at_a_best_response_profile_of_a_single_agent():
    # With one player the game is an MDP: the gain of the brute-force optimum is 0.
    P, R, mu0, _ = _instance(11, 4, (3,))
    gamma = 0.9
    _, best = ref.best_response_brute_force(P, R, gamma, (np.full((4, 3), 1 / 3),), 0)
    for method in (ref.nash_gap, ref.nash_gap_policy_iteration):
        np.testing.assert_allclose(method(P, R, mu0, gamma, (best,))["gains"], 0.0, atol=1e-10)


# --------------------------------------------------------------------------------------------
# Matrix games with hand-derived answers (one state, self-loop: every stationary policy earns
# its per-step expected payoff forever, so every value is that payoff / (1 - gamma))
# --------------------------------------------------------------------------------------------

MATCHING_PENNIES = np.array([[[1.0, -1.0], [-1.0, 1.0]], [[-1.0, 1.0], [1.0, -1.0]]])


@pytest.mark.parametrize("gamma", (0.0, 0.5, 0.9))
def test_matching_pennies_uniform_has_zero_gap(gamma):
    # Against a uniform opponent each action of a player earns (1 - 1) / 2 = 0 per step, so
    # every deviation is worth 0 = V_i^pi: all gains are 0.
    P, R, mu0 = _one_state_matrix_game(MATCHING_PENNIES)
    uniform = (np.full((1, 2), 0.5), np.full((1, 2), 0.5))
    np.testing.assert_allclose(ref.values(P, R, gamma, uniform), 0.0, atol=1e-12)
    for method in (ref.nash_gap, ref.nash_gap_policy_iteration):
        result = method(P, R, mu0, gamma, uniform)
        np.testing.assert_allclose(result["gains"], 0.0, atol=1e-12)
        np.testing.assert_allclose(result["nash_gap"], 0.0, atol=1e-12)
    # Both actions are best responses for both players.
    for i in range(2):
        assert ref.best_response_set(P, R, gamma, uniform, i, 1e-9).all()


@pytest.mark.parametrize("gamma", (0.0, 0.5, 0.9))
def test_matching_pennies_pure_row_player_is_exploitable(gamma):
    # Player 0 plays heads (0), player 1 uniform. V_0 = V_1 = 0 (player 1 still mixes evenly).
    # Player 0 against uniform: every action earns 0, gain 0. Player 1 against heads: tails (1)
    # earns +1 per step, so V*_1 = 1 / (1 - gamma) and g_1 = 1 / (1 - gamma).
    P, R, mu0 = _one_state_matrix_game(MATCHING_PENNIES)
    policy = (np.array([[1.0, 0.0]]), np.full((1, 2), 0.5))
    for method in (ref.nash_gap, ref.nash_gap_policy_iteration):
        result = method(P, R, mu0, gamma, policy)
        np.testing.assert_allclose(result["gains"], [0.0, 1.0 / (1 - gamma)], atol=1e-10)
        np.testing.assert_allclose(result["nash_gap"], 1.0 / (1 - gamma), atol=1e-10)
        np.testing.assert_allclose(result["nash_conv"], 1.0 / (1 - gamma), atol=1e-10)
    np.testing.assert_array_equal(
        ref.best_response_set(P, R, gamma, policy, 1, 1e-9), [[False, True]]
    )


# Prisoner's dilemma, actions 0 = cooperate (C), 1 = defect (D); payoffs (row, column):
# (C, C) = (REWARD, REWARD), (C, D) = (SUCKER, TEMPTATION), (D, C) = (TEMPTATION, SUCKER),
# (D, D) = (PUNISH, PUNISH), with TEMPTATION > REWARD > PUNISH > SUCKER.
TEMPTATION, REWARD, PUNISH, SUCKER = 1.0, 0.5, -0.5, -1.0
PD = np.array(
    [
        [[REWARD, SUCKER], [TEMPTATION, PUNISH]],  # player 0, indexed [a_0, a_1]
        [[REWARD, TEMPTATION], [SUCKER, PUNISH]],  # player 1, indexed [a_0, a_1]
    ]
)
COOPERATE = np.array([[1.0, 0.0]])
DEFECT = np.array([[0.0, 1.0]])


@pytest.mark.parametrize("gamma", (0.0, 0.5, 0.9))
def test_prisoners_dilemma(gamma):
    P, R, mu0 = _one_state_matrix_game(PD)
    for method in (ref.nash_gap, ref.nash_gap_policy_iteration):
        # (D, D): against D, C earns SUCKER and D earns PUNISH > SUCKER per step, so D is the
        # best response, V*_i = V_i = PUNISH / (1 - gamma) and both gains are 0.
        result = method(P, R, mu0, gamma, (DEFECT, DEFECT))
        np.testing.assert_allclose(result["gains"], 0.0, atol=1e-12)
        # (C, C): V_i = REWARD / (1 - gamma). Against C, D earns TEMPTATION > REWARD per step, so
        # the best response is always-D with V*_i = TEMPTATION / (1 - gamma):
        # g_i = (TEMPTATION - REWARD) / (1 - gamma) for both players (symmetry), hence
        # NashGap = (T - R) / (1 - gamma) and NashConv = 2 (T - R) / (1 - gamma).
        result = method(P, R, mu0, gamma, (COOPERATE, COOPERATE))
        gain = (TEMPTATION - REWARD) / (1 - gamma)
        np.testing.assert_allclose(result["gains"], [gain, gain], atol=1e-10)
        np.testing.assert_allclose(result["nash_gap"], gain, atol=1e-10)
        np.testing.assert_allclose(result["nash_conv"], 2 * gain, atol=1e-10)
    for i in range(2):
        np.testing.assert_array_equal(
            ref.best_response_set(P, R, gamma, (COOPERATE, COOPERATE), i, 1e-9), [[False, True]]
        )
    # Signed value gap of (C, C) against the expert (D, D): (PUNISH - REWARD) / (1 - gamma) < 0.
    np.testing.assert_allclose(
        ref.value_gap(P, R, mu0, gamma, (COOPERATE, COOPERATE), (DEFECT, DEFECT)),
        (PUNISH - REWARD) / (1 - gamma),
        atol=1e-12,
    )


# --------------------------------------------------------------------------------------------
# Imitation metrics
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_states, num_actions", SHAPES)
def test_imitation_metrics_vanish_at_the_expert(num_states, num_actions):
    gamma = 0.9
    P, R, mu0, expert = _instance(12, num_states, num_actions)
    assert ref.bc_error(P, R, mu0, gamma, expert, expert) == 0.0
    np.testing.assert_array_equal(ref.bc_error(P, R, mu0, gamma, expert, expert, True), 0.0)
    assert ref.state_occupancy_error(P, mu0, gamma, expert, expert) == 0.0
    assert ref.occupancy_error(P, mu0, gamma, expert, expert) == 0.0
    assert ref.value_gap(P, R, mu0, gamma, expert, expert) == 0.0


@pytest.mark.parametrize("num_states, num_actions", SHAPES)
def test_imitation_metrics_relations(num_states, num_actions):
    gamma = 0.9
    rng = np.random.default_rng(13)
    P, R, mu0 = ref.random_game(rng, num_states, num_actions, gamma)
    expert = ref.random_policy(rng, num_states, num_actions)
    policy = ref.random_policy(rng, num_states, num_actions)
    per_player = ref.bc_error(P, R, mu0, gamma, policy, expert, per_player=True)
    assert per_player.shape == (len(num_actions),)
    assert ref.bc_error(P, R, mu0, gamma, policy, expert) == per_player.max()
    # Hand-rolled: expert occupancy times the per-state L1 distance.
    d_expert = ref.state_occupancy(P, mu0, gamma, expert)
    for i in range(len(num_actions)):
        l1 = np.abs(policy[i] - expert[i]).sum(-1)
        np.testing.assert_allclose(per_player[i], d_expert @ l1, atol=1e-12)
    eps_mu = ref.state_occupancy_error(P, mu0, gamma, policy, expert)
    eps_rho = ref.occupancy_error(P, mu0, gamma, policy, expert)
    # Marginalising actions cannot increase an L1 distance; both lie in [0, 2].
    assert 0.0 <= eps_mu <= eps_rho + 1e-12 <= 2.0 + 1e-12
    # Known bound (docs/theory.md §3.9): ValueGap <= eps_rho / (1 - gamma) with rewards in [-1, 1].
    assert ref.value_gap(P, R, mu0, gamma, policy, expert) <= eps_rho / (1 - gamma) + 1e-10


def test_bc_error_by_hand_on_one_state():
    # One state, so d_expert = [1]: the BC error is the plain L1 distance of the rows.
    P, R, mu0 = _one_state_matrix_game(PD)
    expert = (COOPERATE, DEFECT)
    policy = (np.array([[0.7, 0.3]]), np.array([[0.1, 0.9]]))
    per_player = ref.bc_error(P, R, mu0, 0.9, policy, expert, per_player=True)
    np.testing.assert_allclose(per_player, [0.6, 0.2], atol=1e-12)
    np.testing.assert_allclose(ref.bc_error(P, R, mu0, 0.9, policy, expert), 0.6, atol=1e-12)
    # One state: the state occupancies agree; the joint measures differ by
    # |0.07 - 0| + |0.63 - 1| + |0.03 - 0| + |0.27 - 0| = 0.74.
    assert ref.state_occupancy_error(P, mu0, 0.9, policy, expert) == 0.0
    np.testing.assert_allclose(ref.occupancy_error(P, mu0, 0.9, policy, expert), 0.74, atol=1e-12)
