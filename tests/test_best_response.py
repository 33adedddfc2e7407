"""Induced MDPs, best responses, Nash gaps and best-response sets (jaxmail/responses.py).

Checked against the NumPy oracle (brute force over all deterministic policies on tiny games,
value iteration on larger ones) and against closed forms on one-state games, where every
stationary policy is one mixed strategy per player and a stage payoff ``u`` repeated forever is
worth ``u / (1 - gamma)``; the best response against fixed opponents is then the best stage
payoff, so a player's gain is ``(max_a u_i(a, pi_-i) - u_i(pi)) / (1 - gamma)``.

Each shape compiles one jitted function that computes everything the tests read.
"""

import functools

import helpers as h
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference as ref

import jaxmail as jm

GAMMA = 0.9
SEEDS = (0, 1, 2)
# Every (shape, dtype) compiles the jitted functions below (policy iteration compiles slowly,
# ~3 s a shape), so the default run keeps few shapes and the slow marker adds more.
# (4, (2, 3)): brute force over the A_i ** S deterministic policies of each player.
# (8, (3, 2, 2)): n = 3, and larger: the reference uses value iteration for player 0
# (3 ** 8 = 6561 policies, more than reference.BRUTE_FORCE_DEFAULT_MAX) and brute force for
# the others (2 ** 8).
CORE64 = [(4, (2, 3)), (8, (3, 2, 2))]
SLOW64 = [(2, (2, 2, 3, 2))]  # n = 4
CORE32 = [(4, (2, 3))]
# best_response player by player (both methods) compiles once per player and method.
PER_PLAYER = [(np.float64, 4, (2, 3))]
SLOW_PER_PLAYER = []


@jax.jit
def _core(game, policy):
    """Everything computed for all players together."""
    n = game.num_players
    return dict(
        joint=jm.best_responses(game, policy),
        gap=jm.nash_gap(game, policy),
        induced=tuple(jm.induced_mdp(game, policy, i) for i in range(n)),
        induced_all=jm.induced_mdps(game, policy),
    )


@jax.jit
def _per_player(game, policy):
    """The single-player API, both methods, and the Nash gap by value iteration."""
    n = game.num_players
    return dict(
        pi=tuple(jm.best_response(game, policy, i) for i in range(n)),
        vi=tuple(jm.best_response(game, policy, i, method="value_iteration") for i in range(n)),
        gap_vi=jm.nash_gap(game, policy, method="value_iteration"),
    )


@functools.cache
def _computed(which, dtype, S, acts, seed):
    P, R, mu0, policy = h.instance(seed, S, acts, GAMMA)
    fn = {"core": _core, "per_player": _per_player}[which]
    with jax.enable_x64(dtype == np.float64):
        out = fn(h.make_game(P, R, mu0, GAMMA), policy)
        out = jax.tree_util.tree_map(np.asarray, out)
    return (P, R, mu0, policy), out


def _with(policy, player, new):
    return tuple(new if j == player else p for j, p in enumerate(policy))


def _br_atol(dtype, gamma=GAMMA):
    """Best-response values: an exact policy evaluation (helpers.value_atol) of a policy that
    policy iteration certifies to be within tol / (1 - gamma) of optimal, with the default
    tol = 4 eps max|r| / (1 - gamma)^2 (jaxmail.tolerances.policy_improvement_tol), max|r| <= 1
    here."""
    eps = float(np.finfo(dtype).eps)
    return h.value_atol(dtype, gamma) + 4 * eps / (1 - gamma) ** 3


def _param(dtype, S, acts, seed, slow=False):
    return pytest.param(
        dtype,
        S,
        acts,
        seed,
        id=f"{np.dtype(dtype).name}-S{S}-A{acts}-seed{seed}",
        marks=[pytest.mark.slow] if slow else [],
    )


CORE_PARAMS = (
    [_param(np.float64, S, acts, seed) for S, acts in CORE64 for seed in SEEDS]
    + [_param(np.float32, S, acts, seed) for S, acts in CORE32 for seed in SEEDS]
    + [_param(np.float64, S, acts, seed, slow=True) for S, acts in SLOW64 for seed in SEEDS]
)
PER_PLAYER_PARAMS = [
    _param(dtype, S, acts, seed) for dtype, S, acts in PER_PLAYER for seed in SEEDS
] + [
    _param(dtype, S, acts, seed, slow=True) for dtype, S, acts in SLOW_PER_PLAYER for seed in SEEDS
]


