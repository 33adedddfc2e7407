"""The paper's bounds and continuity estimates (jaxmail/theory.py).

Closed-form bounds against hand computation; Lemma 3 on random dominant-strategy games; the
perturbation envelope against a NumPy loop; the adversarial delta estimate on the Lemma 2 game
(where it must find the rare-state attack) and on a strictly dominant game (where it must find
nothing); the concentrability coefficient against brute force over deterministic policies.

Compile time dominates: the games share shapes (S = 4 with A = (3, 3) or (2, 2, 2), and the
Lemma 2 game) so that each kernel compiles once per shape. Tolerances: helpers.py.
"""

import functools

import helpers as h
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference as ref

import jaxmail as jm
from jaxmail import regularised, theory
from jaxmail.tolerances import best_response_set_tol

GAMMA = 0.9

# ----------------------------------------------------------------------------------------------
# Closed-form bounds.
# ----------------------------------------------------------------------------------------------


def test_lemma3_bound_by_hand():
    # n = 2, gamma = 0.9, eps = 0.01: (2n - 1) eps / (1 - gamma)^2 = 3 * 0.01 / 0.01 = 3.
    assert float(theory.lemma3_bound(0.01, 2, 0.9)) == pytest.approx(3.0, rel=1e-6)
    # The statement's constant 2n = 4: 4 * 0.01 / 0.01 = 4.
    assert float(theory.lemma3_bound(0.01, 2, 0.9, constant="statement")) == pytest.approx(4.0)
    # n = 3, gamma = 0.5: 5 * 0.1 / 0.25 = 2.
    assert float(theory.lemma3_bound(0.1, 3, 0.5)) == pytest.approx(2.0, rel=1e-6)
    assert (
        int(theory.lemma3_constant(4)) == 7
        and int(theory.lemma3_constant(4, constant="statement")) == 8
    )


def test_lemma4_bound_and_delta_argument_by_hand():
    # (3 * 0.01 + 0.5) / 0.1^2 = 0.53 / 0.01 = 53; with 2n = 4: 0.54 / 0.01 = 54.
    assert float(theory.lemma4_bound(0.01, 0.5, 2, 0.9)) == pytest.approx(53.0, rel=1e-6)
    assert float(theory.lemma4_bound(0.01, 0.5, 2, 0.9, constant="statement")) == pytest.approx(
        54.0, rel=1e-6
    )
    # delta = 0 (a dominant-strategy expert) gives back Lemma 3.
    assert float(theory.lemma4_bound(0.01, 0.0, 2, 0.9)) == pytest.approx(3.0, rel=1e-6)
    # Safe form (default): (n - 1) eps; paper form: eps. Equal for n = 2.
    assert float(theory.lemma4_delta_argument(0.01, 3)) == pytest.approx(0.02)
    assert float(theory.lemma4_delta_argument(0.01, 3, form="paper")) == pytest.approx(0.01)
    assert float(theory.lemma4_delta_argument(0.01, 2)) == pytest.approx(0.01)
    assert float(theory.lemma4_delta_argument(0.01, 2, form="paper")) == pytest.approx(0.01)


def test_value_gap_bounds_and_corollary3_by_hand():
    bounds = theory.value_gap_bounds(0.01, 0.05, 2, 0.9)
    assert float(bounds.bc) == pytest.approx(2.0, rel=1e-6)  # n eps / (1-g)^2 = 0.02 / 0.01
    assert float(bounds.occupancy) == pytest.approx(0.5, rel=1e-6)  # eps_rho / (1-g) = 0.05/0.1
    # eps (1-g)^2 / c: 0.3 * 0.01 / 3 = 1e-3 (proof, 2n - 1), 0.3 * 0.01 / 4 = 7.5e-4 (2n).
    assert float(theory.corollary3_threshold(0.3, 2, 0.9)) == pytest.approx(1e-3, rel=1e-6)
    assert float(theory.corollary3_threshold(0.3, 2, 0.9, constant="statement")) == pytest.approx(
        7.5e-4, rel=1e-6
    )
    # The threshold is the inverse of the Lemma 3 bound (same constant).
    for constant in theory.CONSTANTS:
        eps = theory.corollary3_threshold(0.3, 3, 0.8, constant=constant)
        assert float(theory.lemma3_bound(eps, 3, 0.8, constant=constant)) == pytest.approx(0.3)


