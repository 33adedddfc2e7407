"""Exact joint evaluation (jaxmail/evaluation.py) against the NumPy oracle, and its properties.

Every quantity is computed by ONE jitted function per (shape, dtype) so that a shape compiles
once; seeds and discounts are array values and reuse the compiled program. Tolerances come from
``helpers.value_atol`` / ``helpers.occupancy_atol`` (derivation in tests/helpers.py): float64
``1e-9 / (1 - gamma)``, float32 ``16 eps32 (1 + gamma) / (1 - gamma)^2``.
"""

import functools

import helpers as h
import jax
import numpy as np
import pytest
import reference as ref

import jaxmail as jm

# (S, (A_1, ..., A_n)): n = 2, 3, 4 with unequal action counts, S in {1, 2, 5, 16, 64}
# (the large S for n = 2 only). Every (shape, dtype) compiles once (~1-2 s): the shapes marked
# slow add coverage without adding a new kind of check (the quick suite keeps, per dtype, the
# same checks on the shapes left in CASES64 / CASES32).
CASES64 = [
    (1, (2, 3)),
    (5, (2, 3)),
    (64, (2, 3)),
    (5, (3, 2, 2)),
    (5, (2, 2, 3, 2)),
]
SLOW64 = [(2, (3, 2)), (1, (3, 2, 2)), (2, (2, 2, 3, 2))]
CASES32 = [(64, (2, 3))]
SLOW32 = [(5, (3, 2, 2))]
SEEDS = (0, 1, 2)
GAMMAS = (0.0, 0.5, 0.9, 0.99)


def _params():
    out = []
    for dtype, cases, slow in [
        (np.float64, CASES64, False),
        (np.float64, SLOW64, True),
        (np.float32, CASES32, False),
        (np.float32, SLOW32, True),
    ]:
        name = np.dtype(dtype).name
        gammas = GAMMAS if dtype == np.float64 else (0.5, 0.9)
        for S, acts in cases:
            for seed in SEEDS:
                for gamma in gammas if seed == 0 else (0.9,):
                    out.append(
                        pytest.param(
                            dtype,
                            S,
                            acts,
                            seed,
                            gamma,
                            id=f"{name}-S{S}-A{acts}-seed{seed}-g{gamma}",
                            marks=[pytest.mark.slow] if slow else [],
                        )
                    )
    return out


PARAMS = _params()


def _everything(game, policy):
    ev = jm.evaluate(game, policy)
    return dict(
        values=jm.values(game, policy),
        expected_values=jm.expected_values(game, policy),
        evaluate=ev,
        state_occupancy=jm.state_occupancy(game, policy),
        state_action_occupancy=jm.state_action_occupancy(game, policy),
        joint_state_action_occupancy=jm.joint_state_action_occupancy(game, policy),
        q_values=jm.q_values(game, policy),
        joint_q_values=jm.joint_q_values(game, policy),
        policy_matrices=jm.policy_matrices(game, policy),
    )


_everything_jit = jax.jit(_everything)


@functools.cache
def _computed(dtype, S, acts, seed, gamma):
    """jaxmail's outputs (as float64 NumPy) and the NumPy inputs, for one parameter set."""
    P, R, mu0, policy = h.instance(seed, S, acts, gamma)
    with jax.enable_x64(dtype == np.float64):
        game = h.make_game(P, R, mu0, gamma)
        assert game.dtype == dtype
        out = _everything_jit(game, policy)
        leaves_dtype = {x.dtype for x in jax.tree_util.tree_leaves(out) if x.dtype.kind == "f"}
        assert leaves_dtype == {np.dtype(dtype)}
        out = jax.tree_util.tree_map(np.asarray, out)
    return (P, R, mu0, policy), out


