"""JAX transformations: jit == eager, vmap == a Python loop, gradients, no recompilation.

Kernels are written for one game and one policy; batches come from ``jax.vmap`` outside
(docs/design.md §1). Hyper-parameters such as the discount are array leaves, so a jitted function
called again with new values (same shapes) must not retrace.
"""

import functools

import helpers as h
import jax
import jax.numpy as jnp
import numpy as np
import reference as ref
from jax.test_util import check_grads

import jaxmail as jm

S, ACTS, GAMMA = 4, (2, 3), 0.9
TRACES = []  # one entry per trace of _combo (a Python side effect runs only when tracing)


def _combo_eager(game, policy, expert):
    return dict(
        values=jm.values(game, policy),
        state_occupancy=jm.state_occupancy(game, policy),
        nash_gap=jm.nash_gap(game, policy),
        bc_error=jm.bc_error(game, policy, expert=expert),
    )


@jax.jit
def _combo(game, policy, expert):
    TRACES.append(jax.tree_util.tree_map(jnp.shape, (game, policy)))
    return _combo_eager(game, policy, expert)


def _instance(seed, gamma=GAMMA):
    P, R, mu0, policy = h.instance(seed, S, ACTS, gamma)
    expert = ref.random_policy(np.random.default_rng(500 + seed), S, ACTS)
    return h.make_game(P, R, mu0, gamma), policy, expert


def _close(a, b, atol, path=""):
    for (key, x), y in zip(
        jax.tree_util.tree_leaves_with_path(a), jax.tree_util.tree_leaves(b), strict=True
    ):
        np.testing.assert_allclose(x, y, rtol=0, atol=atol, err_msg=f"{path}{key}")


def test_jit_equals_eager(x64):
    game, policy, expert = _instance(0)
    eager = _combo_eager(game, policy, expert)
    jitted = _combo(game, policy, expert)
    # Same float64 arithmetic, possibly fused differently: rounding-level differences only.
    _close(jitted, eager, atol=1e-12 / (1 - GAMMA))
    assert bool(jitted["nash_gap"].converged.all())
    # And both are right.
    P, R, mu0 = (np.asarray(x) for x in (game.transition, game.reward, game.initial))
    np.testing.assert_allclose(eager["values"], ref.values(P, R, GAMMA, policy), atol=1e-9 * 10)
    np.testing.assert_allclose(
        eager["nash_gap"].gains, ref.nash_gap(P, R, mu0, GAMMA, policy)["gains"], atol=1e-8
    )


def _stack(trees):
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


def test_vmap_equals_a_python_loop(x64):
    # Three games with different discounts and policies, stacked leaf by leaf.
    instances = [_instance(seed, gamma) for seed, gamma in [(1, 0.5), (2, 0.9), (3, 0.99)]]
    games, policies, experts = (list(x) for x in zip(*instances, strict=True))
    batch = _stack(games)
    assert type(batch) is jm.MarkovGame and batch.discount.shape == (3,)
    out = jax.vmap(_combo)(batch, _stack(policies), _stack(experts))
    assert out["values"].shape == (3, 2, S)
    assert out["nash_gap"].gains.shape == (3, 2)
    for b, (game, policy, expert) in enumerate(instances):
        one = _combo(game, policy, expert)
        got = jax.tree_util.tree_map(lambda x, b=b: x[b], out)
        _close(got, one, atol=1e-12 / (1 - float(game.discount)), path=f"game {b}: ")
    # The batch members really differ (a broadcast of one game would fail the loop above).
    assert np.abs(out["values"][0] - out["values"][2]).max() > 0.1


# ---------------------------------------------------------------------------------------------
# Gradients (float64, finite differences against forward and reverse mode).
# ---------------------------------------------------------------------------------------------


def _with_leaf(game, **leaves):
    """The game with some leaves replaced WITHOUT validation (finite differences in the
    transition leave rows that do not sum to 1, which the kernels accept as plain matrices)."""
    fields = dict(
        transition=game.transition, reward=game.reward, initial=game.initial, discount=game.discount
    )
    fields.update(leaves)
    treedef = jax.tree_util.tree_structure(game)
    return jax.tree_util.tree_unflatten(treedef, list(fields.values()))


def _grad_setup():
    game, policy, _ = _instance(4)
    logits = tuple(jnp.log(jnp.asarray(p)) + 0.1 for p in policy)
    return game, logits


@jax.jit
def _outputs(logits, gamma, reward, transition, initial):
    """``(expected_values [n], state_occupancy [S])`` as a function of the policy logits, the
    discount, the reward and the transition."""
    game = jax.tree_util.tree_unflatten(
        jax.tree_util.tree_structure(h.matrix_game(np.zeros((1, 1)))),
        [transition, reward, initial, gamma],
    )  # built from leaves: no validation (finite differences in P break the row sums)
    policy = jm.softmax_policy(logits)
    return jm.expected_values(game, policy), jm.state_occupancy(game, policy)