# ---------------------------------------------------------------------------------------------
# Best responses against the oracle.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype, S, acts, seed", PER_PLAYER_PARAMS)
def test_best_response_matches_brute_force(dtype, S, acts, seed):
    (P, R, mu0, policy), out = _computed("per_player", dtype, S, acts, seed)
    atol = _br_atol(dtype)
    for i, a_i in enumerate(acts):
        v_star, _ = ref.best_response_brute_force(P, R, GAMMA, policy, i)
        P_i, r_i = ref.induced_mdp(P, R, policy, i)
        q_star = r_i + GAMMA * P_i @ v_star
        for method in ("pi", "vi"):
            br = out[method][i]
            msg = f"player {i}, {method}"
            assert isinstance(br, jm.BestResponse)
            assert br.policy.shape == (S, a_i) and br.values.shape == (S,)
            assert br.q_values.shape == (S, a_i)
            assert bool(br.converged), msg
            np.testing.assert_allclose(br.values, v_star, rtol=0, atol=atol, err_msg=msg)
            np.testing.assert_allclose(br.q_values, q_star, rtol=0, atol=atol, err_msg=msg)
            # A one-hot policy that attains V*: evaluated exactly (float64 oracle) as player
            # i's policy against the others, it is worth V* from every state.
            assert set(np.unique(br.policy)) <= {0.0, 1.0}
            np.testing.assert_array_equal(br.policy.sum(-1), 1.0)
            v_br = ref.values(P, R, GAMMA, _with(policy, i, br.policy))[i]
            np.testing.assert_allclose(v_br, v_star, rtol=0, atol=atol, err_msg=msg)


@pytest.mark.parametrize("dtype, S, acts, seed", CORE_PARAMS)
def test_best_responses_match_reference(dtype, S, acts, seed):
    (P, R, mu0, policy), out = _computed("core", dtype, S, acts, seed)
    responses, v_pi = out["joint"]
    atol = _br_atol(dtype)
    assert len(responses) == len(acts)
    np.testing.assert_allclose(
        v_pi, ref.values(P, R, GAMMA, policy), rtol=0, atol=h.value_atol(dtype, GAMMA)
    )
    for i, br in enumerate(responses):
        msg = f"player {i}"
        v_star = ref.best_response_values(P, R, GAMMA, policy, i)  # brute force or VI
        assert br.policy.shape == br.q_values.shape == (S, acts[i])
        assert bool(br.converged), msg
        np.testing.assert_allclose(br.values, v_star, rtol=0, atol=atol, err_msg=msg)
        v_br = ref.values(P, R, GAMMA, _with(policy, i, br.policy))[i]
        np.testing.assert_allclose(v_br, v_star, rtol=0, atol=atol, err_msg=msg)


@pytest.mark.parametrize(
    "S, acts", [(4, (2, 3)), pytest.param(2, (2, 2, 3, 2), marks=pytest.mark.slow)]
)
def test_best_response_beats_every_deterministic_deviation(S, acts):
    (P, R, mu0, policy), out = _computed("core", np.float64, S, acts, 0)
    atol = _br_atol(np.float64)
    for i, a_i in enumerate(acts):
        br_values = out["joint"][0][i].values
        deviations = list(ref.deterministic_policies(S, a_i))
        assert len(deviations) == a_i**S
        v_devs = np.stack([ref.values(P, R, GAMMA, _with(policy, i, d))[i] for d in deviations])
        # No deterministic deviation beats the best response in any state ...
        assert (v_devs <= br_values + atol).all(), f"player {i}"
        # ... and one of them (the best response itself) attains it in every state.
        assert (np.abs(v_devs - br_values) <= atol).all(axis=1).any(), f"player {i}"


