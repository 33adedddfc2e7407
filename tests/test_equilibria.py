"""Equilibrium solvers and their certificates (jaxmail/equilibria/).

Games are built here with NumPy (seeded) and ``jm.MarkovGame``; the independent oracle for
zero-sum games is a NumPy Shapley operator that solves every state's matrix game with
``scipy.optimize.linprog``. Tolerances are float32 ones (the default dtype): values are of size
``max|R| / (1 - gamma)`` and carry relative rounding errors of a few ``1e-7`` per operation, so
the certificates are compared with ``TOL = 1e-3`` of a value scale of 10 (gamma = 0.9), or with
bounds derived next to each assertion.

To stay fast, tests share shapes so that each jitted solver compiles once or twice.
"""

import itertools

import helpers as h
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference as ref
from scipy.optimize import linprog

import jaxmail as jm
from jaxmail import equilibria as eq

GAMMA = 0.9
TOL = 1e-3  # certificate tolerance in float32 (value scale up to 1/(1-gamma) = 10)


# ----------------------------------------------------------------------------------------------
# Games.
# ----------------------------------------------------------------------------------------------


def matrix_game(payoffs, discount=GAMMA):
    """One state with a self-loop; ``payoffs`` is ``[n, A_1, ..., A_n]``."""
    payoffs = np.asarray(payoffs, dtype=np.float64)
    actions = payoffs.shape[1:]
    return jm.MarkovGame(
        transition=np.ones((1, *actions, 1)),
        reward=payoffs[:, None],
        initial=np.ones(1),
        discount=discount,
    )


PENNIES = np.array([[1.0, -1.0], [-1.0, 1.0]])
RPS = np.array([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]])


def random_arrays(seed, num_states, num_actions, *, zero_sum=False, discount=GAMMA):
    """Dirichlet(1) transition rows, U[-1, 1] rewards (``R[1] = -R[0]`` if zero-sum)."""
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(num_states), size=(num_states, *num_actions))
    R = rng.uniform(-1.0, 1.0, size=(len(num_actions), num_states, *num_actions))
    if zero_sum:
        R[1] = -R[0]
    mu0 = rng.dirichlet(np.ones(num_states))
    return P, R, mu0, discount


def random_game(seed, num_states, num_actions, **kwargs):
    P, R, mu0, gamma = random_arrays(seed, num_states, num_actions, **kwargs)
    return jm.MarkovGame(transition=P, reward=R, initial=mu0, discount=gamma)


def stack_games(games):
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *games)


def index_game(batch, b):
    return jax.tree_util.tree_map(lambda x: x[b], batch)


ZS_SHAPE = (3, (3, 2))  # states, actions of the random zero-sum games
ZS_SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def zero_sum_batch():
    return stack_games([random_game(s, *ZS_SHAPE, zero_sum=True) for s in ZS_SEEDS])


# ----------------------------------------------------------------------------------------------
# NumPy oracle: exact LPs for matrix games and Shapley's operator.
# ----------------------------------------------------------------------------------------------


def lp_matrix_game(M):
    """``(value, x)`` of the zero-sum matrix game ``M`` (row maximises), by linprog."""
    m, k = M.shape
    c = np.zeros(m + 1)
    c[-1] = -1.0  # maximise v
    A_ub = np.hstack([-M.T, np.ones((k, 1))])  # v <= x^T M[:, j] for every column j
    A_eq = np.hstack([np.ones((1, m)), np.zeros((1, 1))])
    res = linprog(
        c,
        A_ub=A_ub,
        b_ub=np.zeros(k),
        A_eq=A_eq,
        b_eq=[1.0],
        bounds=[(0, None)] * m + [(None, None)],
        method="highs",
    )
    assert res.status == 0
    return -res.fun, res.x[:m]


def shapley_residual(P, R0, gamma, v):
    """``||T v - v||_inf`` for Shapley's operator ``(T v)(s) = val[R0(s) + gamma P(s) v]``.

    ``T`` is a gamma-contraction, so ``||v - V*||_inf <= ||T v - v||_inf / (1 - gamma)``.
    """
    q = R0 + gamma * np.tensordot(P, np.asarray(v, np.float64), axes=1)
    tv = np.array([lp_matrix_game(q[s])[0] for s in range(P.shape[0])])
    return np.max(np.abs(tv - v))