def test_bounds_broadcast_and_vmap():
    eps = jnp.array([0.0, 0.01, 0.05])
    gammas = jnp.array([0.5, 0.9])
    grid = theory.lemma3_bound(eps[:, None], 2, gammas[None, :])
    assert grid.shape == (3, 2)
    loop = np.array([[3 * e / (1 - g) ** 2 for g in (0.5, 0.9)] for e in (0.0, 0.01, 0.05)])
    np.testing.assert_allclose(grid, loop, rtol=1e-6)
    # vmap over the BC error and the number of players (traced n is not checked, only used).
    ns = jnp.array([2, 3, 4])
    mapped = jax.vmap(lambda e, n: theory.lemma4_bound(e, 0.1, n, 0.9))(eps, ns)
    want = [(c * e + 0.1) / 0.01 for c, e in zip((3, 5, 7), (0.0, 0.01, 0.05))]
    np.testing.assert_allclose(mapped, want, rtol=1e-6)
    args = jax.vmap(lambda e, n: theory.lemma4_delta_argument(e, n))(eps, ns)
    np.testing.assert_allclose(args, [0.0, 0.02, 0.15], rtol=1e-6)  # (n - 1) eps
    gaps = jax.jit(jax.vmap(theory.value_gap_bounds, in_axes=(0, 0, None, None)))(
        eps, 2 * eps, 3, 0.9
    )
    np.testing.assert_allclose(gaps.bc, 3 * eps / 0.01, rtol=1e-6)
    np.testing.assert_allclose(gaps.occupancy, 2 * eps / 0.1, rtol=1e-6)


def test_bounds_reject_bad_configuration():
    with pytest.raises(ValueError, match="constant"):
        theory.lemma3_bound(0.01, 2, 0.9, constant="paper")
    with pytest.raises(ValueError, match="constant"):
        theory.corollary3_threshold(0.1, 2, 0.9, constant="2n")
    with pytest.raises(ValueError, match="constant"):
        theory.lemma4_bound(0.01, 0.0, 2, 0.9, constant="")
    with pytest.raises(ValueError, match="form"):
        theory.lemma4_delta_argument(0.01, 3, form="unsafe")
    with pytest.raises(ValueError, match="num_players"):
        theory.lemma3_bound(0.01, 0, 0.9)
    with pytest.raises(ValueError, match="num_players"):
        theory.value_gap_bounds(0.01, 0.0, np.array([2, 0]), 0.9)


# ----------------------------------------------------------------------------------------------
# Lemma 3 on random dominant-strategy games.
# ----------------------------------------------------------------------------------------------

WEIGHTS = jnp.array([0.0, 0.01, 0.03, 0.1, 0.3, 1.0])  # mixing weight of the random policy


@jax.jit
def _gaps_and_errors(game, expert, key):
    """NashGap and eps_BC of ``(1 - w) expert + w random`` for every w in WEIGHTS."""
    noise = jm.random_policy(key, game)

    def one(w):
        policy = tuple((1 - w) * e + w * r for e, r in zip(expert, noise))
        return jm.nash_gap(game, policy).nash_gap, jm.bc_error(game, policy, expert=expert)

    return jax.vmap(one)(WEIGHTS)


@pytest.mark.parametrize(
    "num_actions", [(3, 3), pytest.param((2, 2, 2), marks=pytest.mark.slow)], ids=["n2", "n3"]
)
def test_lemma3_holds_on_dominant_strategy_games(num_actions):
    n = len(num_actions)
    for seed in range(3):
        key_game, key_noise = jax.random.split(jax.random.key(seed))
        game, expert = jm.games.dominant_strategy_game(
            key_game, num_states=4, num_actions=num_actions, discount=GAMMA
        )
        gaps, errors = _gaps_and_errors(game, expert, key_noise)
        atol = h.value_atol(np.float32, GAMMA)
        # The expert itself (w = 0) is an exact equilibrium (dominant strategies).
        assert abs(float(gaps[0])) <= atol and float(errors[0]) == 0.0
        bound = theory.lemma3_bound(errors, n, GAMMA)
        assert np.all(np.asarray(gaps) <= np.asarray(bound) + atol), (seed, gaps, bound)
        assert float(gaps[-1]) > 0.01  # the check is not vacuous: the random policy loses


# ----------------------------------------------------------------------------------------------
# The perturbation envelope.
# ----------------------------------------------------------------------------------------------