@pytest.mark.parametrize("dtype, S, acts, seed", PER_PLAYER_PARAMS)
def test_best_responses_equal_per_player_best_response(dtype, S, acts, seed):
    (P, R, mu0, policy), out = _computed("per_player", dtype, S, acts, seed)
    _, core = _computed("core", dtype, S, acts, seed)
    responses, _ = core["joint"]
    atol = _br_atol(dtype)
    for i, (joint, single) in enumerate(zip(responses, out["pi"], strict=True)):
        assert joint.policy.shape == single.policy.shape == (S, acts[i])
        np.testing.assert_array_equal(joint.policy, single.policy, err_msg=f"player {i}")
        np.testing.assert_allclose(joint.values, single.values, rtol=0, atol=atol)
        np.testing.assert_allclose(joint.q_values, single.q_values, rtol=0, atol=atol)
        assert bool(joint.converged) and bool(single.converged)


@pytest.mark.parametrize("dtype, S, acts, seed", CORE_PARAMS)
def test_induced_mdps_match_reference(dtype, S, acts, seed):
    (P, R, mu0, policy), out = _computed("core", dtype, S, acts, seed)
    atol = 1e-12 if dtype == np.float64 else 32 * h.EPS32  # contractions only
    for i, a_i in enumerate(acts):
        P_i, r_i = ref.induced_mdp(P, R, policy, i)
        for mdp in (out["induced"][i], out["induced_all"][i]):
            assert isinstance(mdp, jm.InducedMDP)
            assert mdp.transition.shape == (S, a_i, S) and mdp.reward.shape == (S, a_i)
            np.testing.assert_allclose(mdp.transition, P_i, rtol=0, atol=atol)
            np.testing.assert_allclose(mdp.reward, r_i, rtol=0, atol=atol)


# ---------------------------------------------------------------------------------------------
# Nash gap against the oracle.
# ---------------------------------------------------------------------------------------------


def _check_nash_gap(gap, P, R, mu0, policy, dtype):
    want = ref.nash_gap(P, R, mu0, GAMMA, policy)
    values = ref.values_at(P, R, mu0, GAMMA, policy)
    n = len(policy)
    atol = _br_atol(dtype) + h.value_atol(dtype, GAMMA)  # a difference of two values
    assert isinstance(gap, jm.NashGap)
    assert gap.gains.shape == gap.policy_values.shape == gap.best_response_values.shape == (n,)
    assert gap.converged.shape == (n,) and gap.converged.all()
    np.testing.assert_allclose(gap.gains, want["gains"], rtol=0, atol=atol)
    np.testing.assert_allclose(gap.nash_gap, want["nash_gap"], rtol=0, atol=atol)
    np.testing.assert_allclose(gap.nash_conv, want["nash_conv"], rtol=0, atol=n * atol)
    np.testing.assert_allclose(gap.policy_values, values, rtol=0, atol=atol)
    np.testing.assert_allclose(gap.best_response_values, values + want["gains"], rtol=0, atol=atol)
    # The record is consistent with itself: gains >= 0 up to rounding, NashGap = max,
    # NashConv = sum.
    assert (gap.gains >= -atol).all()
    assert gap.nash_gap == gap.gains.max()
    np.testing.assert_allclose(gap.nash_conv, gap.gains.sum(), rtol=1e-6, atol=0)
    np.testing.assert_allclose(
        gap.gains,
        gap.best_response_values - gap.policy_values,
        rtol=0,
        atol=4 * float(np.finfo(dtype).eps) / (1 - GAMMA),
    )
    # Random policies on random games are far from equilibrium: the comparison is not vacuous.
    assert want["nash_gap"] > 0.1


@pytest.mark.parametrize("dtype, S, acts, seed", CORE_PARAMS)
def test_nash_gap_matches_reference(dtype, S, acts, seed):
    (P, R, mu0, policy), out = _computed("core", dtype, S, acts, seed)
    _check_nash_gap(out["gap"], P, R, mu0, policy, dtype)


@pytest.mark.parametrize("dtype, S, acts, seed", PER_PLAYER_PARAMS)
def test_nash_gap_by_value_iteration_matches_reference(dtype, S, acts, seed):
    (P, R, mu0, policy), out = _computed("per_player", dtype, S, acts, seed)
    _check_nash_gap(out["gap_vi"], P, R, mu0, policy, dtype)


# ---------------------------------------------------------------------------------------------
# Closed forms on one-state games (helpers.matrix_game).
# ---------------------------------------------------------------------------------------------

# jm.nash_gap is jitted already: an outer jax.jit would compile a second program of the same
# shape, which other test files compile through jm.nash_gap (one-state 2x2 games).
_nash_gap = jm.nash_gap

