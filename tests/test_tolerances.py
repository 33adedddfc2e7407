"""jaxmail.tolerances: one home, one name per bound, each equal to its stated formula.

Every expected number is the docstring's formula evaluated in NumPy float64 from the dtype's
``eps`` (float32: 2**-23, float64: 2**-52); the tolerances are computed in the dtype, so they
agree to a few ulps of that dtype.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmail import _linalg, homotopy, responses, theory, tolerances
from jaxmail.game import MarkovGame

EPS = {jnp.float32: 2.0**-23, jnp.float64: 2.0**-52}


def _game(gamma, r_max):
    """A one-state game, one action each, ``max |R| = r_max`` (only the scale matters)."""
    reward = np.array([[[[r_max]]], [[[-0.5 * r_max]]]])  # [n=2, S=1, 1, 1]
    return MarkovGame(np.ones((1, 1, 1, 1)), reward, np.ones(1), gamma)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("gamma", [0.5, 0.9, 0.99])
@pytest.mark.parametrize("r_max", [0.25, 3.0])
def test_each_tolerance_is_its_formula(dtype, gamma, r_max):
    with jax.enable_x64(dtype == jnp.float64):
        _check_formulas(dtype, gamma, r_max)


def _check_formulas(dtype, gamma, r_max):
    eps = EPS[dtype]
    rtol = 8 * EPS[jnp.float32] if dtype == jnp.float32 else 8 * eps
    scale = max(1.0, r_max)  # every reward scale is floored at 1
    # gamma as the dtype holds it: 1 - gamma then has no rounding (Sterbenz), so the formulas
    # agree to a few ulps whatever 1 / (1 - gamma) is.
    gamma = float(np.asarray(gamma, dtype))
    g = jnp.asarray(gamma, dtype)
    r = jnp.asarray(r_max, dtype)
    cases = {
        "policy_improvement_tol": (
            tolerances.policy_improvement_tol(dtype, g, r),
            4 * eps * scale / (1 - gamma) ** 2,
        ),
        "best_response_set_tol": (
            tolerances.best_response_set_tol(dtype, g, r),
            np.sqrt(eps) * scale / (1 - gamma),
        ),
        "linear_solve_tol": (tolerances.linear_solve_tol(dtype, g), 4 * eps / (1 - gamma)),
        "occupancy_zero_tol": (
            tolerances.occupancy_zero_tol(dtype, g),
            16 * eps * (1 + gamma) / (1 - gamma),
        ),
        "homotopy_corrector_tol": (tolerances.homotopy_corrector_tol(dtype), np.sqrt(eps)),
    }
    game = _game(gamma, r_max)
    assert game.dtype == dtype
    cases["value_tol"] = (tolerances.value_tol(game), 64 * eps * scale / (1 - gamma))
    cases["value_tol extra"] = (
        tolerances.value_tol(game, 2.0),
        64 * eps * max(1.0, r_max + 2.0) / (1 - gamma),
    )
    cases["nash_gap_zero_tol"] = (
        tolerances.nash_gap_zero_tol(game),
        1000 * eps * scale / (1 - gamma),
    )
    for name, (got, want) in cases.items():
        assert float(got) == pytest.approx(want, rel=rtol), name


def test_documented_numbers():
    # occupancy_zero_tol, float32, gamma = 0.9: 16 * 2^-23 * 1.9 / 0.1 = 3.624e-5.
    got = float(tolerances.occupancy_zero_tol(jnp.float32, 0.9))
    assert got == pytest.approx(3.624e-5, rel=1e-3)
    # homotopy_corrector_tol, float64: sqrt(2^-52) = 2^-26 = 1.49e-8.
    assert tolerances.homotopy_corrector_tol(jnp.float64) == 2.0**-26


def test_one_home_no_default_tol_left():
    """The old names are gone from their former modules: each bound has one name."""
    for module, name in [
        (responses, "default_tol"),
        (responses, "default_set_tol"),
        (_linalg, "default_tol"),
        (theory, "default_zero_tol"),
        (homotopy, "default_tol"),
        (homotopy, "default_gap_tol"),
    ]:
        assert not hasattr(module, name), f"{module.__name__}.{name}"