@functools.cache
def _reference(S, acts, seed, gamma):
    P, R, mu0, policy = h.instance(seed, S, acts, gamma)
    return dict(
        values=ref.values(P, R, gamma, policy),
        expected_values=ref.values_at(P, R, mu0, gamma, policy),
        state_occupancy=ref.state_occupancy(P, mu0, gamma, policy),
        state_action_occupancy=ref.state_action_occupancy(P, mu0, gamma, policy),
        joint_state_action_occupancy=ref.joint_state_action_occupancy(P, mu0, gamma, policy),
        q_values=ref.q_values(P, R, gamma, policy),
        joint_q_values=ref.joint_q_values(P, R, gamma, policy),
        policy_transition=ref.policy_transition(P, policy),
        policy_reward=ref.policy_reward(R, policy),
    )


# ---------------------------------------------------------------------------------------------
# Against the reference.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype, S, acts, seed, gamma", PARAMS)
def test_values_match_reference(dtype, S, acts, seed, gamma):
    _, out = _computed(dtype, S, acts, seed, gamma)
    want = _reference(S, acts, seed, gamma)
    atol = h.value_atol(dtype, gamma)
    n = len(acts)
    assert out["values"].shape == (n, S)
    assert out["expected_values"].shape == (n,)
    np.testing.assert_allclose(out["values"], want["values"], rtol=0, atol=atol)
    np.testing.assert_allclose(out["expected_values"], want["expected_values"], rtol=0, atol=atol)
    ev = out["evaluate"]
    assert isinstance(ev, jm.Evaluation)
    np.testing.assert_allclose(ev.values, want["values"], rtol=0, atol=atol)
    np.testing.assert_allclose(ev.expected_values, want["expected_values"], rtol=0, atol=atol)
    np.testing.assert_allclose(
        ev.occupancy, want["state_occupancy"], rtol=0, atol=h.occupancy_atol(dtype, gamma)
    )
    assert ev.converged.shape == () and bool(ev.converged)


@pytest.mark.parametrize("dtype, S, acts, seed, gamma", PARAMS)
def test_occupancies_match_reference(dtype, S, acts, seed, gamma):
    _, out = _computed(dtype, S, acts, seed, gamma)
    want = _reference(S, acts, seed, gamma)
    atol = h.occupancy_atol(dtype, gamma)
    assert out["state_occupancy"].shape == (S,)
    np.testing.assert_allclose(out["state_occupancy"], want["state_occupancy"], rtol=0, atol=atol)
    assert len(out["state_action_occupancy"]) == len(acts)
    for i, (got, exp) in enumerate(
        zip(out["state_action_occupancy"], want["state_action_occupancy"], strict=True)
    ):
        assert got.shape == (S, acts[i])
        np.testing.assert_allclose(got, exp, rtol=0, atol=atol, err_msg=f"player {i}")
    joint = out["joint_state_action_occupancy"]
    assert joint.shape == (S, *acts)
    np.testing.assert_allclose(joint, want["joint_state_action_occupancy"], rtol=0, atol=atol)


@pytest.mark.parametrize("dtype, S, acts, seed, gamma", PARAMS)
def test_q_values_match_reference(dtype, S, acts, seed, gamma):
    _, out = _computed(dtype, S, acts, seed, gamma)
    want = _reference(S, acts, seed, gamma)
    atol = h.value_atol(dtype, gamma)
    assert len(out["q_values"]) == len(acts)
    for i, (got, exp) in enumerate(zip(out["q_values"], want["q_values"], strict=True)):
        assert got.shape == (S, acts[i])
        np.testing.assert_allclose(got, exp, rtol=0, atol=atol, err_msg=f"player {i}")
    assert out["joint_q_values"].shape == (len(acts), S, *acts)
    np.testing.assert_allclose(out["joint_q_values"], want["joint_q_values"], rtol=0, atol=atol)


@pytest.mark.parametrize("dtype, S, acts, seed, gamma", PARAMS)
def test_policy_matrices_match_reference(dtype, S, acts, seed, gamma):
    _, out = _computed(dtype, S, acts, seed, gamma)
    want = _reference(S, acts, seed, gamma)
    p_pi, r_pi = out["policy_matrices"]
    assert p_pi.shape == (S, S) and r_pi.shape == (len(acts), S)
    # Contractions only (no solve): a few eps of relative error in either dtype.
    atol = 1e-12 if dtype == np.float64 else 32 * h.EPS32
    np.testing.assert_allclose(p_pi, want["policy_transition"], rtol=0, atol=atol)
    np.testing.assert_allclose(r_pi, want["policy_reward"], rtol=0, atol=atol)