# Prisoner's dilemma, actions 0 = C(ooperate), 1 = D(efect); u_0[a_0, a_1], u_1 = u_0^T.
# u_0(D, b) - u_0(C, b) = 0.5 for both b: D strictly dominates C for both players.
PD = np.array([[0.5, -1.0], [1.0, -0.5]])
PD_PAYOFFS = np.stack([PD, PD.T])
# Matching pennies: player 0 wins (+1) on a match, player 1 on a mismatch.
MP = np.array([[1.0, -1.0], [-1.0, 1.0]])
MP_PAYOFFS = np.stack([MP, -MP])


def _mixed(p):
    """One state, probability p on action 0."""
    return np.array([[p, 1.0 - p]])


def test_gap_is_zero_at_a_dominant_strategy_equilibrium(x64):
    game = h.matrix_game(PD_PAYOFFS, GAMMA)
    gap = _nash_gap(game, (_mixed(0.0), _mixed(0.0)))  # (D, D)
    # Against D, C pays -1 and D pays -0.5: D is the best stage payoff, so both gains are 0.
    np.testing.assert_allclose(gap.gains, 0.0, atol=1e-12)
    np.testing.assert_allclose(gap.policy_values, -0.5 / (1 - GAMMA), atol=1e-12)
    assert float(gap.nash_gap) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("p", [1.0, 0.3])
def test_gap_off_a_dominant_strategy_equilibrium_has_the_closed_form(x64, p):
    game = h.matrix_game(PD_PAYOFFS, GAMMA)
    gap = _nash_gap(game, (_mixed(p), _mixed(p)))  # both cooperate with probability p
    # Player 0's gain: (u_0(D, sigma) - u_0(sigma, sigma)) / (1 - gamma)
    #   = p (u_0(D, sigma) - u_0(C, sigma)) / (1 - gamma) = 0.5 p / (1 - gamma);
    # the same for player 1 by symmetry. p = 1 (C, C): 5.0; p = 0.3: 1.5.
    want = 0.5 * p / (1 - GAMMA)
    np.testing.assert_allclose(gap.gains, [want, want], atol=1e-12)
    np.testing.assert_allclose(gap.nash_gap, want, atol=1e-12)
    np.testing.assert_allclose(gap.nash_conv, 2 * want, atol=1e-12)


def test_gap_is_zero_at_uniform_matching_pennies(x64):
    game = h.matrix_game(MP_PAYOFFS, GAMMA)
    gap = _nash_gap(game, (_mixed(0.5), _mixed(0.5)))
    # Against a uniform opponent both actions pay 0 to either player: no gain.
    np.testing.assert_allclose(gap.gains, 0.0, atol=1e-12)
    np.testing.assert_allclose(gap.policy_values, 0.0, atol=1e-12)


def test_gap_of_matching_pennies_with_pure_heads(x64):
    game = h.matrix_game(MP_PAYOFFS, GAMMA)
    gap = _nash_gap(game, (_mixed(1.0), _mixed(0.5)))  # player 0 always heads, player 1 uniform
    # Player 1 against heads: heads pays -1, tails +1; playing uniform pays 0. Gain of player 1
    # = (1 - 0) / (1 - gamma) = 10. Player 0 against uniform: both actions pay 0, gain 0.
    np.testing.assert_allclose(gap.gains, [0.0, 1.0 / (1 - GAMMA)], atol=1e-12)
    np.testing.assert_allclose(gap.nash_gap, 10.0, atol=1e-11)
    np.testing.assert_allclose(gap.nash_conv, 10.0, atol=1e-11)
    np.testing.assert_allclose(gap.best_response_values, [0.0, 10.0], atol=1e-11)


