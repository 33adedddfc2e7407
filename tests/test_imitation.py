"""Behavioural cloning, synthetic imitators and eps_BC estimates.

Checked against NumPy counting, against the exact metrics of the core, and against the paper's
Lemma 3 on dominant-strategy games.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import instance, make_game

import jaxmail as jm
from jaxmail import data as jd

GAMMA = 0.9
NUM_STATES, NUM_ACTIONS = 5, (2, 3)


@pytest.fixture(scope="module")
def setting():
    P, R, mu0, policy = instance(1, NUM_STATES, NUM_ACTIONS, GAMMA)
    game = make_game(P, R, mu0, GAMMA)
    data = jd.sample_demonstrations(
        jax.random.key(0), game, policy, num_trajectories=30, horizon=12, lengths="geometric"
    )
    # Drop every step at the last state, so that the rule for states never seen is exercised.
    data = data.replace(mask=data.mask & (data.states != NUM_STATES - 1))
    return P, R, mu0, policy, game, data


def _numpy_counts(data, num_states, num_actions):
    counts = [np.zeros((num_states, a)) for a in num_actions]
    for k, t in zip(*np.nonzero(np.asarray(data.mask))):
        for i in range(len(num_actions)):
            counts[i][data.states[k, t], data.actions[k, t, i]] += 1
    return counts


def test_closed_form_is_smoothed_counting(setting):
    *_, game, data = setting
    counts = _numpy_counts(data, NUM_STATES, NUM_ACTIONS)
    prior = jm.random_policy(jax.random.key(5), game)
    for smoothing in (0.0, 0.5):
        for given_prior in (None, prior):
            fit = jm.imitation.behavior_cloning(game, data, smoothing=smoothing, prior=given_prior)
            assert isinstance(fit, jm.imitation.Fit) and fit.losses.shape == (0,)
            assert fit.discriminator_losses is None
            bc = fit.policy
            for i, (c, a) in enumerate(zip(counts, NUM_ACTIONS)):
                q = np.full((NUM_STATES, a), 1 / a) if given_prior is None else given_prior[i]
                q = np.asarray(q, np.float64)
                visits = c.sum(1, keepdims=True)
                want = (c + smoothing * a * q) / np.maximum(visits + smoothing * a, 1e-300)
                want = np.where(visits + smoothing * a > 0, want, q)  # never seen: the prior
                np.testing.assert_allclose(bc[i], want, atol=1e-6)
    unseen = np.asarray(counts[0].sum(1) == 0)
    assert unseen.any(), "the fixture should leave a state unseen so the prior rule is tested"


def test_gradient_bc_reaches_the_closed_form_and_regularisers_act(setting):
    *_, game, data = setting
    closed = jm.imitation.behavior_cloning(game, data).policy
    grad, losses, _ = jm.imitation.gradient_behavior_cloning(game, data, steps=600)
    assert losses.shape == (600,) and bool(jnp.all(jnp.isfinite(losses)))
    assert losses[-1] < losses[0]
    seen = np.asarray(_numpy_counts(data, NUM_STATES, NUM_ACTIONS)[0].sum(1) > 0)
    for g, c in zip(grad, closed):
        # The unregularised loss is the per-state cross entropy: its minimiser at a visited state
        # is the empirical distribution (the closed form); zero counts drive logits to -inf only
        # slowly, so a loose tolerance.
        np.testing.assert_allclose(np.asarray(g)[seen], np.asarray(c)[seen], atol=0.03)
        # No data, no gradient: the unseen states keep the initial (uniform) policy.
        np.testing.assert_allclose(np.asarray(g)[~seen], 1 / g.shape[1], atol=1e-6)
    # The objective at the end matches the closed form's loss (the minimum, up to the slow
    # zero-count directions).
    counts = jd.action_counts(game, data)
    floor = jm.imitation.bc_loss(tuple(jnp.log(jnp.clip(c, 1e-12)) for c in closed), counts)
    assert float(losses[-1]) < float(floor) + 0.02


@pytest.mark.slow
def test_gradient_bc_regularisers_act(setting):
    *_, game, data = setting
    closed = jm.imitation.behavior_cloning(game, data).policy
    # A strong entropy bonus and label smoothing both pull the clone towards uniform.
    for reg in (dict(entropy=5.0), dict(label_smoothing=1.0), dict(l2=10.0)):
        smooth = jm.imitation.gradient_behavior_cloning(game, data, steps=300, **reg).policy
        uniform = jm.uniform_policy(game)
        assert float(jnp.max(jm.policy_distance(smooth, uniform))) < float(
            jnp.max(jm.policy_distance(closed, uniform))
        )


def test_bc_loss_against_numpy():
    rng = np.random.default_rng(0)
    logits = (rng.normal(size=(3, 2)), rng.normal(size=(3, 4)))
    counts = (
        np.array([[2.0, 1], [0, 0], [3, 0]]),
        np.array([[1.0, 1, 0, 1], [0, 0, 0, 0], [0, 0, 3, 0]]),
    )
    entropy, l2, ls = 0.3, 0.1, 0.2
    want = 0.0
    total = counts[0].sum()
    for theta, c in zip(logits, counts):
        p = np.exp(theta) / np.exp(theta).sum(1, keepdims=True)
        for s in range(3):
            n_s = c[s].sum()
            if n_s == 0:
                continue
            y = (1 - ls) * c[s] / n_s + ls / c.shape[1]
            want += (
                n_s / total * (-(y * np.log(p[s])).sum() + entropy * (p[s] * np.log(p[s])).sum())
            )
        want += 0.5 * l2 * (theta**2).sum()
    got = jm.imitation.bc_loss(
        tuple(jnp.asarray(x) for x in logits),
        tuple(jnp.asarray(x) for x in counts),
        entropy=entropy,
        l2=l2,
        label_smoothing=ls,
    )
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.slow
def test_bc_error_shrinks_with_data_and_vmap_equals_a_loop(setting):
    *_, policy, game, _ = setting
    sizes = jnp.array([10, 100, 1000])

    def pipeline(key, size):
        data = jd.sample_demonstrations(
            key, game, policy, num_trajectories=1000, horizon=30, lengths="geometric"
        ).truncate(size)
        bc = jm.imitation.behavior_cloning(game, data, smoothing=0.5).policy
        return jm.bc_error(game, bc, expert=policy)

    keys = jax.random.split(jax.random.key(7), 8)
    errors = jax.jit(jax.vmap(jax.vmap(pipeline, in_axes=(0, None)), in_axes=(None, 0)))(
        keys, sizes
    )  # [3 sizes, 8 seeds], one compilation
    assert errors.shape == (3, 8)
    np.testing.assert_allclose(errors[1, 2], pipeline(keys[2], sizes[1]), rtol=1e-5)
    mean = np.asarray(errors.mean(axis=1))
    # The tabular MLE's L1 error falls like 1/sqrt(samples): 100x more data, ~10x less error.
    # Asserted with margin: each size at least halves the mean error.
    assert mean[1] < mean[0] / 2 and mean[2] < mean[1] / 2, mean


@pytest.mark.slow
def test_bc_recovers_the_expert_and_its_nash_gap(x64):
    # Any full-support demonstrator will do: the claim is continuity of BC and of NashGap.
    P, R, mu0, expert = instance(2, 4, (2, 2), 0.6)
    game = make_game(P, R, mu0, 0.6)
    data = jd.sample_demonstrations(
        jax.random.key(1), game, expert, num_trajectories=20_000, horizon=20, lengths="geometric"
    )
    bc = jm.imitation.behavior_cloning(game, data).policy
    delta = float(jnp.max(jm.policy_distance(bc, expert)))  # sup over players and states
    assert delta < 0.05, delta  # every state visited (uniform mu0), ~30k samples per state
    # NashGap is Lipschitz in the sup-norm policy distance: each value moves by at most
    # n * delta / (1 - gamma)^2 (simulation lemma, |r| <= 1, joint L1 <= sum of player L1s) and
    # each best-response value by (n - 1) * delta / (1 - gamma)^2, so the gap by
    # (2n - 1) delta / (1 - gamma)^2.
    gap, gap_expert = jm.nash_gap(game, bc).nash_gap, jm.nash_gap(game, expert).nash_gap
    assert abs(float(gap - gap_expert)) <= 3 * delta / (1 - 0.6) ** 2
    assert abs(float(gap - gap_expert)) < 0.05


@pytest.mark.slow
@pytest.mark.parametrize("num_actions", [(3, 2), (2, 2, 2)])
def test_lemma3_bound_holds_for_learners_on_dominant_strategy_games(num_actions):
    n = len(num_actions)
    bound_constant = 2 * n - 1  # docs/theory.md §3.5: NashGap <= (2n - 1) eps_BC / (1 - gamma)^2

    def pipeline(key):
        k_game, k_data, k_noise = jax.random.split(key, 3)
        dse = jm.games.dominant_strategy_game(
            k_game, num_states=6, num_actions=num_actions, discount=0.8
        )
        game, expert = dse.game, dse.expert
        data = jd.sample_demonstrations(
            k_data, game, expert, num_trajectories=5, horizon=10, lengths="geometric"
        )
        learners = (
            jm.imitation.behavior_cloning(game, data, smoothing=0.3).policy,
            jm.imitation.gradient_behavior_cloning(game, data, steps=50, entropy=0.1).policy,
            jm.imitation.perturb_policy(k_noise, expert, 0.3),
        )
        if n == 2:  # the occupancy learners too (compiled once more each: two players only)
            learners += (
                jm.imitation.measure_matching(game, data, measure="state_action", steps=30).policy,
                jm.imitation.ma_gail(k_noise, game, data, steps=10, discriminator_steps=2).policy,
            )
        gaps = jnp.stack([jm.nash_gap(game, p).nash_gap for p in learners])
        errors = jnp.stack([jm.bc_error(game, p, expert=expert) for p in learners])
        return gaps, errors

    gaps, errors = jax.jit(jax.vmap(pipeline))(jax.random.split(jax.random.key(3), 16))
    bound = bound_constant * errors / (1 - 0.8) ** 2
    assert bool(jnp.all(errors > 0))  # the learners are not the expert
    # float32 gap tolerance: 1e-4 / (1 - gamma) covers the solver's error on values of size 5.
    assert bool(jnp.all(gaps <= bound + 5e-4)), (gaps, bound)


def test_perturb_policy(setting):
    *_, policy, game, _ = setting
    key = jax.random.key(0)
    etas = jnp.linspace(0.0, 1.0, 5)
    batch = jax.vmap(jm.imitation.perturb_policy, in_axes=(None, None, 0))(key, policy, etas)
    for b, eta in enumerate(etas):
        one = jm.imitation.perturb_policy(key, policy, eta)
        for p, q, e in zip(batch, one, policy):
            np.testing.assert_allclose(p[b], q, atol=1e-6)
            np.testing.assert_allclose(q.sum(-1), 1.0, atol=1e-6)
            assert bool(jnp.all(q >= 0))
            # ||(1 - eta) p + eta u - p||_1 = eta ||u - p||_1 <= 2 eta
            assert float(jnp.max(jnp.abs(q - e).sum(-1))) <= 2 * float(eta) + 1e-6
    np.testing.assert_allclose(batch[0][0], policy[0], atol=1e-6)  # eta = 0: the expert
    logit = jm.imitation.perturb_policy(key, policy, 0.5, kind="logit")
    assert float(jm.bc_error(game, logit, expert=policy)) > 0
    np.testing.assert_allclose(
        jm.imitation.perturb_policy(key, policy, 0.0, kind="logit")[1], policy[1], atol=1e-6
    )
    with pytest.raises(ValueError, match="kind: expected one of"):
        jm.imitation.perturb_policy(key, policy, 0.1, kind="gauss")
    with pytest.raises(ValueError, match=r"noise_level: expected values in \[0, 1.0\]"):
        jm.imitation.perturb_policy(key, policy, 1.5)


def test_estimated_bc_error(setting):
    *_, policy, game, data = setting
    imitator = jm.imitation.perturb_policy(jax.random.key(1), policy, 0.4)
    est = jm.imitation.estimate_bc_error(jax.random.key(2), game, data, imitator, expert=policy)
    # Point estimate: the weighted average of per-step L1 distances, by a NumPy loop.
    w = np.asarray(data.weights) * np.asarray(data.mask)
    dist = [np.abs(np.asarray(p) - np.asarray(e)).sum(-1) for p, e in zip(imitator, policy)]
    per_player = [np.sum(w * d[np.asarray(data.states)]) / w.sum() for d in dist]
    np.testing.assert_allclose(est.per_player, per_player, rtol=1e-5)
    np.testing.assert_allclose(est.estimate, max(per_player), rtol=1e-5)
    assert float(est.low) <= float(est.estimate) <= float(est.high)
    none = jm.imitation.estimate_bc_error(
        jax.random.key(2), game, data, imitator, expert=policy, num_bootstrap=0
    )
    assert float(none.low) == float(none.high) == float(none.estimate)
    with pytest.raises(TypeError):  # the expert by keyword only: a swap changes the result
        jm.imitation.estimate_bc_error(jax.random.key(2), game, data, imitator, policy)


@pytest.mark.slow
def test_estimated_bc_error_interval_covers(setting):
    *_, policy, game, _ = setting
    imitator = jm.imitation.perturb_policy(jax.random.key(1), policy, 0.4)
    # Coverage: over 40 independent datasets of geometric-length expert episodes, the nominal 95%
    # interval must cover the exact eps_BC at least 32 times (Pr(fewer) < 1e-3 for a true 95%).
    exact = jm.bc_error(game, imitator, expert=policy)

    def interval(key):
        k_data, k_boot = jax.random.split(key)
        demos = jd.sample_demonstrations(
            k_data, game, policy, num_trajectories=200, horizon=60, lengths="geometric"
        )
        e = jm.imitation.estimate_bc_error(
            k_boot, game, demos, imitator, expert=policy, num_bootstrap=200
        )
        return e.low, e.high

    low, high = jax.jit(jax.vmap(interval))(jax.random.split(jax.random.key(9), 40))
    covered = int(jnp.sum((low <= exact) & (exact <= high)))
    assert covered >= 32, covered


def test_bad_arguments_raise(setting):
    *_, policy, game, data = setting
    # The closed form and gradient BC are two functions: the old ``method=`` is no keyword.
    with pytest.raises(TypeError, match="unexpected keyword argument 'method'"):
        jm.imitation.behavior_cloning(game, data, method="gradient")
    with pytest.raises(TypeError, match="unexpected keyword argument 'entropy'"):
        jm.imitation.behavior_cloning(game, data, entropy=0.1)  # a gradient-BC regulariser
    with pytest.raises(TypeError, match="optimizer: expected an optax.GradientTransformation"):
        jm.imitation.gradient_behavior_cloning(game, data, optimizer=0.1)
    with pytest.raises(ValueError, match="steps: expected a non-negative int"):
        jm.imitation.gradient_behavior_cloning(game, data, steps=-1)
    with pytest.raises(ValueError, match="init"):
        jm.imitation.gradient_behavior_cloning(game, data, init=(np.ones((5, 2)),))
    with pytest.raises(TypeError, match="expected a jaxmail.data.Dataset"):
        jm.imitation.behavior_cloning(game, policy)
    other = jm.games.random_game(jax.random.key(0), num_states=3, num_actions=(2,), discount=0.5)
    with pytest.raises(ValueError, match="actions have 2 players, the game has 1"):
        jm.imitation.behavior_cloning(other, data)
    with pytest.raises(ValueError, match="prior"):
        jm.imitation.behavior_cloning(game, data, prior=(np.ones((5, 2)), np.ones((5, 3))))
    with pytest.raises(ValueError, match="num_bootstrap"):
        jm.imitation.estimate_bc_error(
            jax.random.key(0), game, data, policy, expert=policy, num_bootstrap=-2
        )
    assert optax is not None