# The solvers jit their loops and their certificates separately (shared between solvers of one
# game shape); tests call them as users do.

QRE_TOL = 1e-4  # soft Bellman residual; the regularised NashGap is <= QRE_TOL / (1 - gamma)


def minimax(game):
    return eq.minimax_value_iteration(game)


def soft_nash(game, tau):
    return eq.soft_nash_value_iteration(game, temperature=tau)


def qre(game, tau):
    return eq.logit_qre(game, temperature=tau, tol=QRE_TOL)


# ----------------------------------------------------------------------------------------------
# The per-state matrix-game solver.
# ----------------------------------------------------------------------------------------------


def test_solve_matrix_game_matches_linprog():
    rng = np.random.default_rng(0)
    mats = [rng.uniform(-1, 1, (4, 3)) for _ in range(8)]
    mats += [rng.integers(-1, 2, (4, 3)).astype(float) for _ in range(8)]  # degenerate ties
    mats += [
        np.zeros((4, 3)),
        np.tile([[1.0, 0.0, 2.0]], (4, 1)),
        np.tile([[1.0], [3.0], [0.0], [3.0]], (1, 3)),
    ]
    batch = jnp.asarray(np.stack(mats), jnp.float32)
    x, y, ok = jax.jit(jax.vmap(eq.solve_matrix_game))(batch)
    assert bool(jnp.all(ok))
    for b, M in enumerate(mats):
        value, _ = lp_matrix_game(M)
        xb, yb = np.asarray(x[b], np.float64), np.asarray(y[b], np.float64)
        np.testing.assert_allclose([xb.sum(), yb.sum()], 1.0, atol=1e-6)
        assert xb.min() >= 0 and yb.min() >= 0
        # x guarantees at least the value, y concedes at most the value (float32 rounding).
        assert (xb @ M).min() >= value - 1e-5
        assert (M @ yb).max() <= value + 1e-5


# ----------------------------------------------------------------------------------------------
# Minimax value iteration.
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payoff", [PENNIES, pytest.param(RPS, marks=pytest.mark.slow)], ids=["pennies", "rps"]
)
def test_minimax_matrix_games_uniform(payoff):
    game = matrix_game([payoff, -payoff])
    res = minimax(game)
    a = payoff.shape[0]
    for p in res.policy:
        np.testing.assert_allclose(p, np.full((1, a), 1.0 / a), atol=1e-6)
    assert bool(res.converged)
    assert abs(float(res.nash_gap.nash_gap)) < 1e-5
    np.testing.assert_allclose(res.values, 0.0, atol=1e-5)  # symmetric games have value 0
    assert res.soft_nash_gap is None


def test_minimax_random_zero_sum_matches_shapley_lp(zero_sum_batch):
    res = jax.vmap(minimax)(zero_sum_batch)
    assert bool(jnp.all(res.converged))
    assert bool(jnp.all(res.status == eq.CONVERGED))
    # The a-priori bound 4 gamma delta / (1-gamma)^2 is ~0.03 at the default tol; the exact
    # certificate is far smaller.
    assert float(jnp.max(res.nash_gap.nash_gap)) < TOL
    assert float(jnp.min(res.nash_gap.gains)) > -TOL
    for b, seed in enumerate(ZS_SEEDS):
        P, R, mu0, gamma = random_arrays(seed, *ZS_SHAPE, zero_sum=True)
        v = np.asarray(res.values[b, 0], np.float64)
        # Independent check with exact LPs: v is within TOL of the game value V*.
        assert shapley_residual(P, R[0], gamma, v) <= TOL * (1 - gamma)
        # The policy's own value at mu0 is the game value (it is an equilibrium).
        np.testing.assert_allclose(res.nash_gap.policy_values[b], [mu0 @ v, -mu0 @ v], atol=2 * TOL)
        # vmap over games == a loop over games.
        one = minimax(index_game(zero_sum_batch, b))
        for p, q in zip(one.policy, res.policy):
            np.testing.assert_allclose(p, q[b], atol=1e-6)
        assert int(one.iterations) == int(res.iterations[b])


# ----------------------------------------------------------------------------------------------
# Soft Nash value iteration.
# ----------------------------------------------------------------------------------------------

TEMPERATURES = jnp.asarray([1.0, 0.1, 0.01])