def test_gap_is_zero_at_a_multi_state_dominant_strategy_equilibrium(x64):
    # Transitions ignore the actions (P[s, a, :] = T[s, :]) and R_i(s, a) = u_i(s, a_i) depends
    # on player i's own action only: playing argmax_a u_i(s, a) in every state is dominant
    # (it maximises every term of sum_t gamma^t R_i while the state process is fixed).
    S, acts = 4, (2, 3)
    rng = np.random.default_rng(7)
    T = rng.dirichlet(np.ones(S), size=S)
    P = np.broadcast_to(T[:, None, None, :], (S, *acts, S)).copy()
    u = [rng.uniform(-1, 1, size=(S, a)) for a in acts]
    R = np.stack([u[0][:, :, None] * np.ones(acts), u[1][:, None, :] * np.ones(acts)])
    mu0 = rng.dirichlet(np.ones(S))
    game = h.make_game(P, R, mu0, GAMMA)
    dominant = tuple(np.eye(a)[ui.argmax(-1)] for a, ui in zip(acts, u))
    gap = _computed_gap(game, dominant)
    np.testing.assert_allclose(gap.gains, 0.0, atol=1e-10)
    # Any other deterministic policy of player 1 loses: its gain is the positive value of the
    # stage losses under the (fixed) state occupancy, sum_s d(s) (max u - u(chosen)) / (1-gamma).
    other = np.eye(3)[(u[1].argmax(-1) + 1) % 3]
    gap = _computed_gap(game, (dominant[0], other))
    d = ref.state_occupancy(P, mu0, GAMMA, dominant)
    loss = u[1].max(-1) - (u[1] * other).sum(-1)
    np.testing.assert_allclose(gap.gains, [0.0, d @ loss / (1 - GAMMA)], atol=1e-10)
    assert gap.gains[1] > 0.01


def _computed_gap(game, policy):
    return jax.tree_util.tree_map(np.asarray, _core(game, policy)["gap"])


# ---------------------------------------------------------------------------------------------
# Best-response sets, the farthest best response and the BR shift.
# ---------------------------------------------------------------------------------------------

SET_TOL = 1e-6


@jax.jit
def _sets(game, policy, expert):
    n = game.num_players
    return dict(
        sets=tuple(jm.best_response_set(game, policy, i, tol=SET_TOL) for i in range(n)),
        default_sets=tuple(jm.best_response_set(game, policy, i) for i in range(n)),
        far=tuple(
            jm.farthest_best_response(game, policy, i, expert[i], tol=SET_TOL) for i in range(n)
        ),
        shift=jm.best_response_shift(game, policy, expert, tol=SET_TOL),
    )


def _game_with_ties(seed, S=4, acts=(2, 3)):
    """A random game where player 1's action 2 is a copy of its action 0 and player 0's two
    actions are copies of each other: exact ties in every state (Q*_1(s, 0) = Q*_1(s, 2), and
    every action of player 0 is optimal)."""
    P, R, mu0, policy = h.instance(seed, S, acts, GAMMA)
    P[:, :, 2] = P[:, :, 0]
    R[:, :, :, 2] = R[:, :, :, 0]
    P[:, 1] = P[:, 0]
    R[:, :, 1] = R[:, :, 0]
    return P, R, mu0, policy


@pytest.mark.parametrize("seed", SEEDS)
def test_best_response_sets_match_reference_with_ties(x64, seed):
    P, R, mu0, policy = _game_with_ties(seed)
    expert = ref.random_policy(np.random.default_rng(100 + seed), 4, (2, 3))
    game = h.make_game(P, R, mu0, GAMMA)
    out = _sets(game, policy, expert)
    responses, _ = _core(game, policy)["joint"]
    for i in range(2):
        want = ref.best_response_set(P, R, GAMMA, policy, i, SET_TOL)
        got = np.asarray(out["sets"][i])
        assert got.dtype == bool and got.shape == want.shape
        np.testing.assert_array_equal(got, want, err_msg=f"player {i}")
        assert got.any(-1).all()
        # The default tolerance (sqrt(eps) / (1 - gamma) ~ 1.5e-7) keeps the exact ties too.
        np.testing.assert_array_equal(np.asarray(out["default_sets"][i]), want)
        # The best response plays inside its set.
        assert got[np.asarray(responses[i].policy) == 1].all()
    # The ties are there (so the sets are not all singletons) ...
    sets1 = np.asarray(out["sets"][1])
    assert np.asarray(out["sets"][0]).all()
    np.testing.assert_array_equal(sets1[:, 0], sets1[:, 2])
    # ... and player 1's set is not everything either (action 1 is not tied).
    assert not sets1.all()