def test_perturbation_envelope_against_numpy():
    rng = np.random.default_rng(0)
    errors = rng.uniform(0, 0.5, size=(3, 40)).astype(np.float32)  # no ties (a.s.)
    shifts = rng.uniform(0, 2, size=(3, 40)).astype(np.float32)
    out = jax.vmap(theory.perturbation_envelope)(errors, shifts)
    for k in range(3):
        order = np.argsort(errors[k])
        np.testing.assert_array_equal(out.bc_errors[k], errors[k][order])
        np.testing.assert_array_equal(out.envelope[k], np.maximum.accumulate(shifts[k][order]))


def test_perturbation_envelope_ties_by_hand():
    # Sorted BC errors 0, 0.1, 0.2, 0.2 with shifts 0.7, 0.5, {1.0, 3.0}: the running max is
    # 0.7, 0.7, then both policies at 0.2 share max(0.7, 0.5, 1.0, 3.0) = 3.0.
    out = theory.perturbation_envelope(
        jnp.array([0.2, 0.1, 0.2, 0.0]), jnp.array([1.0, 0.5, 3.0, 0.7])
    )
    np.testing.assert_allclose(out.bc_errors, [0.0, 0.1, 0.2, 0.2])
    np.testing.assert_allclose(out.envelope, [0.7, 0.7, 3.0, 3.0])
    with pytest.raises(ValueError, match="bc_errors, shifts"):
        theory.perturbation_envelope(jnp.zeros(3), jnp.zeros(4))


def test_envelope_at_reads_the_perturbation_envelope():
    rng = np.random.default_rng(1)
    errors = rng.uniform(0, 0.5, size=30).astype(np.float32)
    errors[5] = errors[7]  # a tie
    shifts = rng.uniform(0, 2, size=30).astype(np.float32)
    at = np.concatenate([[-1.0, 0.0, 0.6], errors[:10]]).astype(np.float32)
    out = np.asarray(theory.envelope_at(errors, shifts, at))
    # The cumulative-max envelope read at the last sorted error <= at (ties shared); a max of
    # the same set, so equal exactly.
    env = theory.perturbation_envelope(errors, shifts)
    index = np.searchsorted(np.asarray(env.bc_errors), at, side="right") - 1
    want = np.where(index >= 0, np.asarray(env.envelope)[np.maximum(index, 0)], np.nan)
    np.testing.assert_array_equal(out, want)
    assert np.isnan(out[0]) and out[2] == shifts.max()  # below every error; above all of them
    # Leave-one-out: point m ignores policy exclude[m] (brute force over the set).
    exclude = np.concatenate([[-1, -1, 3], np.arange(10)]).astype(np.int32)
    got = np.asarray(theory.envelope_at(errors, shifts, at, exclude=exclude, empty=-np.inf))
    for m, x in enumerate(at):
        keep = [k for k in range(30) if errors[k] <= x and k != exclude[m]]
        assert got[m] == (max(shifts[keep]) if keep else -np.inf)
    # No policy at all: the empty value everywhere.
    assert np.isnan(theory.envelope_at(jnp.zeros(0), jnp.zeros(0), 1.0)).all()
    with pytest.raises(ValueError, match="bc_errors, values, at"):
        theory.envelope_at(jnp.zeros(3), jnp.zeros(4), 0.0)
    with pytest.raises(ValueError, match="exclude"):
        theory.envelope_at(jnp.zeros(3), jnp.zeros(3), jnp.zeros(2), exclude=jnp.zeros(3, int))


# ----------------------------------------------------------------------------------------------
# Adversarial delta.
# ----------------------------------------------------------------------------------------------


@functools.cache
def _lemma2():
    game, expert, learner = jm.games.lemma2_game(0.05, GAMMA)
    eps_bc = float(jm.bc_error(game, learner, expert=expert))
    return game, expert, eps_bc


def _delta(game, expert, epsilon, player, num_random=16):
    return theory.adversarial_delta(
        game, expert, epsilon, player, key=jax.random.key(3), num_random=num_random
    )


def _check_budget(game, expert, est, epsilon, player):
    """The deviation keeps ``player``'s own policy and fits the budget (n = 2 oracle)."""
    np.testing.assert_array_equal(est.policy[player], expert[player])
    for p in est.policy:
        np.testing.assert_allclose(np.sum(p, axis=-1), 1.0, atol=1e-5)
        assert np.all(np.asarray(p) >= -1e-7)
    d_e = jm.state_occupancy(game, expert)
    cost = float(jm.policy_distance(est.policy, expert)[1 - player] @ d_e)
    assert cost == pytest.approx(float(est.deviation), abs=1e-6)
    assert cost <= epsilon + 1e-6