def test_soft_nash_regularised_gap_zero_and_unregularised_gap_shrinks(zero_sum_batch):
    # One game at three temperatures, batched like the three games of the minimax test (so
    # the two share compiled certificate programs).
    games = stack_games([index_game(zero_sum_batch, 0)] * len(TEMPERATURES))
    res = jax.vmap(soft_nash)(games, TEMPERATURES)
    assert bool(jnp.all(res.converged))
    # Regularised game: an equilibrium, so every regularised gain is ~0.
    assert float(jnp.max(jnp.abs(res.soft_nash_gap.gains))) < TOL
    assert bool(jnp.all(res.soft_nash_gap.converged))
    # Unregularised game: gain_i <= gain_i^tau + tau (log A_1 + log A_2) / (1 - gamma), since
    # the entropy terms of both players lie in [0, log A_i] at every step.
    a1, a2 = ZS_SHAPE[1]
    bound = res.soft_nash_gap.nash_gap + TEMPERATURES * np.log(a1 * a2) / (1 - GAMMA) + TOL
    assert bool(jnp.all(res.nash_gap.nash_gap <= bound))
    gaps = np.asarray(res.nash_gap.nash_gap)
    assert np.all(np.diff(gaps) < 0), gaps  # shrinks with the temperature
    # vmap over temperatures == a loop (no recompilation: the temperature is an array leaf).
    for t, tau in enumerate(TEMPERATURES):
        game_t = index_game(games, t)
        with h.count_compilations() as compiled:
            one = soft_nash(game_t, tau)
        if t:  # after the first call, a new temperature compiles nothing
            assert compiled[0] == 0, compiled
        for p, q in zip(one.policy, res.policy):
            np.testing.assert_allclose(p, q[t], atol=1e-5)
        assert int(one.iterations) == int(res.iterations[t])


def test_soft_nash_equals_logit_qre_when_transitions_ignore_actions():
    """With action-independent transitions the two conventions agree: each state is an
    independent regularised matrix game (the opponent's entropy term and the continuation
    value do not depend on the player's action), so soft Nash VI == logit QRE."""
    P, R, mu0, gamma = random_arrays(5, *ZS_SHAPE, zero_sum=True)
    P = np.broadcast_to(P[:, :1, :1], P.shape)  # row of joint action (0, 0) everywhere
    game = jm.MarkovGame(transition=P, reward=R, initial=mu0, discount=gamma)
    tau = jnp.asarray(0.3)
    a = soft_nash(game, tau)
    b = qre(game, tau)
    assert bool(a.converged) and bool(b.converged)
    # Both are regularised equilibria, each in its own convention ...
    assert abs(float(a.soft_nash_gap.nash_gap)) < TOL
    assert abs(float(b.soft_nash_gap.nash_gap)) < TOL
    # ... and in the other one: the soft Nash VI policy is a QRE in the "own" convention.
    cross = eq.soft_nash_gap(game, a.policy, temperature=tau)
    assert abs(float(cross.nash_gap)) < TOL
    # Value tolerances ~1e-4 pin the policies down to ~sqrt(2 * 1e-4 / tau) ~ 0.03 (the
    # regularised game is tau-strongly monotone); they agree well within that.
    for p, q in zip(a.policy, b.policy):
        np.testing.assert_allclose(p, q, atol=0.03)
    assert float(a.nash_gap.nash_gap) > 10 * TOL  # not a Nash equilibrium of the real game
    # The plain (non-extrapolated) mirror-descent step finds the same QRE here.
    c = eq.logit_qre(game, temperature=tau, method="mirror_descent", tol=QRE_TOL)
    assert bool(c.converged)
    assert abs(float(c.soft_nash_gap.nash_gap)) < TOL
    for p, q in zip(b.policy, c.policy):
        np.testing.assert_allclose(p, q, atol=0.03)


# ----------------------------------------------------------------------------------------------
# Logit QRE (general-sum).
# ----------------------------------------------------------------------------------------------