# ---------------------------------------------------------------------------------------------
# Properties (checked on jaxmail's own outputs, no reference involved).
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype, S, acts, seed, gamma", PARAMS)
def test_occupancy_is_a_distribution_satisfying_the_flow_equation(dtype, S, acts, seed, gamma):
    (P, R, mu0, policy), out = _computed(dtype, S, acts, seed, gamma)
    atol = h.occupancy_atol(dtype, gamma)
    d = out["state_occupancy"]
    p_pi, _ = out["policy_matrices"]
    assert (d >= -atol).all()
    np.testing.assert_allclose(d.sum(), 1.0, rtol=0, atol=atol)
    # d = (1 - gamma) mu0 + gamma P_pi^T d.
    np.testing.assert_allclose(d, (1 - gamma) * mu0 + gamma * p_pi.T @ d, rtol=0, atol=atol)
    # gamma = 0: the occupancy is the initial distribution.
    if gamma == 0.0:
        np.testing.assert_allclose(d, mu0, rtol=0, atol=atol)
    # Per-player measures marginalise the joint one, and all of them sum to 1.
    joint = out["joint_state_action_occupancy"]
    n = len(acts)
    np.testing.assert_allclose(joint.reshape(S, -1).sum(-1), d, rtol=0, atol=atol)
    for i, rho in enumerate(out["state_action_occupancy"]):
        others = tuple(1 + j for j in range(n) if j != i)
        np.testing.assert_allclose(joint.sum(axis=others), rho, rtol=0, atol=atol)
        np.testing.assert_allclose(rho.sum(-1), d, rtol=0, atol=atol)
        assert (rho >= -atol).all()


@pytest.mark.parametrize("dtype, S, acts, seed, gamma", PARAMS)
def test_values_satisfy_bellman_and_match_q(dtype, S, acts, seed, gamma):
    (P, R, mu0, policy), out = _computed(dtype, S, acts, seed, gamma)
    atol = h.value_atol(dtype, gamma)
    V = out["values"]
    p_pi, r_pi = out["policy_matrices"]
    # V_i = r_pi,i + gamma P_pi V_i, all players at once.
    np.testing.assert_allclose(V, r_pi + gamma * V @ p_pi.T, rtol=0, atol=atol)
    # |V| <= max|R| / (1 - gamma) = 1 / (1 - gamma).
    assert np.abs(V).max() <= 1.0 / (1.0 - gamma) + atol
    np.testing.assert_allclose(out["expected_values"], V @ mu0, rtol=0, atol=atol)
    # V_i(mu0) = r_pi,i . d / (1 - gamma): values and occupancy agree with each other.
    d = out["state_occupancy"]
    np.testing.assert_allclose(
        out["expected_values"],
        r_pi @ d / (1 - gamma),
        rtol=0,
        atol=atol + h.occupancy_atol(dtype, gamma) / (1 - gamma),
    )
    # V_i(s) = sum_{a_i} pi_i(a_i|s) Q_i(s, a_i) = sum_a pi(a|s) Q_i(s, a).
    jp = ref.joint_policy(policy)
    for i, q in enumerate(out["q_values"]):
        np.testing.assert_allclose((policy[i] * q).sum(-1), V[i], rtol=0, atol=atol)
        qj = out["joint_q_values"][i]
        np.testing.assert_allclose((jp * qj).reshape(S, -1).sum(-1), V[i], rtol=0, atol=atol)


# ---------------------------------------------------------------------------------------------
# Relabelling states or players permutes the outputs.
# ---------------------------------------------------------------------------------------------