def test_adversarial_delta_finds_the_lemma2_attack():
    game, expert, eps_bc = _lemma2()
    s0, s_exp = 0, game.num_states - 1
    d_e = np.asarray(jm.state_occupancy(game, expert))
    # Budget eps_BC = 2 d_E(s_exp): player 1 may play 0 at s_exp, which pays player 0 +1 there,
    # so player 0's best response goes straight to s_exp (action 1 at s0, where the expert plays
    # 0: L1 distance 2); every other state's actions tie and the farthest tie is also at
    # distance 2. Shift 2 everywhere: delta = 2 (the paper's Lemma 2).
    est = _delta(game, expert, eps_bc, 0)
    assert float(est.delta) == pytest.approx(2.0, abs=1e-5)
    assert float(est.rare_state) == pytest.approx(2.0, abs=1e-5)
    assert float(est.policy[1][s_exp, 0]) > 0.5  # the attack is at the rare state
    _check_budget(game, expert, est, eps_bc, 0)
    # Against the expert, player 0 strictly prefers action 0 at s0 (it delays the -1 at s_exp)
    # and is indifferent elsewhere: shift 2 (1 - d_E(s0)) = 2 (1 - (1 - gamma)) = 1.8.
    assert d_e[s0] == pytest.approx(1 - GAMMA, abs=1e-6)
    assert float(est.expert_shift) == pytest.approx(1.8, abs=1e-5)
    # Random mixtures spread the tiny budget over all states: mass <= eps_BC << 1/2 ever moves
    # at s_exp, too little to flip player 0 (needs player 1's action 0 w.p. > 1/2 there).
    assert float(est.random) == pytest.approx(1.8, abs=1e-5)
    assert 1.8 - 1e-5 <= float(est.delta) <= 2.0 + 1e-6  # never above the trivial bound 2


def test_adversarial_delta_lemma2_below_the_flip_and_at_zero_budget():
    game, expert, eps_bc = _lemma2()
    # Budget 0.4 eps_BC: only s_exp's rewards move player 0, and at most mass 0.4 of player 1
    # can move to action 0 there (cost 2 d_E(s_exp) per unit of mass = eps_BC), leaving
    # r_0(s_exp) <= 0.4 - 0.6 = -0.2 < 0: player 0 still delays. The true delta(0.4 eps_BC) is
    # the expert's shift 1.8, and the estimate (a lower bound >= it) must equal it.
    est = _delta(game, expert, 0.4 * eps_bc, 0)
    assert float(est.delta) == pytest.approx(1.8, abs=1e-5)
    _check_budget(game, expert, est, 0.4 * eps_bc, 0)
    # Zero budget: no deviation at all, the shift against the expert itself (1.8, as above).
    est = _delta(game, expert, 0.0, 0)
    assert float(est.delta) == pytest.approx(1.8, abs=1e-5)
    assert float(est.deviation) == 0.0


def _strict_dominant_game(num_actions, seed):
    game, expert = jm.games.dominant_strategy_game(
        jax.random.key(seed), num_states=4, num_actions=num_actions, discount=GAMMA
    )
    # Q_i(s, a) - Q_i(s, a') = u_i(s, a) - u_i(s, a') for every pi_-i (transitions ignore the
    # actions, w_i does not depend on a_i): read the u-differences off R at a_-i = 0. Strict
    # dominance with a margin above the best-response-set tolerance makes every best response
    # the expert's action, so BR shifts are exactly 0.
    set_tol = best_response_set_tol(game.dtype, game.discount, 1.0)
    for i, a in enumerate(num_actions):
        r = np.moveaxis(np.asarray(game.reward[i]), i + 1, -1)  # [S, A_-i..., A_i]
        best = np.sort(r.reshape(4, -1, a)[:, 0], axis=-1)  # at a_-i = 0
        assert np.min(best[:, -1] - best[:, -2]) > 2 * float(set_tol), "pick another seed"
    return game, expert


