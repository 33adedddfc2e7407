"""jaxmail.gradients: every player's own policy gradient from one evaluation.

The reference is independent of the surrogate: ``jax.grad`` of player ``i``'s value computed
by an exact evaluation (``jm.evaluate``, an LU solve differentiated implicitly), as a function
of ``theta_i`` ALONE with the others' logits frozen, with the entropy bonus written into player
``i``'s reward. The policy-gradient theorem makes the two equal up to float64 rounding.
"""

import helpers as h
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxmail as jm

GAMMA = 0.9
ACTIONS = (2, 3, 2)


@pytest.fixture(scope="module")
def instance():
    with jax.enable_x64(True):
        P, R, mu0, _ = h.instance(11, 3, ACTIONS, GAMMA)
        game = h.make_game(P, R, mu0, GAMMA)
        keys = jax.random.split(jax.random.key(5), len(ACTIONS))
        logits = tuple(
            jax.random.normal(k, (3, a), dtype=jnp.float64) for k, a in zip(keys, ACTIONS)
        )
    return game, logits


def _own_value(game, logits, x, tau, player):
    """``V_i^tau(mu0)`` by direct evaluation, a function of ``theta_i = x`` alone."""
    theta = [jax.lax.stop_gradient(t) for t in logits]
    theta[player] = x
    policy = tuple(jax.nn.softmax(t, axis=-1) for t in theta)
    p = policy[player]
    bonus = -jnp.sum(p * jnp.log(p), axis=-1)  # [S]
    reward = game.reward.at[player].add(tau * bonus.reshape((-1,) + (1,) * len(logits)))
    return jm.evaluate(game.replace(reward=reward), policy).expected_values[player]


_reference = jax.jit(jax.value_and_grad(_own_value, argnums=2), static_argnums=4)


@pytest.mark.parametrize("tau", [0.0, 0.3])
def test_descent_directions_equal_autodiff_of_each_players_own_value(x64, instance, tau):
    game, logits = instance
    out = jm.gradients.policy_gradients(game, logits, entropy=tau)
    losses = jm.gradients.policy_losses(game, logits, entropy=tau)
    for i in range(len(ACTIONS)):
        v, g = _reference(game, logits, logits[i], tau, i)
        # Exact both ways: float64 rounding of values O(1/(1-gamma)) = O(10).
        np.testing.assert_allclose(out.grads[i], -g, atol=1e-12)  # DESCENT direction
        np.testing.assert_allclose(out.values[i], v, atol=1e-12)
        np.testing.assert_allclose(losses[i], -v, atol=1e-12)
    np.testing.assert_allclose(out.occupancy, jm.state_occupancy(game, jm.softmax_policy(logits)))


def test_each_loss_depends_only_on_its_own_player(x64, instance):
    game, logits = instance
    jac = jax.jacrev(lambda th: jm.gradients.policy_losses(game, th, entropy=0.1))(logits)
    for j in range(len(ACTIONS)):  # jac[j]: [n, S, A_j], d loss_i / d theta_j
        for i in range(len(ACTIONS)):
            block = np.asarray(jac[j][i])
            if i == j:
                assert np.abs(block).max() > 1e-3  # a real gradient (random game and logits)
            else:
                np.testing.assert_array_equal(block, 0.0)  # the others are held fixed


def test_an_optax_step_on_its_gradient_raises_each_players_own_value(x64, instance):
    """Minimising the losses with optax must ascend values: a sign error would lower them.

    Each player takes its own small sgd step with the others held where they were; to first
    order its value rises by ``lr ||grad_i||^2 > 0``.
    """
    game, logits = instance
    opt = optax.sgd(0.01)
    before = jm.gradients.policy_gradients(game, logits)
    updates, _ = opt.update(before.grads, opt.init(logits), logits)
    for i in range(len(ACTIONS)):
        moved = tuple(
            optax.apply_updates(x, u) if k == i else x
            for k, (x, u) in enumerate(zip(logits, updates))
        )
        rise = jm.gradients.policy_gradients(game, moved).values[i] - before.values[i]
        first_order = 0.01 * jnp.sum(before.grads[i] ** 2)
        assert first_order > 1e-6
        np.testing.assert_allclose(rise, first_order, rtol=0.1)


def test_bad_arguments(x64, instance):
    game, logits = instance
    with pytest.raises(ValueError, match="entropy"):
        jm.gradients.policy_losses(game, logits, entropy=-1.0)
    with pytest.raises(ValueError, match="logits"):
        jm.gradients.policy_gradients(game, logits[:2])