def test_logit_qre_general_sum_three_players():
    game = random_game(10, 3, (2, 3, 2))
    gaps = []
    for k, tau in enumerate((1.0, 0.1)):  # a loop: vmap over temperatures is tested on soft NVI
        tau = jnp.asarray(tau)
        with h.count_compilations() as compiled:
            res = qre(game, tau)
        assert k == 0 or compiled[0] == 0, compiled  # the temperature is an array leaf
        assert bool(res.converged), res.residual
        assert float(res.residual) <= QRE_TOL
        # Residual <= QRE_TOL implies a regularised NashGap <= QRE_TOL / (1 - gamma) = 1e-3.
        assert float(jnp.max(jnp.abs(res.soft_nash_gap.gains))) < QRE_TOL / (1 - GAMMA) + 1e-4
        assert bool(jnp.all(res.soft_nash_gap.converged))
        gaps.append(float(res.nash_gap.nash_gap))
    # A lower temperature brings the QRE closer to a Nash equilibrium of the real game.
    assert gaps[1] < gaps[0]


# ----------------------------------------------------------------------------------------------
# Fictitious play.
# ----------------------------------------------------------------------------------------------

PRISONERS = np.array([[[3.0, 0.0], [5.0, 1.0]], [[3.0, 5.0], [0.0, 1.0]]])  # action 1 = defect
COORDINATION = np.array([[[2.0, 0.0], [0.0, 1.0]], [[2.0, 0.0], [0.0, 1.0]]])


@pytest.mark.parametrize(
    "payoffs,pure", [(PRISONERS, 1), (COORDINATION, 0)], ids=["prisoners", "coordination"]
)
def test_fictitious_play_reaches_pure_equilibrium(payoffs, pure):
    res = eq.fictitious_play(matrix_game(payoffs), iterations=1000)
    t = int(res.iterations)
    assert t == 1000
    assert not bool(res.converged)  # O(1/t): no numerical zero after 1000 steps, and it says so
    assert int(res.status) == eq.CAP_REACHED
    # Best responses are the pure equilibrium from the first step on, so the average is
    # (uniform + t * pure) / (t + 1): the gap is at most the payoff range / ((t+1)(1-gamma)).
    bound = np.ptp(payoffs) / ((t + 1) * (1 - GAMMA))
    assert 0 <= float(res.nash_gap.nash_gap) <= bound
    np.testing.assert_allclose(res.residual, res.nash_gap.nash_gap, atol=1e-5)
    for p in res.policy:
        np.testing.assert_allclose(p[0, pure], 1 - 0.5 / (t + 1), atol=1e-5)


# ----------------------------------------------------------------------------------------------
# Dominant strategies.
# ----------------------------------------------------------------------------------------------


def np_gain(game, policy, player):
    """Player ``player``'s best-response gain by the NumPy oracle (float64)."""
    P, R, mu0, gamma = (np.asarray(x, np.float64) for x in jax.tree_util.tree_leaves(game))
    policy = tuple(np.asarray(p, np.float64) for p in policy)
    best = ref.best_response_values(P, R, float(gamma), policy, player)
    return mu0 @ best - mu0 @ ref.values(P, R, float(gamma), policy)[player]


def dominant_strategy_game(seed, num_states=3, num_actions=(2, 3)):
    """``r_i = (u_i(s, a_i) + w_i(s, a_-i)) / 2`` and action-independent transitions."""
    rng = np.random.default_rng(seed)
    S = num_states
    nxt = rng.dirichlet(np.ones(S), size=S)
    P = np.broadcast_to(nxt[:, None, None, :], (S, *num_actions, S))
    u0, w0 = rng.uniform(-1, 1, (S, num_actions[0])), rng.uniform(-1, 1, (S, num_actions[1]))
    u1, w1 = rng.uniform(-1, 1, (S, num_actions[1])), rng.uniform(-1, 1, (S, num_actions[0]))
    R = np.stack([u0[:, :, None] + w0[:, None, :], u1[:, None, :] + w1[:, :, None]]) / 2
    game = jm.MarkovGame(transition=P, reward=R, initial=np.ones(S) / S, discount=GAMMA)
    return game, (np.argmax(u0, axis=1), np.argmax(u1, axis=1))


def test_dominance_violation_zero_for_dominant_expert():
    game, actions = dominant_strategy_game(0)
    expert = jm.deterministic_policy(game, actions)
    viol = eq.dominance_violation(game, expert)
    assert viol.shape == (2,)
    assert float(jnp.max(jnp.abs(viol))) < 1e-5