@pytest.mark.slow
def test_adversarial_delta_is_zero_for_a_strictly_dominant_expert():
    game, expert = _strict_dominant_game((2, 2, 2), seed=1)
    est = _delta(game, expert, 0.3, 1, num_random=8)
    # Dominant strategies are the unique best responses to everything: no deviation of the
    # others moves them, whatever the budget. With every shift tied at 0 the estimate keeps
    # the cheapest candidate, the expert itself.
    assert float(est.delta) == 0.0
    assert float(est.expert_shift) == 0.0
    assert float(est.deviation) == 0.0


@pytest.mark.slow  # quick: test_adversarial_delta_finds_the_lemma2_attack (same kernel, n = 2)
def test_adversarial_delta_three_players_respects_the_joint_budget():
    # A random general-sum game (same shapes as above: one compilation) and a random expert,
    # where deviations of the others do move player 1's best response.
    key_game, key_expert = jax.random.split(jax.random.key(4))
    game = jm.games.random_game(key_game, num_states=4, num_actions=(2, 2, 2), discount=GAMMA)
    expert = jm.random_policy(key_expert, game)
    epsilon, player = 0.3, 1
    est = _delta(game, expert, epsilon, player, num_random=8)
    np.testing.assert_array_equal(est.policy[player], expert[player])
    assert float(est.delta) > float(est.expert_shift)  # the search found something
    assert float(est.delta) <= 2.0
    # The budget is on the JOINT distribution of the others (players 0 and 2), by the oracle.
    others = [0, 2]
    joint = ref.joint_policy([np.asarray(est.policy[j], np.float64) for j in others])
    joint_e = ref.joint_policy([np.asarray(expert[j], np.float64) for j in others])
    d_e = np.asarray(jm.state_occupancy(game, expert), np.float64)
    cost = np.abs(joint - joint_e).reshape(4, -1).sum(-1) @ d_e
    assert cost == pytest.approx(float(est.deviation), abs=1e-6)
    assert 0.0 < cost <= epsilon + 1e-6


def test_adversarial_delta_rejects_bad_arguments():
    game, expert, _ = _lemma2()
    with pytest.raises(ValueError, match="key"):
        theory.adversarial_delta(game, expert, 0.1, 0, num_random=4)
    with pytest.raises(ValueError, match="epsilon"):
        theory.adversarial_delta(game, expert, -0.1, 0)
    with pytest.raises(ValueError, match="player"):
        theory.adversarial_delta(game, expert, 0.1, 2)
    with pytest.raises(ValueError, match="method"):
        theory.adversarial_delta(game, expert, 0.1, 0, method="newton")


# ----------------------------------------------------------------------------------------------
# Concentrability.
# ----------------------------------------------------------------------------------------------


def test_concentrability_against_brute_force(x64):
    S, acts = 4, (3, 3)
    rng = np.random.default_rng(5)
    P, R, mu0 = ref.random_game(rng, S, acts, GAMMA)
    expert = ref.random_policy(rng, S, acts)
    out = theory.concentrability(h.make_game(P, R, mu0, GAMMA), expert)
    d_e = ref.state_occupancy(P, mu0, GAMMA, expert)
    for i in range(2):
        # The max occupancy of a state over player i's policies is attained by a deterministic
        # policy (an MDP with reward 1{s}): enumerate all A_i^S = 81 of them.
        occupancies = []
        for det in ref.deterministic_policies(S, acts[i]):
            policy = tuple(det if j == i else expert[j] for j in range(2))
            occupancies.append(ref.state_occupancy(P, mu0, GAMMA, policy))
        best = np.max(occupancies, axis=0)
        np.testing.assert_allclose(out.max_occupancy[i], best, rtol=0, atol=1e-9)
        np.testing.assert_allclose(out.ratios[i], best / d_e, rtol=1e-8)
        assert float(out.coefficients[i]) == pytest.approx(np.max(best / d_e), rel=1e-8)
    np.testing.assert_allclose(out.expert_occupancy, d_e, atol=1e-9)
    assert bool(np.all(out.converged))
    assert np.all(np.asarray(out.coefficients) > 1.0)  # deviations do over-visit some state


def test_concentrability_is_one_when_nobody_steers():
    game, expert = _strict_dominant_game((3, 3), seed=0)
    out = theory.concentrability(game, expert)
    # Transitions ignore the actions: every deviation has the expert's occupancy, ratio 1 at
    # every state (all visited: mu0 is uniform).
    atol = h.occupancy_atol(np.float32, GAMMA)
    np.testing.assert_allclose(out.max_occupancy, np.stack([out.expert_occupancy] * 2), atol=atol)
    np.testing.assert_allclose(out.ratios, 1.0, rtol=atol / float(np.min(out.expert_occupancy)))
    assert bool(np.all(out.converged))