@pytest.mark.parametrize("seed", SEEDS)
def test_farthest_best_response_and_shift_match_reference_with_ties(x64, seed):
    P, R, mu0, policy = _game_with_ties(seed)
    expert = ref.random_policy(np.random.default_rng(100 + seed), 4, (2, 3))
    out = _sets(h.make_game(P, R, mu0, GAMMA), policy, expert)
    d_expert = ref.state_occupancy(P, mu0, GAMMA, expert)
    shift = np.asarray(out["shift"])
    assert shift.shape == (2,)
    for i in range(2):
        mask = ref.best_response_set(P, R, GAMMA, policy, i, SET_TOL)
        # In every state, the action of the set with the least expert mass.
        want = np.eye(expert[i].shape[1])[np.where(mask, expert[i], np.inf).argmin(-1)]
        np.testing.assert_array_equal(np.asarray(out["far"][i]), want, err_msg=f"player {i}")
        # shift_i = sum_s d_expert(s) max_{a in set(s)} ||e_a - expert_i(s)||_1, and
        # ||e_a - p||_1 = 2 (1 - p(a)).
        per_state = np.where(mask, 2 * (1 - expert[i]), -np.inf).max(-1)
        np.testing.assert_allclose(shift[i], d_expert @ per_state, rtol=0, atol=1e-9)


