"""Convergence flags that say the truth, and precision kept under large reward offsets.

* The iterative solver's stopping rule is relative (jaxmail/_linalg.py ``solve``): it stops when
  ``||b - A x_prev|| <= tol (1 - gamma) (||x|| + ||b||)`` (inf-norm for values, 1-norm for the
  occupancy), so that ``converged`` bounds the error by ``tol (||x|| + ||b||)`` whatever the
  scale of ``b`` and the discount; default ``tol = 4 eps / (1 - gamma)``.
* The shorthands that take ``solver=`` and return bare arrays give NaN when the solve did not
  converge.
* Rewards are centred per player before the solves; gains are unchanged by a constant.
* ``farthest_best_response`` checks the shape of ``reference``.

Reference answers are float64 solves (``numpy.linalg.solve``) of the same (float32-rounded) game.
"""

import functools

import helpers as h
import jax
import numpy as np
import pytest
import reference as ref

import jaxmail as jm

EPS32 = float(np.finfo(np.float32).eps)


def _float32_instance(seed, S, acts, gamma, offset=0.0):
    """A random game in float32 and the same game, rounded once, as float64 NumPy arrays."""
    rng = np.random.default_rng(seed)
    P, R, mu0 = ref.random_game(rng, S, acts, gamma)
    policy = ref.random_policy(rng, S, acts)
    P32, R32, mu32 = (np.float32(x) for x in (P, R + offset, mu0))
    pi32 = tuple(np.float32(p) for p in policy)
    game = jm.MarkovGame(transition=P32, reward=R32, initial=mu32, discount=np.float32(gamma))
    # The exact problem the float32 kernels are given: the rounded arrays, and gamma as float32.
    exact = tuple(np.float64(x) for x in (P32, R32, mu32, np.float32(gamma)))
    return game, pi32, exact, tuple(np.float64(p) for p in pi32)


def _exact_evaluation(P, R, mu0, gamma, policy):
    S = P.shape[0]
    A = np.eye(S) - gamma * ref.policy_transition(P, policy)
    v = np.linalg.solve(A, ref.policy_reward(R, policy).T).T
    d = np.linalg.solve(A.T, (1 - gamma) * mu0)
    return v, d


def _centred(R):
    """``(R - c, c [n])``, ``c_i`` the midrange of ``R_i`` (float64; exact by Sterbenz)."""
    c = (R.max(axis=tuple(range(1, R.ndim))) + R.min(axis=tuple(range(1, R.ndim)))) / 2
    return R - c.reshape((-1,) + (1,) * (R.ndim - 1)), c


# ---------------------------------------------------------------------------------------------
# Item 6: the iterative solver at a discount near 1.
# ---------------------------------------------------------------------------------------------

GAMMA_NEAR_1 = 0.9999
_iterative = jax.jit(functools.partial(jm.evaluate, solver="iterative"))


@jax.jit
def _shorthands(game, policy):
    return (
        jm.state_occupancy(game, policy, solver="iterative"),
        jm.values(game, policy, solver="iterative"),
    )


def test_iterative_occupancy_near_gamma_1_is_right_when_it_says_converged():
    # The reported case: float32, gamma = 0.9999, S = 16, 3x3 actions, uniform policy. The old
    # absolute tolerance (64 eps = 7.6e-6) exceeded the right-hand side (1 - gamma) mu0 (entries
    # ~6e-6), so one step "converged" with an occupancy summing to 0.0003.
    game, _, (P, R, mu0, gamma), _ = _float32_instance(0, 16, (3, 3), GAMMA_NEAR_1)
    uniform = jm.uniform_policy(game)
    ev = _iterative(game, uniform)
    assert bool(ev.converged)
    v_ref, d_ref = _exact_evaluation(P, R, mu0, gamma, h.as_numpy(uniform))
    tol = 4 * EPS32 / (1 - gamma)  # the default relative tolerance
    # Converged promises ||d - d*||_1 <= tol (||d||_1 + ||b||_1) = tol (1 + (1 - gamma)) in
    # exact arithmetic; the float32 iteration adds at most ~eps per step, damped by gamma:
    # eps / (1 - gamma) more. Together 5 eps / (1 - gamma) = 6e-3 (measured: 4.3e-3; old: 0.9997).
    d = np.float64(ev.occupancy)
    d_atol = tol * (2 - gamma) + EPS32 / (1 - gamma)
    assert abs(d.sum() - 1) <= d_atol
    assert np.abs(d - d_ref).sum() <= d_atol
    # Values: converged bounds the error of player i by tol (||x|| + ||b||) <= tol a_i (1 / (1 -
    # gamma) + 1), a_i = max|r_pi,i| (or the half-spread if the rewards were centred: smaller),
    # plus the float32 iteration's rounding, eps ||x|| / (1 - gamma) <= eps a_i / (1 - gamma)^2.
    # With a_i <= 1 that is at most ~60 (measured: 2.9; the old rule stopped with an error of 763).
    v = np.float64(ev.values)
    a = np.abs(ref.policy_reward(R, h.as_numpy(uniform))).max(axis=1)
    bound = tol * a * (1 / (1 - gamma) + 1) + EPS32 * a / (1 - gamma) ** 2
    assert np.all(np.abs(v - v_ref).max(axis=1) <= bound)