def test_concentrability_of_the_theorem2_game():
    game, expert, _ = jm.games.theorem2_game(GAMMA)  # states [s0, s1, T, B], mu0 = s0
    out = theory.concentrability(game, expert)
    # Expert: (0, 0) at s0 -> B, absorbing: d_E = (1 - g, 0, 0, g).
    np.testing.assert_allclose(out.expert_occupancy, [0.1, 0.0, 0.0, 0.9], atol=1e-6)
    # Player 0 plays 1 at s0 against the expert's 0: s1 at t = 1, occupancy (1 - g) g = 0.09,
    # a state the expert never visits -> inf. T needs player 1's action 0 at s1 (the expert
    # plays 2): unreachable, 0/0 -> 0. d(s0) = 1 - g always; max d(B) = g (the expert's path).
    np.testing.assert_allclose(out.max_occupancy[0], [0.1, 0.09, 0.0, 0.9], atol=1e-6)
    np.testing.assert_allclose(out.ratios[0], [1.0, np.inf, 0.0, 1.0], rtol=1e-5)
    # Player 1 cannot leave s0 -> B while player 0 plays 0: ratios 1 on the path, 0 off it.
    np.testing.assert_allclose(out.ratios[1], [1.0, 0.0, 0.0, 1.0], rtol=1e-5)
    np.testing.assert_allclose(out.coefficients, [np.inf, 1.0], rtol=1e-5)


# ----------------------------------------------------------------------------------------------
# Soft best responses (jaxmail/regularised.py) and the certified soft delta.
# ----------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def _soft_game(zero_sum):
    """A 4-state, 2x2-action game at gamma = 0.5 and its regularised equilibrium at tau = 1."""
    key = jax.random.key(1 if zero_sum else 0)
    if zero_sum:
        game = jm.games.zero_sum_game(key, num_states=4, num_actions=(2, 2), discount=0.5)
        expert = jm.equilibria.soft_nash_vi(game, temperature=1.0).policy
    else:
        game = jm.games.random_game(key, num_states=4, num_actions=(2, 2), discount=0.5)
        expert = jm.equilibria.logit_qre(game, temperature=1.0).policy
    return game, expert


def _numpy_soft_response(game, policy, player, tau, zero_sum):
    """Soft value iteration in float64 NumPy loops over joint actions (independent oracle)."""
    p = np.asarray(game.transition, np.float64)
    r = np.asarray(game.reward, np.float64)[player]
    pi = [np.asarray(x, np.float64) for x in policy]
    other = 1 - player
    s_count, a_count = pi[player].shape
    reward = np.zeros((s_count, a_count))
    trans = np.zeros((s_count, a_count, s_count))
    for s in range(s_count):
        for a in range(a_count):
            for b in range(pi[other].shape[1]):
                joint = (s, a, b) if player == 0 else (s, b, a)
                reward[s, a] += pi[other][s, b] * r[joint]
                trans[s, a] += pi[other][s, b] * p[joint]
        if zero_sum:
            q = pi[other][s]
            reward[s] += tau * np.sum(q * np.log(np.clip(q, 1e-300, None)))
    gamma = float(game.discount)
    v = np.zeros(s_count)
    for _ in range(2000):
        q = reward + gamma * trans @ v
        v = tau * np.log(np.sum(np.exp(q / tau), axis=1))
    q = reward + gamma * trans @ v
    e = np.exp((q - q.max(axis=1, keepdims=True)) / tau)
    return e / e.sum(axis=1, keepdims=True)


# quick: the zero-sum case (the same soft best-response kernel against the same NumPy oracle)
SOFT_CASES = [pytest.param(False, marks=pytest.mark.slow), True]