def test_gradients_match_finite_differences_and_closed_forms(x64):
    game, logits = _grad_setup()
    initial = game.initial

    def f(logits, gamma, reward, transition):
        return _outputs(logits, gamma, reward, transition, initial)

    # Central finite differences (eps 1e-4, float64) against forward and reverse mode, along
    # random directions in ALL of (logits, discount, reward, transition) at once: one compiled
    # program per mode serves every argument, and a wrong partial derivative in any of them
    # changes the directional derivative.
    args = (logits, game.discount, game.reward, game.transition)
    check_grads(f, args, order=1, modes=("fwd", "rev"))

    # Then the partial derivatives one by one, in closed form (same compiled jvp/vjp).
    zeros = jax.tree_util.tree_map(jnp.zeros_like, args)
    P, R, mu0 = (np.asarray(x) for x in (game.transition, game.reward, game.initial))
    pol = h.as_numpy(jm.softmax_policy(logits))
    P_pi, V = ref.policy_transition(P, pol), ref.values(P, R, GAMMA, pol)
    d = ref.state_occupancy(P, mu0, GAMMA, pol)
    A = np.eye(S) - GAMMA * P_pi
    # Discount: dV/dgamma = A^-1 P_pi V (each player), and from d = (1 - gamma) A^-T mu0:
    # dd/dgamma = A^-T (P_pi^T d - mu0).
    tangent = (zeros[0], jnp.ones_like(game.discount), *zeros[2:])
    _, (dv, dd) = jax.jvp(f, args, tangent)
    np.testing.assert_allclose(dv, np.linalg.solve(A, P_pi @ V.T).T @ mu0, rtol=1e-9)
    np.testing.assert_allclose(dd, np.linalg.solve(A.T, P_pi.T @ d - mu0), rtol=0, atol=1e-9)
    # Reward: V_i(mu0) is linear in R_i with gradient rho(s, a) / (1 - gamma) (the joint
    # state-action occupancy) and does not depend on R_j, j != i; d does not depend on R.
    _, vjp = jax.vjp(f, *args)
    g_logits, _, g_reward, _ = vjp((jnp.array([0.0, 1.0]), jnp.zeros(S)))
    rho = ref.joint_state_action_occupancy(P, mu0, GAMMA, pol)
    np.testing.assert_allclose(g_reward[1], rho / (1 - GAMMA), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(g_reward[0], 0.0)
    _, _, g_reward_d, _ = vjp((jnp.zeros(2), jnp.ones(S)))
    np.testing.assert_array_equal(g_reward_d, 0.0)
    # Logits: d V_1(mu0) / d logits_1[s, a] = d(s) pi_1(a|s) (Q_1(s, a) - V_1(s)) / (1 - gamma)
    # (the policy gradient theorem times the softmax Jacobian); player 0's logits act on V_1
    # through player 0's policy in the same way with player 0's marginal Q of player 1's reward.
    Q1 = ref.q_values(P, R, GAMMA, pol)[1]
    want = d[:, None] * pol[1] * (Q1 - V[1][:, None]) / (1 - GAMMA)
    np.testing.assert_allclose(g_logits[1], want, rtol=0, atol=1e-9)


def test_iterative_solver_gradients_match_lu(x64):
    game, logits = _grad_setup()

    @jax.jit
    def grads(logits):
        def f(logits, solver):
            return jm.expected_values(game, jm.softmax_policy(logits), solver=solver)[0]

        return jax.grad(f)(logits, "lu"), jax.grad(f)(logits, "iterative")

    g_lu, g_it = grads(logits)
    for a, b in zip(g_lu, g_it, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)
    assert max(float(jnp.abs(a).max()) for a in g_lu) > 1e-3  # not a vacuous comparison


# ---------------------------------------------------------------------------------------------
# No recompilation for new values of the same shapes.
# ---------------------------------------------------------------------------------------------


def test_new_values_do_not_recompile(x64):
    game, policy, expert = _instance(5)
    first = _combo(game, policy, expert)
    traces, cache = len(TRACES), _combo._cache_size()
    # Other policy, other discount, other rewards, other expert: same shapes and dtypes.
    other_game, other_policy, other_expert = _instance(6, gamma=0.5)
    for g, p, e in [
        (game, other_policy, expert),
        (game.replace(discount=0.5), policy, expert),
        (game.replace(reward=-game.reward), policy, other_expert),
        (other_game, other_policy, other_expert),
    ]:
        out = _combo(g, p, e)
        assert not np.allclose(out["values"], first["values"]) or g is game
    assert len(TRACES) == traces, TRACES[traces:]
    assert _combo._cache_size() == cache
    # The counter does count: a new shape traces again (traced only, not compiled).
    bigger = h.instance(7, S + 1, ACTS)
    _combo.trace(h.make_game(*bigger[:3], GAMMA), bigger[3], bigger[3])
    assert len(TRACES) == traces + 1


def test_discount_sweep_with_vmap_compiles_once(x64):
    game, policy, _ = _instance(8)
    calls = []

    @functools.partial(jax.vmap, in_axes=(0, None))
    def sweep(gamma, policy):
        calls.append(1)
        return jm.expected_values(_with_leaf(game, discount=gamma), policy)

    run = jax.jit(sweep)
    gammas = jnp.linspace(0.0, 0.95, 5)
    out = run(gammas, policy)
    run(gammas * 0.5, jm.uniform_policy(game))
    assert len(calls) == 1
    P, R, mu0 = (np.asarray(x) for x in (game.transition, game.reward, game.initial))
    for k, gamma in enumerate(np.asarray(gammas)):
        np.testing.assert_allclose(
            out[k], ref.values_at(P, R, mu0, gamma, policy), rtol=0, atol=1e-9 / (1 - gamma)
        )