def test_non_convergence_is_flagged_by_evaluate_and_by_nan_in_the_shorthands():
    # gamma = 0.99999: the default rule needs gamma^k <~ 4 eps / (1 - gamma) ~ 0.05, i.e.
    # k ~ 3e5 steps, more than the cap of 1e5: evaluate must say so, and the shorthands must not
    # return the truncated iterate (the old code's occupancy summed to 3e-5) as if it converged.
    game, _, _, _ = _float32_instance(0, 16, (3, 3), 0.99999)
    uniform = jm.uniform_policy(game)
    assert not bool(_iterative(game, uniform).converged)
    d, v = _shorthands(game, uniform)
    assert np.isnan(np.asarray(d)).all()
    assert np.isnan(np.asarray(v)).all()
    # ... while a converging case gives the same numbers as evaluate (same shapes: no compile).
    game = game.replace(discount=np.float32(0.9))
    d, v = _shorthands(game, uniform)
    ev = _iterative(game, uniform)
    assert bool(ev.converged)
    np.testing.assert_array_equal(d, ev.occupancy)
    np.testing.assert_array_equal(v, ev.values)


# ---------------------------------------------------------------------------------------------
# Item 7: a large reward offset in float32.
# ---------------------------------------------------------------------------------------------


def test_nash_gap_keeps_float32_precision_under_a_large_reward_offset():
    gamma, offset = 0.99, 1e6
    game, pi32, (P, R, mu0, g64), pi64 = _float32_instance(2, 4, (2, 3), gamma, offset)
    gap = jm.nash_gap(game, pi32)
    # Float64 reference on the same rounded game with centred rewards. Gains do not depend on
    # a per-player constant; values move by exactly c_i / (1 - gamma) when P is stochastic,
    # which the model assumes (rounding P to float32 leaves row sums 1 +- 1e-7, which the
    # constant 1e6 would turn into value changes of ~50 that no game has: the reference is the
    # stochastic-P answer). The reference's own value iteration cannot resolve values of 1e8.
    Rc, c = _centred(R)
    want = ref.nash_gap(P, Rc, mu0, g64, pi64)
    assert bool(np.all(gap.converged))
    # The centred float32 computation sees rewards of size <= 1 (R + 1e6 - c is exact by
    # Sterbenz), so its error is that of an offset-free game: helpers.value_atol(float32, 0.99)
    # = 16 eps (1 + gamma) / (1 - gamma)^2 = 0.38 for each of the two values in a gain. Without
    # centring the values (1e8) round to multiples of 8 and the gap came out 72 for a true 34.
    atol = 2 * h.value_atol(np.float32, gamma)
    np.testing.assert_allclose(gap.gains, want["gains"], rtol=0, atol=atol)
    np.testing.assert_allclose(gap.nash_gap, want["nash_gap"], rtol=0, atol=atol)
    # Values are reported un-centred, V_i + c_i / (1 - gamma) ~ 1e8: float32 holds them to
    # ulp(1e8) = 8; the midrange, the division and the final sum round by at most 4 + 6 + 4.
    v_ref = ref.values_at(P, Rc, mu0, g64, pi64) + c / (1 - g64)
    np.testing.assert_allclose(gap.policy_values, v_ref, rtol=0, atol=4 * 8.0 + atol)
    np.testing.assert_allclose(
        gap.best_response_values, v_ref + want["gains"], rtol=0, atol=4 * 8.0 + atol
    )


def test_evaluate_keeps_float32_precision_under_a_large_reward_offset():
    gamma, offset = 0.99, 1e6
    game, pi32, (P, R, mu0, g64), pi64 = _float32_instance(2, 4, (2, 3), gamma, offset)
    ev = jm.evaluate(game, pi32)
    Rc, c = _centred(R)  # the stochastic-P reference, as in the test above
    v_ref, _ = _exact_evaluation(P, Rc, mu0, g64, pi64)
    # Each value: ulp(1e8) = 8 and the rounding of the shift (4 + 6 + 4, as above) plus the
    # offset-free error helpers.value_atol(float32, 0.99) = 0.38. The LU of the uncentred
    # rewards errs by up to cond(A) eps 1e8 ~ 2e3 instead.
    want = v_ref + (c / (1 - g64))[:, None]
    np.testing.assert_allclose(
        ev.values, want, rtol=0, atol=4 * 8.0 + h.value_atol(np.float32, gamma)
    )


# ---------------------------------------------------------------------------------------------
# Item 13: the shape of ``reference``.
# ---------------------------------------------------------------------------------------------


def test_farthest_best_response_checks_the_reference_shape():
    game, pi32, _, _ = _float32_instance(3, 4, (2, 3), 0.9)
    bad = np.full((4, 5), 0.2, np.float32)
    with pytest.raises(
        ValueError, match=r"reference: expected shape \[S, A_0\] = \(4, 2\).*\(4, 5\)"
    ):
        jm.farthest_best_response(game, pi32, 0, bad)
    with pytest.raises(ValueError, match=r"\(4, 3\).*got \(3, 3\)"):
        jax.jit(lambda r: jm.farthest_best_response(game, pi32, 1, r))(np.ones((3, 3)) / 3)
