"""The bounds of jaxmail.theory scale with the reward bound r_max (issue: bounds that scale)."""

import jax.numpy as jnp
import numpy as np
import pytest

import jaxmail as jm
from jaxmail import theory


def _scaled_lemma1(scale):
    ce = jm.games.lemma1_game(0.9)
    return ce, ce.game.replace(reward=ce.game.reward * scale)


def test_reward_bound_is_the_largest_absolute_reward():
    ce, game = _scaled_lemma1(10.0)
    assert float(theory.reward_bound(ce.game)) == 1.0  # Lemma 1 rewards lie in {1/3, 2/3, 1, -1}
    assert float(theory.reward_bound(game)) == pytest.approx(10.0)


def test_value_gap_bound_fails_unscaled_and_holds_scaled():
    # Lemma 1 with rewards x10: the learner's value gap is 10 (5/3)/(1-gamma) = 166.7, and its
    # joint occupancy error is 2 (disjoint joint actions), so eps_rho/(1-gamma) = 20 < 166.7:
    # the [-1, 1] bound is broken, r_max eps_rho/(1-gamma) = 200 holds. A bound that ignored
    # the reward scale would pass this test only by accident.
    ce, game = _scaled_lemma1(10.0)
    gap = float(jm.value_gap(game, ce.learner, expert=ce.expert))
    eps_rho = jm.occupancy_error(game, ce.learner, ce.expert)
    eps_bc = jm.bc_error(game, ce.learner, expert=ce.expert)
    assert gap == pytest.approx(10 * (5 / 3) / 0.1, rel=1e-4)
    unscaled = theory.value_gap_bounds(eps_bc, eps_rho, 2, 0.9)
    scaled = theory.value_gap_bounds(
        eps_bc, eps_rho, 2, 0.9, reward_bound=theory.reward_bound(game)
    )
    assert gap > float(unscaled.occupancy)
    assert gap <= float(scaled.occupancy) * (1 + 1e-5)
    assert gap <= float(scaled.bc) * (1 + 1e-5)


@pytest.mark.parametrize("r_max", [0.5, 1.0, 7.0])
def test_every_bound_is_linear_in_r_max(r_max):
    eps, n, gamma = jnp.asarray(0.02), 3, 0.8
    np.testing.assert_allclose(
        theory.lemma3_bound(eps, n, gamma, reward_bound=r_max),
        r_max * theory.lemma3_bound(eps, n, gamma),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        theory.lemma4_bound(eps, 0.3, n, gamma, reward_bound=r_max),
        r_max * theory.lemma4_bound(eps, 0.3, n, gamma),
        rtol=1e-6,
    )
    threshold = theory.corollary3_threshold(0.1, n, gamma, reward_bound=r_max)
    # Corollary 3 inverts Lemma 3 at the same r_max: the bound at the threshold is eps.
    np.testing.assert_allclose(
        theory.lemma3_bound(threshold, n, gamma, reward_bound=r_max), 0.1, rtol=1e-6
    )