_values_and_occupancy = jax.jit(lambda g, p: (jm.values(g, p), jm.state_occupancy(g, p)))


@pytest.mark.parametrize(
    "S, acts, perm",
    [(5, (2, 3), (3, 0, 4, 1, 2)), (5, (3, 2, 2), (4, 3, 2, 1, 0))],
)
def test_relabelling_states_permutes_values_and_occupancy(x64, S, acts, perm):
    gamma = 0.9
    P, R, mu0, policy = h.instance(11, S, acts, gamma)
    V, d = _values_and_occupancy(h.make_game(P, R, mu0, gamma), policy)
    P2, R2, mu02, policy2 = h.permute_states(P, R, mu0, policy, perm)
    V2, d2 = _values_and_occupancy(h.make_game(P2, R2, mu02, gamma), policy2)
    atol = h.value_atol(np.float64, gamma)
    # New state j is old state perm[j].
    np.testing.assert_allclose(V2, np.asarray(V)[:, perm], rtol=0, atol=atol)
    np.testing.assert_allclose(d2, np.asarray(d)[list(perm)], rtol=0, atol=1e-9)
    # The permutation is not the identity on these outputs (the test can fail).
    assert np.abs(np.asarray(V)[:, perm] - np.asarray(V)).max() > 1e-3


@pytest.mark.parametrize(
    "S, acts, perm",
    [
        (5, (2, 3), (1, 0)),
        (5, (3, 2, 2), (2, 0, 1)),
        pytest.param(2, (2, 2, 3, 2), (3, 2, 0, 1), marks=pytest.mark.slow),
    ],
)
def test_relabelling_players_permutes_values(x64, S, acts, perm):
    gamma = 0.9
    P, R, mu0, policy = h.instance(12, S, acts, gamma)
    V, d = _values_and_occupancy(h.make_game(P, R, mu0, gamma), policy)
    P2, R2, policy2 = h.permute_players(P, R, policy, perm)
    game2 = h.make_game(P2, R2, mu0, gamma)
    assert game2.num_actions == tuple(acts[p] for p in perm)
    V2, d2 = _values_and_occupancy(game2, policy2)
    # New player k is old player perm[k]; the state process (and so d) is unchanged.
    np.testing.assert_allclose(V2, np.asarray(V)[list(perm)], rtol=0, atol=1e-9 / (1 - gamma))
    np.testing.assert_allclose(d2, d, rtol=0, atol=1e-9)


# ---------------------------------------------------------------------------------------------
# Solvers: "iterative" against "lu".
# ---------------------------------------------------------------------------------------------


_lu = jax.jit(functools.partial(jm.evaluate, solver="lu"))
_iterative_2_steps = jax.jit(functools.partial(jm.evaluate, solver="iterative", max_iters=2))


@jax.jit
def _both_solvers(game, policy):
    return (
        jm.evaluate(game, policy),
        jm.evaluate(game, policy, solver="iterative"),
        jm.values(game, policy, solver="iterative"),
        jm.state_occupancy(game, policy, solver="iterative"),
    )