def test_dominance_violation_positive_and_sampled_is_lower_bound():
    game, _ = dominant_strategy_game(0)
    policy = jm.uniform_policy(game)
    exact = eq.dominance_violation(game, policy)
    assert float(jnp.min(exact)) > 0.1
    # Action-independent transitions: the gain is a sum of per-state gains, each convex in the
    # opponent's mixed action, so the deterministic enumeration is the exact maximum and random
    # (Dirichlet or deterministic) opponents cannot exceed it.
    # (An "rbg" key only because it compiles several times faster than threefry on a CPU.)
    key = jax.random.key(0, impl="rbg")
    sampled = eq.dominance_violation(
        game, policy, player=1, method="sampled", key=key, num_samples=64
    )
    assert sampled.shape == ()
    assert float(sampled) <= float(exact[1]) + 1e-5
    assert float(sampled) > 0.5 * float(exact[1])
    # Player 0's violation is the largest gain over the 3^3 deterministic opponents (NumPy).
    gains = [
        np_gain(game, (policy[0], np.eye(3)[list(c)]), 0)
        for c in itertools.product(range(3), repeat=3)
    ]
    np.testing.assert_allclose(max(gains), exact[0], atol=1e-5)


def test_dominance_exact_is_only_a_lower_bound_when_transitions_depend_on_actions():
    """Deterministic transitions, S = 2: a STOCHASTIC opponent beats every deterministic one.

    Found by a seeded random search (and rounded): player 0's gain against the best
    deterministic opponent is 0.8, against ``pi_1 = [[0.1, 0.9], [1, 0]]`` it is 2.397.
    """
    nxt = np.array([[[0, 0], [1, 0]], [[1, 0], [0, 0]]])  # nxt[s, a_0, a_1]
    P = np.eye(2)[nxt]
    R0 = np.array([[[0.5, -0.5], [0.4, -0.1]], [[0.9, 0.7], [0.9, 0.2]]])
    game = jm.MarkovGame(
        transition=P, reward=np.stack([R0, -R0]), initial=np.array([1.0, 0.0]), discount=GAMMA
    )
    policy0 = np.array([[0.2, 0.8], [0.9, 0.1]])
    policy = (policy0, np.full((2, 2), 0.5))
    exact = eq.dominance_violation(game, policy, player=0)
    assert exact.shape == ()
    np.testing.assert_allclose(exact, 0.8, atol=1e-4)
    stochastic = np_gain(game, (policy0, np.array([[0.1, 0.9], [1.0, 0.0]])), 0)
    np.testing.assert_allclose(stochastic, 2.3969466, atol=1e-6)
    assert stochastic > float(exact) + 1.0


def test_dominance_enumeration_limit():
    game, _ = dominant_strategy_game(0)
    with pytest.raises(ValueError, match="max_enumerate"):
        eq.dominance_violation(game, jm.uniform_policy(game), max_enumerate=10)


# ----------------------------------------------------------------------------------------------
# Bad parameters.
# ----------------------------------------------------------------------------------------------


def test_bad_parameters_raise():
    zs = matrix_game([PENNIES, -PENNIES])
    gs = matrix_game(PRISONERS)
    three = random_game(0, 2, (2, 2, 2))
    with pytest.raises(ValueError, match="temperature"):
        eq.soft_nash_value_iteration(zs, temperature=0.0)
    with pytest.raises(ValueError, match="temperature"):
        eq.logit_qre(gs, temperature=-1.0)
    with pytest.raises(ValueError, match="temperature"):
        eq.soft_nash_gap(gs, jm.uniform_policy(gs), temperature=0.0)
    with pytest.raises(ValueError, match="temperature"):
        eq.soft_nash_value_iteration(zs, temperature=jnp.ones(2))  # a sweep needs vmap
    with pytest.raises(ValueError, match="not zero-sum"):
        eq.minimax_value_iteration(gs)
    with pytest.raises(ValueError, match="not zero-sum"):
        eq.soft_nash_value_iteration(gs, temperature=0.1)
    with pytest.raises(ValueError, match="2 players"):
        eq.minimax_value_iteration(three)
    with pytest.raises(ValueError, match="2 players"):
        eq.soft_nash_gap(three, jm.uniform_policy(three), temperature=1.0, zero_sum=True)
    with pytest.raises(ValueError, match="max_iters"):
        eq.minimax_value_iteration(zs, max_iters=0)
    with pytest.raises(ValueError, match="iterations"):
        eq.fictitious_play(gs, iterations=0)
    with pytest.raises(ValueError, match="iterations"):
        eq.fictitious_play(gs, iterations=2.5)
    with pytest.raises(ValueError, match="damping"):
        eq.logit_qre(gs, temperature=1.0, damping=1.5)
    with pytest.raises(ValueError, match="tol"):
        eq.minimax_value_iteration(zs, tol=-1.0)
    with pytest.raises(ValueError, match="key"):
        eq.dominance_violation(gs, jm.uniform_policy(gs), method="sampled")
    with pytest.raises(ValueError, match="method"):
        eq.dominance_violation(gs, jm.uniform_policy(gs), method="lp")
    with pytest.raises(ValueError, match="player"):
        eq.dominance_violation(gs, jm.uniform_policy(gs), player=2)


