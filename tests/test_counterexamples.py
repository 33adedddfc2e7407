"""The paper's counterexample games (docs/theory.md §4; jaxmail/games/counterexamples.py).

Players are 0 and 1 here (the paper's 1 and 2). Every figure is checked at the paper's
parameters AND as a formula at other discounts/epsilons, with the derivation beside it. All
checks run in float64 (the ``x64`` fixture; games are built inside the tests) with tight
tolerances: the games are deterministic and the values are short geometric sums.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmail as jm
from jaxmail import games

TOL = 1e-9  # float64; values of size <= 1/(1-gamma) <= 100
GAMMAS = (0.3, 0.5, 0.9, 0.99)  # 0.9 is the paper's; arrays are made inside the tests (x64)


def _summary(game, expert, learner):
    """Everything the tests read, for one game (vmap over a discount batch)."""
    gap_l = jm.nash_gap(game, learner)
    gap_e = jm.nash_gap(game, expert)
    return {
        "learner_gains": gap_l.gains,
        "learner_gap": gap_l.nash_gap,
        "expert_gains": gap_e.gains,
        "converged": jnp.concatenate([gap_l.converged, gap_e.converged]),
        "d_expert": jm.state_occupancy(game, expert),
        "d_learner": jm.state_occupancy(game, learner),
        "eps_mu": jm.state_occupancy_error(game, learner, expert),
        "eps_rho": jm.occupancy_error(game, learner, expert),
        "eps_bc": jm.bc_error(game, learner, expert=expert),
    }


@jax.jit
def _summary_with_shift(game, expert, learner):
    out = _summary(game, expert, learner)
    out["shift"] = jm.best_response_shift(game, learner, expert)
    return out


_summary_batch = jax.jit(jax.vmap(_summary))  # one compilation per game shape


def _over_discounts(make, gammas=GAMMAS):
    """``_summary`` of ``make(gamma)`` for a batch of discounts (one compiled program)."""
    gammas = jnp.asarray(gammas)
    assert gammas.dtype == jnp.float64
    batch = jax.vmap(make)(gammas)  # the counterexamples only put gamma in the discount leaf
    out = _summary_batch(*batch)
    assert bool(jnp.all(out["converged"]))
    return {k: np.asarray(v) for k, v in out.items()}, np.asarray(gammas)


def _check_policies(ex):
    for policy in (ex.expert, ex.learner):
        jm.check_policy(ex.game, policy)  # shapes and rows
    assert float(jnp.max(jnp.abs(ex.game.reward))) <= 1.0


# ----------------------------------------------------------------------------------------------
# Lemma 1.
# ----------------------------------------------------------------------------------------------


def test_lemma1_structure(x64):
    ex = games.lemma1_game()
    _check_policies(ex)
    assert ex.game.num_states == 3 and ex.game.num_actions == (2, 2)
    assert float(ex.game.discount) == 0.9
    np.testing.assert_array_equal(ex.game.reward[0], ex.game.reward[1])  # common payoff


@pytest.mark.parametrize("off_path", ["stay", "advance", "restart"])
def test_lemma1_figures_and_formula(x64, off_path):
    out, g = _over_discounts(lambda gamma: games.lemma1_game(gamma, off_path=off_path))
    # Both occupancies are uniform: the expert cycles s -> s+1, which keeps the uniform mu0
    # uniform; the learner (joint action (0, 1), off-path) stays / cycles / restarts uniformly.
    np.testing.assert_allclose(out["d_expert"], 1 / 3, atol=TOL)
    np.testing.assert_allclose(out["d_learner"], 1 / 3, atol=TOL)
    np.testing.assert_allclose(out["eps_mu"], 0.0, atol=TOL)
    # The expert is an exact equilibrium.
    np.testing.assert_allclose(out["expert_gains"], 0.0, atol=TOL)
    # Learner: -1 forever, V = -1/(1-g). Player 1's best response is the expert's action 0,
    # worth the expert's value: mean reward (1/3 + 2/3 + 1)/3 = 2/3 under the uniform state
    # at every step, V = (2/3)/(1-g). Gain (2/3 + 1)/(1-g) = (5/3)/(1-g). Player 0 cannot
    # leave -1 while player 1 plays 1: gain 0.
    np.testing.assert_allclose(out["learner_gains"][:, 0], 0.0, atol=TOL)
    np.testing.assert_allclose(out["learner_gap"], (5 / 3) / (1 - g), rtol=TOL)
    # The paper's figure: 16.667 at gamma = 0.9.
    assert out["learner_gap"][2] == pytest.approx(16.667, abs=5e-4)


# ----------------------------------------------------------------------------------------------
# Theorem 2.
# ----------------------------------------------------------------------------------------------


def test_theorem2_structure(x64):
    ex = games.theorem2_game()
    _check_policies(ex)
    assert ex.game.num_states == 4 and ex.game.num_actions == (3, 3)
    np.testing.assert_array_equal(ex.game.initial, [1, 0, 0, 0])
    ex = games.theorem2_game(chain_length=5)
    _check_policies(ex)
    assert ex.game.num_states == 5 + 3


@pytest.mark.parametrize("exact_expert", [False, True])
def test_theorem2_figures_and_formula(x64, exact_expert):
    out, g = _over_discounts(lambda gamma: games.theorem2_game(gamma, exact_expert=exact_expert))
    # Expert and learner both play (0, 0) at s0 -> B and at B: identical joint state-action
    # occupancies (s1 never visited) — exactly, not approximately.
    np.testing.assert_array_equal(out["eps_rho"], 0.0)
    np.testing.assert_array_equal(out["eps_bc"], 0.0)
    np.testing.assert_allclose(out["d_expert"][:, 1], 0.0, atol=0)
    if exact_expert:
        # r(s1) = 0: the detour through s1 earns nothing against the expert's (2, 2) there.
        np.testing.assert_allclose(out["expert_gains"], 0.0, atol=TOL)
        # Learner: player 0 steers s0 -(1,0)-> s1 -(1,0)-> T, earning 1 from t = 2 on:
        # g^2/(1-g) (8.1 at 0.9).
        expected = g**2 / (1 - g)
    else:
        # Against the expert player 0 reaches s1 (reward 1 at t = 1) but not T: gain g.
        np.testing.assert_allclose(out["expert_gains"][:, 0], g, rtol=TOL)
        np.testing.assert_allclose(out["expert_gains"][:, 1], 0.0, atol=TOL)
        # Learner: reward 1 at every t >= 1: g/(1-g) (9.0 at 0.9).
        expected = g / (1 - g)
    np.testing.assert_allclose(out["learner_gap"], expected, rtol=TOL)
    np.testing.assert_allclose(out["learner_gains"][:, 1], 0.0, atol=TOL)  # player 1 can't steer
    assert out["learner_gap"][2] == pytest.approx(8.1 if exact_expert else 9.0, rel=TOL)


@pytest.mark.slow
@pytest.mark.parametrize("exact_expert", [False, True])
def test_theorem2_finite_chain(x64, exact_expert):
    K = 3
    out, g = _over_discounts(
        lambda gamma: games.theorem2_game(gamma, exact_expert=exact_expert, chain_length=K)
    )
    np.testing.assert_array_equal(out["eps_rho"], 0.0)
    # The learner's best response now earns 1 at t = 1 (s1, unless exact) and at t = 2..K+1
    # (T_1..T_K), then nothing in B: sum_{t=1}^{K+1} g^t = g (1 - g^{K+1})/(1-g), or
    # sum_{t=2}^{K+1} g^t = g^2 (1 - g^K)/(1-g) with the exact expert.
    if exact_expert:
        expected = g**2 * (1 - g**K) / (1 - g)
        np.testing.assert_allclose(out["expert_gains"], 0.0, atol=TOL)
    else:
        expected = g * (1 - g ** (K + 1)) / (1 - g)
        np.testing.assert_allclose(out["expert_gains"][:, 0], g, rtol=TOL)
    np.testing.assert_allclose(out["learner_gap"], expected, rtol=TOL)


# ----------------------------------------------------------------------------------------------
# Lemma 2.
# ----------------------------------------------------------------------------------------------


def _lemma2(epsilon, discount, **kwargs):
    ex = games.lemma2_game(epsilon, discount, **kwargs)
    return ex, {k: np.asarray(v) for k, v in _summary_with_shift(*ex).items()}


def test_lemma2_chain_length():
    # k = ceil(log((eps/2)(1-g)) / log g): at (0.05, 0.9), log(0.0025)/log(0.9) = 56.86 -> 57.
    assert games.lemma2_chain_length(0.05, 0.9) == 57
    for eps, g in [(0.05, 0.9), (0.1, 0.8), (0.01, 0.95), (1e-3, 0.5), (2.0, 0.5)]:
        k = games.lemma2_chain_length(eps, g)
        target = (eps / 2) * (1 - g)
        # The smallest k >= 1 with g^k <= target.
        assert g**k <= target and (k == 1 or g ** (k - 1) > target)
        assert k == max(1, math.ceil(math.log(target) / math.log(g)))


def test_lemma2_paper_figures(x64):
    ex, out = _lemma2(0.05, 0.9)
    _check_policies(ex)
    g, k = 0.9, 57
    assert ex.game.num_states == k + 2
    # d_expert(s_exp) = g^{k+1} (s_exp reached at t = k+1, then absorbing):
    # eps_BC = 2 g^{k+1} = 2 * 0.9^58 = 0.004437 <= eps (paper: 0.0044).
    assert out["d_expert"][-1] == pytest.approx(g ** (k + 1), rel=1e-9)
    assert out["eps_bc"] == pytest.approx(2 * g ** (k + 1), rel=1e-9)
    assert out["eps_bc"] <= 0.05
    assert round(float(out["eps_bc"]), 4) == 0.0044
    # The expert is an exact equilibrium.
    np.testing.assert_allclose(out["expert_gains"], 0.0, atol=TOL)
    # Learner: player 0 goes straight to s_exp (action 1) and earns +1 from t = 1:
    # g/(1-g) = 9 instead of g^{k+1}/(1-g); gain (g - g^{k+1})/(1-g) = 8.978 (paper: 8.978).
    assert out["learner_gap"] == pytest.approx((g - g ** (k + 1)) / (1 - g), rel=1e-9)
    assert round(float(out["learner_gap"]), 3) == 8.978
    # Player 1 only gains g^{k+1}/(1-g) by switching back to 1 at s_exp.
    assert out["learner_gains"][1] == pytest.approx(g ** (k + 1) / (1 - g), rel=1e-9)
    # BR shift of player 0 is 2: action 1 at s0 (strict), and at the chain states and s_exp
    # every action is optimal, so the farthest best response plays 1 where the expert plays 0.
    assert out["shift"][0] == pytest.approx(2.0, abs=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("epsilon, discount", [(0.2, 0.5)])  # k = 5 (one more compilation each)
def test_lemma2_formulas(x64, epsilon, discount):
    ex, out = _lemma2(epsilon, discount)
    g, k = discount, games.lemma2_chain_length(epsilon, discount)
    assert ex.game.num_states == k + 2
    # As in the paper figures, derived above: eps_BC = 2 g^{k+1} <= eps g (1 - g) <= eps.
    assert out["eps_bc"] == pytest.approx(2 * g ** (k + 1), rel=1e-9)
    assert out["eps_bc"] <= epsilon * g * (1 - g) * (1 + 1e-12)
    np.testing.assert_allclose(out["expert_gains"], 0.0, atol=TOL)
    assert out["learner_gap"] == pytest.approx((g - g ** (k + 1)) / (1 - g), rel=1e-9)
    assert out["shift"][0] == pytest.approx(2.0, abs=1e-9)


def test_lemma2_restart_variant(x64):
    g, eps = 0.9, 0.05
    ex, out = _lemma2(eps, g, exp_state="restart")
    k = 57
    # s_exp returns to s0: the expert's cycle has length L = k + 2 and visits s_exp at
    # t = k+1 (mod L): d_expert(s_exp) = (1-g) g^{k+1} / (1 - g^{k+2}); eps_BC twice that.
    d_exp = (1 - g) * g ** (k + 1) / (1 - g ** (k + 2))
    assert out["eps_bc"] == pytest.approx(2 * d_exp, rel=1e-9)
    assert out["eps_bc"] <= eps
    np.testing.assert_allclose(out["expert_gains"], 0.0, atol=TOL)
    # Learner: player 0 earns +1 per s_exp visit; going straight (cycle s0, s_exp of length 2)
    # earns g/(1-g^2); the expert's path earns g^{k+1}/(1 - g^{k+2}).
    gain0 = g / (1 - g**2) - g ** (k + 1) / (1 - g ** (k + 2))
    assert out["learner_gains"][0] == pytest.approx(gain0, rel=1e-9)
    assert out["shift"][0] == pytest.approx(2.0, abs=1e-9)


# ----------------------------------------------------------------------------------------------
# Parameters.
# ----------------------------------------------------------------------------------------------


def test_counterexamples_accept_a_traced_discount():
    # lemma1/theorem2 only put gamma in the discount leaf, so they vmap over it.
    batch = jax.vmap(lambda g: games.theorem2_game(g, chain_length=2).game)(jnp.array([0.5, 0.9]))
    assert batch.transition.shape == (2, 5, 3, 3, 5)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: games.lemma1_game(off_path="teleport"), "off_path"),
        (lambda: games.lemma1_game(1.0), "discount"),
        (lambda: games.theorem2_game(chain_length=0), "chain_length"),
        (lambda: games.theorem2_game(chain_length=2.0), "chain_length"),
        (lambda: games.theorem2_game(-0.5), "discount"),
        (lambda: games.theorem2_game(chain_length=10**6), "max_bytes"),
        (lambda: games.lemma2_game(0.0, 0.9), "epsilon"),
        (lambda: games.lemma2_game(0.05, 0.0), "discount"),
        (lambda: games.lemma2_game(0.05, 1.0), "discount"),
        (lambda: games.lemma2_game(0.05, 0.9, exp_state="loop"), "exp_state"),
        (lambda: games.lemma2_game(1e-6, 0.9, max_bytes=10_000), "max_bytes"),
        (lambda: jax.jit(lambda g: games.lemma2_game(0.05, g).game)(0.9), "concrete"),
    ],
)
def test_bad_parameters_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()