def test_farthest_best_response_and_shift_by_hand(x64):
    # Four states; every joint action moves to a uniformly random state; the game starts in
    # state 0. So d(s) = (1 - gamma) mu0(s) + gamma / 4 = (0.325, 0.225, 0.225, 0.225) for EVERY
    # policy, and Q*_i(s, a) = u_i(a) + (a constant): the gaps between actions are the gaps
    # between stage payoffs. Player 1 (3 actions) is paid 1, 1 - 1e-4, 1 for its own action
    # whatever player 0 does: its best-response set is {0, 2} in every state (the gap 1e-4 is
    # above SET_TOL = 1e-6 and the default sqrt(eps) / (1 - gamma) = 1.5e-7). Player 0
    # (2 actions) is paid 0.5 and 0.5 - 5e-8: both within either tolerance, its set is {0, 1}.
    S, acts = 4, (2, 3)
    P = np.full((S, *acts, S), 1.0 / S)
    R = np.stack(
        [
            np.broadcast_to(np.array([0.5, 0.5 - 5e-8])[:, None], (S, *acts)),
            np.broadcast_to(np.array([1.0, 1.0 - 1e-4, 1.0]), (S, *acts)),
        ]
    )
    mu0 = np.array([1.0, 0.0, 0.0, 0.0])
    game = h.make_game(P, R, mu0, GAMMA)
    policy = (np.full((S, 2), 0.5), np.full((S, 3), 1 / 3))
    d = np.array([0.325, 0.225, 0.225, 0.225])
    # Expert of player 1: (0.1, 0, 0.9) in state 0 -> the farthest best response is action 0
    # (least mass WITHIN the set), not action 1 (least mass overall, not in the set):
    # ||e_0 - (0.1, 0, 0.9)||_1 = 2 (1 - 0.1) = 1.8. (0.7, 0, 0.3) elsewhere -> action 2, 1.4.
    # Expert of player 0: (1, 0) in state 0 -> action 1, distance 2; (0.5, 0.5) elsewhere ->
    # either action (argmin takes the first), distance 1.
    expert = (
        np.array([[1.0, 0.0]] + [[0.5, 0.5]] * 3),
        np.array([[0.1, 0.0, 0.9]] + [[0.7, 0.0, 0.3]] * 3),
    )
    out = _sets(game, policy, expert)
    for key in ("sets", "default_sets"):
        np.testing.assert_array_equal(np.asarray(out[key][1]), [[True, False, True]] * S)
        np.testing.assert_array_equal(np.asarray(out[key][0]), [[True, True]] * S)
    np.testing.assert_array_equal(
        np.asarray(out["far"][1]), [[1.0, 0.0, 0.0]] + [[0.0, 0.0, 1.0]] * 3
    )
    np.testing.assert_array_equal(np.asarray(out["far"][0]), [[0.0, 1.0]] + [[1.0, 0.0]] * 3)
    np.testing.assert_allclose(ref.state_occupancy(P, mu0, GAMMA, expert), d, atol=1e-12)
    # shift_0 = 0.325 * 2 + 0.675 * 1 = 1.325; shift_1 = 0.325 * 1.8 + 0.675 * 1.4 = 1.53.
    np.testing.assert_allclose(np.asarray(out["shift"]), [1.325, 1.53], rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# solve_mdp: masks and convergence flags.
# ---------------------------------------------------------------------------------------------


def _chain_mdp():
    """Two states, three actions (the third is padding, masked out).

    State 0: action 0 'stay' pays 0.1 and stays; action 1 'go' pays 0 and moves to state 1.
    State 1: actions 0 and 1 pay 1 and stay. Action 2 pays 100 everywhere and stays: it must
    never be chosen when masked. With gamma = 0.9: V*(1) = 1 / (1 - gamma) = 10; in state 0,
    'stay' forever is worth 0.1 / (1 - gamma) = 1 and 'go' is worth 0 + gamma * 10 = 9, so
    V* = (9, 10) with 'go' in state 0. Policy iteration started greedy on the reward picks
    'stay' in state 0 and needs a second step.
    """
    P = np.zeros((2, 3, 2))
    P[0, 0, 0] = P[0, 1, 1] = P[0, 2, 0] = 1.0
    P[1, :, 1] = 1.0
    r = np.array([[0.1, 0.0, 100.0], [1.0, 1.0, 100.0]])
    mask = np.array([[True, True, False], [True, True, False]])
    return P, r, mask


@jax.jit
def _solve_variants(P, r, mask, gamma):
    out = {}
    for method in ("policy_iteration", "value_iteration"):
        out[method] = jm.solve_mdp(P, r, gamma, method=method, action_mask=mask)
        out[method + "/1"] = jm.solve_mdp(P, r, gamma, method=method, action_mask=mask, max_iters=1)
        out[method + "/padding-wins"] = jm.solve_mdp(P, r, gamma, method=method)
    return out


def test_solve_mdp_masks_padding_and_reports_convergence(x64):
    P, r, mask = _chain_mdp()
    out = jax.tree_util.tree_map(np.asarray, _solve_variants(P, r, mask, GAMMA))
    for method in ("policy_iteration", "value_iteration"):
        sol = out[method]
        assert isinstance(sol, jm.MDPSolution)
        assert bool(sol.converged), method
        assert sol.actions.dtype == np.int32
        # 'go' in state 0; in state 1 both real actions are optimal, the padding never is.
        assert sol.actions[0] == 1 and sol.actions[1] in (0, 1), method
        atol = 1e-9 if method == "policy_iteration" else 1e-8
        np.testing.assert_allclose(sol.values, [9.0, 10.0], rtol=0, atol=atol)
        # Q(0, stay) = 0.1 + 0.9 * 9 = 8.2, Q(0, go) = 0.9 * 10 = 9, Q(1, .) = 1 + 0.9 * 10.
        np.testing.assert_allclose(
            sol.q_values[:, :2], [[8.2, 9.0], [10.0, 10.0]], rtol=0, atol=atol
        )
        # The padded action is never worth choosing (its Q is pushed far below).
        assert (sol.q_values[:, 2] < -1e10).all()
        # The mask matters: without it the 100-reward action wins everywhere.
        np.testing.assert_array_equal(out[method + "/padding-wins"].actions, [2, 2])
        # One step is not enough: not converged, and flagged as such; the padded action is not
        # chosen even then (the default start is greedy on the MASKED reward).
        short = out[method + "/1"]
        assert not bool(short.converged), method
        assert int(short.iterations) == 1
        assert (short.actions != 2).all()
        assert int(sol.iterations) > 1
    # Policy iteration: step 1 evaluates 'stay' (V(0) = 1) and switches to 'go'; step 2 finds
    # nothing to improve.
    assert int(out["policy_iteration"].iterations) == 2


# ---------------------------------------------------------------------------------------------
# float32 keeps its dtype.
# ---------------------------------------------------------------------------------------------


def test_float32_results_stay_float32():
    (P, R, mu0, policy), out = _computed("core", np.float32, 4, (2, 3), 0)
    for br in out["joint"][0]:
        assert br.values.dtype == np.float32 and br.policy.dtype == np.float32
        assert br.converged.dtype == bool and br.iterations.dtype == np.int32
    assert out["gap"].gains.dtype == np.float32
    assert jnp.dtype(out["induced"][0].transition.dtype) == jnp.float32