@pytest.mark.parametrize(
    "dtype, S, acts",
    [(np.float64, 5, (2, 3)), (np.float32, 64, (2, 3))],
)
@pytest.mark.parametrize("gamma", [0.5, 0.9, 0.99])
def test_iterative_solver_matches_lu(dtype, S, acts, gamma):
    P, R, mu0, policy = h.instance(3, S, acts, gamma)
    with jax.enable_x64(dtype == np.float64):
        game = h.make_game(P, R, mu0, gamma)
        lu, it, v_it, d_it = _both_solvers(game, policy)
    v_it, d_it = np.asarray(v_it, np.float64), np.asarray(d_it, np.float64)
    assert bool(lu.converged) and bool(it.converged)
    eps = float(np.finfo(dtype).eps)
    A = np.eye(S) - gamma * ref.policy_transition(P, policy)
    r_pi = ref.policy_reward(R, policy)
    # The documented stopping rule (evaluate's docstring, default tol = 4 eps / (1 - gamma)):
    # the last increment (the residual of the previous iterate) is at most
    # tol (1 - gamma) (||x|| + ||b||) = 4 eps (||x|| + ||b||), and the returned iterate's
    # residual is gamma M times that. For the values ||b|| <= a_i = max|r_pi,i| <= 1 (rewards in
    # [-1, 1] are not centred: evaluation.reward_offsets) and ||x|| <= a_i / (1 - gamma); the
    # occupancy solve is measured in the 1-norm, ||d||_1 = 1, ||b||_1 = 1 - gamma. Checked in
    # float64 on the exact A; rounding P, R, pi to `dtype` moves the residual by at most a few
    # eps (1 + gamma) ||x||.
    a = np.abs(r_pi).max(axis=1)
    x_scale = a / (1 - gamma) + a  # [n]
    res_v = 4 * eps * x_scale + 8 * eps * (1 + gamma) / (1 - gamma)
    for v in (np.asarray(it.values, np.float64), v_it):
        assert np.all(np.abs(A @ v.T - r_pi.T).max(axis=0) <= res_v)
    for d in (np.asarray(it.occupancy, np.float64), d_it):
        residual = np.abs(A.T @ d - (1 - gamma) * mu0).sum()
        assert residual <= 4 * eps * (2 - gamma) + 8 * eps * (1 + gamma) * S
    # Hence against LU (||A^-1||_inf = ||A^-T||_1 <= 1 / (1 - gamma)): errors of at most
    # tol (||x|| + ||b||), plus LU's own error (helpers.value_atol / occupancy_atol).
    tol = 4 * eps / (1 - gamma)
    v_atol = tol * x_scale.max() + h.value_atol(dtype, gamma)
    np.testing.assert_allclose(it.values, lu.values, rtol=0, atol=v_atol)
    np.testing.assert_allclose(v_it, lu.values, rtol=0, atol=v_atol)
    np.testing.assert_allclose(it.expected_values, lu.expected_values, rtol=0, atol=v_atol)
    d_atol = tol * (2 - gamma) + h.occupancy_atol(dtype, gamma)
    for d in (np.asarray(it.occupancy, np.float64), d_it):
        assert np.abs(d - np.asarray(lu.occupancy, np.float64)).sum() <= d_atol
    if dtype == np.float64:  # and tightly in float64
        np.testing.assert_allclose(it.values, lu.values, rtol=0, atol=h.value_atol(dtype, gamma))
        np.testing.assert_allclose(it.occupancy, lu.occupancy, rtol=0, atol=1e-9)


def test_iterative_solver_reports_non_convergence(x64):
    gamma = 0.9
    P, R, mu0, policy = h.instance(4, 5, (2, 3), gamma)
    game = h.make_game(P, R, mu0, gamma)
    # Two fixed-point steps from x = b leave a residual of order gamma^2 |r|, far above the
    # tolerance: not converged, and the values are visibly off.
    it = _iterative_2_steps(game, policy)
    assert it.converged.shape == () and not bool(it.converged)
    lu = _lu(game, policy)
    assert np.abs(np.asarray(it.values) - np.asarray(lu.values)).max() > 1e-3


def test_iterative_solver_honours_a_loose_tolerance(x64):
    gamma = 0.9
    P, R, mu0, policy = h.instance(5, 5, (2, 3), gamma)
    game = h.make_game(P, R, mu0, gamma)
    tol = 1e-3  # relative: the error is at most tol (||x|| + ||b||)
    it = jax.jit(functools.partial(jm.evaluate, solver="iterative", tol=tol))(game, policy)
    lu = _lu(game, policy)
    assert bool(it.converged)
    # ||x|| + ||b|| <= max|r| / (1 - gamma) + max|r| <= 11, so the error is at most 11 tol.
    err = np.abs(np.asarray(it.values) - np.asarray(lu.values)).max()
    assert err <= tol * (1 / (1 - gamma) + 1)
    # ... and the loose tolerance was actually used (the answer is not the exact one).
    assert err > 1e-9
