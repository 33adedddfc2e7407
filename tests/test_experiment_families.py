"""The experiments' game families (jaxmail/experiments/families.py).

One draw of a game with its expert: the same game and expert as the generator and the solver
called directly, whichever branch of the traced family index runs, and bad family pairs
refused. Small games (S = 3, A = 2, two players) so that the two-branch program compiles in a
few seconds; the Nash expert (the homotopy, slow to compile) is exercised by the experiment
tests.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmail as jm  # before any JAX computation: the XLA guard
from jaxmail.experiments import families

FAMILIES = (families.Family("general_sum", "qre"), families.Family("dominant", "exact"))
SIZES = dict(num_players=2, num_states=3, num_actions=2)


TRACES = []


@jax.jit
def _draw(key, index, temperature):
    TRACES.append(index)  # runs at trace time only
    nan = jnp.asarray(jnp.nan, jnp.float32)
    out = families.draw(
        key,
        index,
        FAMILIES,
        discount=jnp.asarray(0.9, jnp.float32),
        own_weight=jnp.asarray(0.5, jnp.float32),
        temperature=temperature,
        nash_gap_tol=nan,
        nash_end_temperature=nan,
        **SIZES,
    )
    return out._replace(game=(out.game.transition, out.game.reward))


def test_draw_is_the_generator_and_the_solver():
    key = jax.random.key(3)
    tau = jnp.asarray(0.3, jnp.float32)
    # Index 0: random general-sum game, logit-QRE expert.
    out = _draw(key, 0, tau)
    game = jm.games.random_game(key, num_states=3, num_actions=(2, 2), discount=0.9)
    np.testing.assert_array_equal(out.game[0], game.transition)
    np.testing.assert_array_equal(out.game[1], game.reward)
    qre = jm.equilibria.logit_qre(game, temperature=0.3)
    for got, want in zip(out.expert, qre.policy):
        # The same solver on the same game, compiled into another program: equal to rounding.
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    assert bool(out.converged) == bool(qre.converged) and np.isnan(out.gap_tol)
    # Index 1 (same compiled program): the dominant-strategy game and its exact expert.
    out = _draw(key, 1, tau)
    dse = jm.games.dominant_strategy_game(key, num_states=3, num_actions=(2, 2), discount=0.9)
    np.testing.assert_array_equal(out.game[1], dse.game.reward)
    for got, want, given in zip(out.expert, dse.expert, out.given):
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(given, want)
    assert bool(out.converged) and np.isnan(out.gap_tol)
    assert len(TRACES) == 1  # one program for both families (the index is traced)


@pytest.mark.parametrize(
    "family, match",
    [
        (("general", "qre"), "generator in"),
        (("general_sum", "logit"), "expert in"),
        (("zero_sum", "exact"), "only the dominant generator"),
    ],
)
def test_bad_family_pairs_raise(family, match):
    with pytest.raises(ValueError, match=match):
        families.check_family(families.Family(*family))
