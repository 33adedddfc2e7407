"""Tabular MA-GAIL (jaxmail.imitation.gail): exact policy gradients, the three discriminator
priors, transformations, datasets and bad arguments.

All learner runs use one game shape (3 states, 2 x 2 actions) and the same ``STEPS``, so that
the compiled loop is shared where the static configuration is.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmail as jm
from jaxmail.imitation import gail

GAMMA = 0.9
STEPS = 200
LOG4 = 2 * np.log(2)  # the logistic loss of D = 1/2 on two normalised measures: log 2 + log 2


def _full_support():
    game = jm.games.random_game(jax.random.key(0), num_states=3, num_actions=(2, 2), discount=GAMMA)
    return game, jm.random_policy(jax.random.key(1), game)


def test_discriminator_loss():
    p = jnp.array([0.5, 0.3, 0.2, 0.0])
    q = jnp.array([0.1, 0.1, 0.4, 0.4])
    # D = 1/2: -sum p log(1/2) - sum q log(1/2) = 2 log 2.
    np.testing.assert_allclose(gail.discriminator_loss(jnp.zeros(4), p, q), LOG4, rtol=1e-6)
    # Optimal logits log(p/q) (D = p/(p+q)); the gradient p (1 - D) - q D vanishes there.
    grad = jax.jit(jax.grad(gail.discriminator_loss))(jnp.log(p[:3] / q[:3]), p[:3], q[:3])
    np.testing.assert_allclose(grad, 0.0, atol=1e-6)
    # Extreme logits: finite loss and gradient (log_sigmoid, no log(0)).
    big = jnp.array([100.0, -100.0, 100.0, -100.0])
    loss, grad = jax.jit(jax.value_and_grad(gail.discriminator_loss))(big, p, q)
    assert np.isfinite(float(loss)) and np.all(np.isfinite(grad))


@pytest.mark.parametrize(
    "kind", ["centralised", pytest.param("decentralised", marks=pytest.mark.slow)]
)
def test_ma_gail_imitates_a_full_support_expert(kind):
    game, expert = _full_support()
    uniform = jm.uniform_policy(game)
    # Uniform start: eps_rho = eps_BC = 0.81 (observed).
    start_rho = float(jm.occupancy_error(game, uniform, expert))
    start_bc = float(jm.bc_error(game, uniform, expert=expert))
    assert start_rho > 0.5 and start_bc > 0.5
    fit = gail.ma_gail(jax.random.key(2), game, expert, discriminator=kind, steps=STEPS)
    learned = fit.policy
    assert fit.losses.shape == fit.discriminator_losses.shape == (STEPS,)
    assert np.all(np.isfinite(fit.losses)) and np.all(np.isfinite(fit.discriminator_losses))
    # Observed after 200 iterations (10 discriminator steps each): eps_rho 0.005, eps_BC 0.004
    # in both modes (the entropy bonus 0.01 keeps them off 0). Asserted with a 10x margin.
    assert float(jm.occupancy_error(game, learned, expert)) < 0.05
    assert float(jm.bc_error(game, learned, expert=expert)) < 0.05
    # At the end the discriminator cannot tell the learner from the expert: loss ~ 2 log 2.
    assert abs(float(fit.discriminator_losses[-1]) - LOG4) < 0.01


@pytest.mark.slow
def test_zero_sum_mode_on_a_zero_sum_game():
    game = jm.games.zero_sum_game(jax.random.key(3), num_states=3, num_actions=2, discount=GAMMA)
    expert = jm.random_policy(jax.random.key(4), game)
    uniform = jm.uniform_policy(game)
    assert float(jm.occupancy_error(game, uniform, expert)) > 0.4  # observed 0.45
    learned, losses, d_losses = gail.ma_gail(
        jax.random.key(2), game, expert, discriminator="zero_sum", steps=STEPS
    )
    assert np.all(np.isfinite(losses)) and np.all(np.isfinite(d_losses))
    # Observed after 200 iterations: eps_rho 0.004, eps_BC 0.003.
    assert float(jm.occupancy_error(game, learned, expert)) < 0.05
    assert float(jm.bc_error(game, learned, expert=expert)) < 0.05
    # Rewards r_1 = -r_2 = omega: the mean of the two players' regularised values is the mean
    # entropy bonus alone, tau E_d[H(pi_1) + H(pi_2)] / (2 (1 - gamma)) <= 0.01 log 2 / 0.1,
    # and the policy loss is its negative.
    assert -0.01 * np.log(2) / (1 - GAMMA) - 1e-5 <= float(losses[-1]) <= 0.0


@pytest.mark.slow
def test_vmap_over_keys_and_entropy_equals_a_python_loop():
    game, expert = _full_support()
    keys = jax.random.split(jax.random.key(8), 2)
    taus = jnp.array([0.01, 0.1])

    def run(key, tau):
        return gail.ma_gail(key, game, expert, entropy=tau, steps=STEPS)

    batched = jax.vmap(run)(keys, taus)
    for b in range(2):
        one = run(keys[b], taus[b])
        for x, y in zip(batched.policy, one.policy):
            np.testing.assert_allclose(x[b], y, atol=1e-5)
        np.testing.assert_allclose(batched.losses[b], one.losses, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(
            batched.discriminator_losses[b], one.discriminator_losses, rtol=1e-4, atol=1e-4
        )


@pytest.mark.slow
def test_a_dataset_target():
    game, expert = _full_support()
    data = jm.data.sample_demonstrations(
        jax.random.key(7), game, expert, num_trajectories=1000, horizon=40
    )
    # The empirical joint measure is 0.018 from the exact one in L1 (observed); observed eps_rho
    # of the learner 0.017 (centralised), from 0.81 at the uniform start.
    learned = gail.ma_gail(jax.random.key(2), game, data, steps=STEPS).policy
    assert float(jm.occupancy_error(game, learned, expert)) < 0.1
    assert float(jm.bc_error(game, learned, expert=expert)) < 0.1


def test_bad_arguments_raise_clear_errors():
    game, expert = _full_support()
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="discriminator: expected one of"):
        gail.ma_gail(key, game, expert, discriminator="central")
    three = jm.MarkovGame(
        transition=np.ones((1, 2, 2, 2, 1)),
        reward=np.zeros((3, 1, 2, 2, 2)),
        initial=np.ones(1),
        discount=GAMMA,
    )
    with pytest.raises(ValueError, match="'zero_sum' needs a 2-player game"):
        gail.ma_gail(key, three, jm.uniform_policy(three), discriminator="zero_sum")
    with pytest.raises(ValueError, match="discriminator_steps"):
        gail.ma_gail(key, game, expert, discriminator_steps=0)
    with pytest.raises(ValueError, match="steps"):
        gail.ma_gail(key, game, expert, steps=-3)
    with pytest.raises(TypeError, match="return_losses"):  # gone: the Fit record has the curves
        gail.ma_gail(key, game, expert, return_losses=True)
    with pytest.raises(ValueError, match="entropy: must be >= 0"):
        gail.ma_gail(key, game, expert, entropy=-1.0)
    with pytest.raises(TypeError, match="optimizer"):
        gail.ma_gail(key, game, expert, policy_optimizer=0.1)
    with pytest.raises(TypeError, match="optimizer"):
        gail.ma_gail(key, game, expert, discriminator_optimizer="adam")
    with pytest.raises(ValueError, match="target"):
        gail.ma_gail(key, game, (expert[0],))
    wrong = jm.data.Dataset(  # a 3-player dataset for a 2-player game
        states=np.zeros((1, 2), np.int32),
        actions=np.zeros((1, 2, 3), np.int32),
        mask=np.ones((1, 2), bool),
        weights=np.ones((1, 2)),
    )
    with pytest.raises(ValueError, match="3 players, the game has 2"):
        gail.ma_gail(key, game, wrong)
    far = jm.data.Dataset(  # an action out of range
        states=np.zeros((1, 2), np.int32),
        actions=np.full((1, 2, 2), 4, np.int32),
        mask=np.ones((1, 2), bool),
        weights=np.ones((1, 2)),
    )
    with pytest.raises(ValueError, match="action 4 of player 0 out of range"):
        gail.ma_gail(key, game, far)
