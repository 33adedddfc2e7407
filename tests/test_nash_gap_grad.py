"""Derivatives of ``nash_gap`` (jaxmail/responses.py: custom JVP, envelope theorem).

Where every player's best response is unique, ``V_i^{*, pi_-i} = max_b V_i^{b, pi_-i}`` is
differentiable with the derivative of ``V_i^{b_i, pi_-i}`` at the maximiser (Danskin), so the gap
is smooth around the point and central finite differences are a valid oracle: with step ``h`` in
float64 their error is ``h^2 |f'''| / 6 + eps |f| / h ~ 1e-12 + 1e-10``; we allow 1e-7.
"""

import helpers as h
import jax
import jax.numpy as jnp
import numpy as np
import reference as ref

import jaxmail as jm

FD_STEP = 1e-6
FD_ATOL = 1e-7
_FIELDS = ("transition", "reward", "initial", "discount")


def _objective(game, logits):
    """Uses every differentiable output: the gap (argmax player), NashConv, both value vectors."""
    gap = jm.nash_gap(game, jm.softmax_policy(logits))
    return (
        gap.nash_gap
        + 0.3 * gap.nash_conv
        + 0.1 * gap.policy_values[0]
        + 0.2 * gap.best_response_values[1]
    )


_value_and_grad = jax.jit(jax.value_and_grad(_objective, argnums=(0, 1)))


def _value(game, logits):
    return _value_and_grad(game, logits)[0]  # one compiled program for the test (compile: ~5 s)


def _with(game, name, value):
    """The game with one leaf replaced, rebuilt from leaves (no re-validation: FD steps leave
    P's rows off 1 by 1e-6, which the kernels evaluate as they are)."""
    leaves = [value if f == name else getattr(game, f) for f in _FIELDS]
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(game), leaves)


def _central_difference(f, x):
    x = np.asarray(x, np.float64)
    out = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += FD_STEP
        down[idx] -= FD_STEP
        out[idx] = (float(f(up)) - float(f(down))) / (2 * FD_STEP)
    return out


def test_nash_gap_gradient_matches_finite_differences(x64):
    gamma = 0.8
    rng = np.random.default_rng(3)
    P, R, mu0 = ref.random_game(rng, 3, (2, 2), gamma)
    game = h.make_game(P, R, mu0, gamma)
    logits = tuple(jnp.asarray(rng.normal(size=(3, 2))) for _ in range(2))
    # The best responses are unique, with a margin: in every state the best action's optimal
    # Q-value beats the other by more than 1e-3 (>> the FD step times any derivative), so the
    # maximiser does not change within +-h and the gap is smooth there.
    policy = h.as_numpy(jm.softmax_policy(logits))
    for i in range(2):
        P_i, r_i = ref.induced_mdp(P, R, policy, i)
        q = r_i + gamma * P_i @ ref.best_response_values(P, R, gamma, policy, i)
        q = np.sort(q, axis=1)
        assert np.all(q[:, -1] - q[:, -2] > 1e-3)
    gains = ref.nash_gap(P, R, mu0, gamma, policy)["gains"]
    assert gains[0] > gains[1] + 1e-3  # a unique argmax player too

    _, (g_game, g_logits) = _value_and_grad(game, logits)
    for i in range(2):
        fd = _central_difference(
            lambda x, i=i: _value(
                game, tuple(jnp.asarray(x) if j == i else lg for j, lg in enumerate(logits))
            ),
            logits[i],
        )
        np.testing.assert_allclose(g_logits[i], fd, rtol=0, atol=FD_ATOL)
        assert np.abs(fd).max() > 1e-2  # not a vacuous comparison
    for name in _FIELDS:
        leaf = getattr(game, name)
        fd = _central_difference(
            lambda x, n=name: _value(_with(game, n, jnp.asarray(x)), logits), leaf
        )
        np.testing.assert_allclose(getattr(g_game, name), fd, rtol=0, atol=FD_ATOL, err_msg=name)
        assert np.abs(fd).max() > 1e-2, name

    # Forward mode gives the same directional derivative (the custom JVP, untransposed).
    direction = tuple(jnp.asarray(rng.normal(size=(3, 2))) for _ in range(2))
    _, jvp = jax.jvp(lambda lg: _objective(game, lg), (logits,), (direction,))
    want = sum(float(jnp.sum(g * d)) for g, d in zip(g_logits, direction))
    np.testing.assert_allclose(float(jvp), want, rtol=0, atol=1e-10)