@pytest.mark.parametrize("zero_sum", SOFT_CASES)
def test_soft_best_response_against_numpy(zero_sum):
    game, expert = _soft_game(zero_sum)
    policy = jm.imitation.perturb_policy(jax.random.key(5), expert, 0.5)
    got = regularised.soft_best_response_shift(
        game, policy, expert, temperature=1.0, zero_sum=zero_sum
    )
    assert bool(got.converged)
    d_e = np.asarray(jm.state_occupancy(game, expert))
    for i in range(2):
        want = _numpy_soft_response(game, policy, i, 1.0, zero_sum)
        # float32: values of size (1 + log 2) / (1 - gamma) = 3.4 to ~1e-6, logits / tau = 1.
        np.testing.assert_allclose(got.policy[i], want, atol=1e-5)
        shift = d_e @ np.abs(want - np.asarray(expert[i])).sum(axis=1)
        np.testing.assert_allclose(got.shifts[i], shift, atol=1e-5)
    # The regularised payoff's size: r_max + tau log 2 (two actions each, either convention).
    bound = regularised.regularised_reward_bound(game, 1.0, zero_sum=zero_sum)
    np.testing.assert_allclose(bound, float(theory.reward_bound(game)) + np.log(2.0))


def test_entropy_continuity_bounds_entropy_differences():
    rng = np.random.default_rng(0)
    p, q = rng.dirichlet(np.ones(4), 2000), rng.dirichlet(np.ones(4), 2000)
    h = lambda x: -np.sum(x * np.log(x), axis=1)  # noqa: E731
    c = np.abs(p - q).sum(axis=1)
    phi = np.asarray(theory.entropy_continuity(c, 4))
    assert np.all(np.abs(h(p) - h(q)) <= phi + 1e-6)
    # Non-decreasing, 0 at 0, log d beyond T = 1 - 1/d (c = 1.5 for d = 4).
    grid = np.asarray(theory.entropy_continuity(np.linspace(0, 2, 101), 4))
    assert grid[0] == 0 and np.all(np.diff(grid) >= -1e-7)
    np.testing.assert_allclose(grid[-1], np.log(4.0), rtol=1e-6)


@pytest.mark.parametrize("zero_sum", SOFT_CASES)
def test_soft_delta_upper_bound_is_sound_on_random_deviations(zero_sum):
    """Every deviation within the budget has a soft BR shift below the certified bound."""
    game, expert = _soft_game(zero_sum)
    epsilons = jnp.array([0.0, 0.001, 0.005, 0.02])
    cert = theory.soft_delta_upper_bound(game, expert, epsilons, temperature=1.0, zero_sum=zero_sum)
    bound = np.asarray(cert.bound)
    assert float(cert.min_occupancy) > 0  # every state visited: the bound is informative
    # eps = 0: only the expert itself is admissible, and the bound is its own shift.
    np.testing.assert_allclose(bound[0], float(jnp.max(cert.expert_shift)), rtol=1e-6)
    assert np.all(np.diff(bound) >= 0) and np.all(bound <= 2.0)
    assert bound[2] < 1.0  # informative at eps = 0.005 (measured 0.05 and 0.11)
    d_e = jm.state_occupancy(game, expert)

    def worst(key, budget):
        """Player 1 moves toward a random policy until its deviation cost is ``budget``."""
        q = jm.random_policy(key, game)[1]
        cost = d_e @ jnp.sum(jnp.abs(q - expert[1]), axis=-1)
        moved = expert[1] + jnp.minimum(1.0, budget / cost) * (q - expert[1])
        soft = regularised.soft_best_response_shift(
            game, (expert[0], moved), expert, temperature=1.0, zero_sum=zero_sum
        )
        return soft.shifts[0], d_e @ jnp.sum(jnp.abs(moved - expert[1]), axis=-1)

    keys = jax.random.split(jax.random.key(2), 16)
    shifts, costs = jax.jit(jax.vmap(jax.vmap(worst, (0, None)), (None, 0)))(keys, epsilons[1:])
    shifts, costs = np.asarray(shifts), np.asarray(costs)  # [3, 16]
    assert np.all(costs <= np.asarray(epsilons[1:])[:, None] * (1 + 1e-4))  # float32 rounding
    assert np.all(shifts <= bound[1:, None] + 1e-5)
    # The check can fail: against the bound at eps = 0 (too small a budget) the best responses
    # to the larger deviations lie outside it (at eps = 0.001 they may not move enough).
    assert np.all(np.any(shifts[1:] > bound[0] + 1e-5, axis=1))


def test_soft_delta_upper_bound_rejects_one_player():
    # (the one-player shape of tests/test_imitation.py: its generator program is compiled once)
    game = jm.games.random_game(jax.random.key(0), num_states=3, num_actions=(2,), discount=0.5)
    with pytest.raises(ValueError, match="n >= 2"):
        theory.soft_delta_upper_bound(game, jm.uniform_policy(game), 0.1, temperature=1.0)