def test_the_compilation_counter_sees_a_compilation():
    """The no-recompilation checks above would pass vacuously if the counter never fired."""
    with h.count_compilations() as compiled:
        jax.jit(lambda x: x * 3.25 + 1.5)(jnp.arange(7.0))  # a program no other test builds
    assert compiled[0] >= 1
    with h.count_compilations() as again:
        jax.jit(lambda x: x * 3.25 + 1.5)(jnp.arange(7.0))  # a new lambda: compiled again
        f = jax.jit(lambda x: x - 0.75)
        f(jnp.arange(7.0))
    x = jnp.arange(7.0) + 1  # (eager ops compile too: outside the block)
    with h.count_compilations() as cached:
        f(x)  # same shape: a cache hit
    assert again[0] >= 1 and cached[0] == 0


# ----------------------------------------------------------------------------------------------
# The driver of the iterative solvers.
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "x0,cap,steps,status",
    [
        (1.0, 10, 4, eq.CONVERGED),  # 1 -> 1/2 -> 1/4 -> 1/8 -> 1/16 <= tol: 4 steps
        (1.0, 2, 2, eq.CAP_REACHED),  # stopped by the cap at 1/4 > tol
        (0.0625, 10, 0, eq.CONVERGED),  # a converged start takes no step
        (float("nan"), 10, 0, eq.STOPPED),  # NaN stops the loop (NaN > tol is false) unconverged
    ],
)
def test_driver_counts_steps_and_names_how_the_loop_ended(x0, cap, steps, status):
    from jaxmail.equilibria import _driver

    tol = 1.0 / 16.0
    seen = []

    def step(k, x):
        seen.append(k)  # traced once: the step index is an int32 array
        return x / 2.0

    def done(x):
        return ~(jnp.abs(x) > tol), jnp.abs(x) <= tol

    out = _driver.iterate(step, jnp.asarray(x0, jnp.float32), done, cap)
    assert int(out.iterations) == steps
    assert int(out.status) == status and bool(out.converged) == (status == eq.CONVERGED)
    assert eq.STATUS[int(out.status)] == ("converged", "cap reached", "stopped")[status]
    if not np.isnan(x0):
        assert float(out.state) == x0 / 2.0**steps  # exact: halving is exact in binary
    assert seen and seen[0].dtype == jnp.int32


@pytest.mark.parametrize(
    "cap,iterations,x,status", [(10, 4, 1 / 16, eq.CONVERGED), (2, 2, 1 / 4, eq.CAP_REACHED)]
)
def test_driver_counts_only_completed_iterations(cap, iterations, x, status):
    """Two steps per iteration (as extragradient): phase 0 leaves ``x`` (an extrapolation),
    phase 1 halves it and completes the iteration. From ``x = 1``: 4 iterations (8 steps) reach
    ``1/16 <= tol``; a cap of 2 iterations stops at ``1/4`` after a completed iteration."""
    from jaxmail.equilibria import _driver

    def step(k, state):
        x, phase = state
        return jnp.where(phase == 1, x / 2.0, x), 1 - phase

    def done(state):
        return ~(state[0] > 1 / 16), state[0] <= 1 / 16

    init = (jnp.asarray(1.0, jnp.float32), jnp.asarray(0, jnp.int32))
    out = _driver.iterate(step, init, done, cap, completes=lambda state: state[1] == 1)
    assert int(out.iterations) == iterations and int(out.status) == status
    assert float(out.state[0]) == x and int(out.state[1]) == 0  # ends after an update step
