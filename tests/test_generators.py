"""Random game generators (jaxmail/games/generators.py).

Every new (generator, shape) compiles once, so the tests share a few shapes: ``S = 5`` states
with actions ``(2, 3)`` or ``(2, 3, 2)``. All randomness comes from fixed keys.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmail as jm
from jaxmail import games

S, A2, A3 = 5, (2, 3), (2, 3, 2)
GAMMA = 0.9
# float32 tolerances: rows sum to 1 within a few ulps times S; best-response gains of size
# 1/(1-gamma) = 10 resolve to about the policy-iteration tolerance 4 eps / (1-gamma)^2 ~ 5e-5.
ROW_ATOL = 1e-5
GAIN_ATOL = 2e-4

KEY = jax.random.key(0)

FAMILIES = {
    "random": lambda key, **kw: games.random_game(key, **kw),
    "zero_sum": lambda key, **kw: games.zero_sum_game(key, **kw),
    "common": lambda key, **kw: games.common_payoff_game(key, **kw),
    "dominant": lambda key, **kw: games.dominant_strategy_game(key, **kw).game,
    "controller": lambda key, **kw: (
        games.single_controller_dominant_game(key, controller=1, **kw).game
    ),
}
# Each family's shape in the structure test; shared with the later tests (one compile each).
SHAPES = {"random": A2, "zero_sum": A2, "common": A3, "dominant": A3, "controller": A3}


def _check_game(game, num_states, num_actions):
    n = len(num_actions)
    assert game.transition.shape == (num_states, *num_actions, num_states)
    assert game.reward.shape == (n, num_states, *num_actions)
    P = np.asarray(game.transition, dtype=np.float64)
    assert P.min() >= 0.0
    np.testing.assert_allclose(P.sum(-1), 1.0, atol=ROW_ATOL)
    assert np.abs(np.asarray(game.reward)).max() <= 1.0
    mu0 = np.asarray(game.initial, dtype=np.float64)
    assert mu0.min() >= 0.0 and abs(mu0.sum() - 1.0) < ROW_ATOL


# ----------------------------------------------------------------------------------------------
# Structure, ranges, batching.
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", list(FAMILIES))
def test_rows_are_distributions_and_rewards_in_range(family):
    game = FAMILIES[family](KEY, num_states=S, num_actions=SHAPES[family], discount=GAMMA)
    _check_game(game, S, SHAPES[family])
    assert float(game.discount) == pytest.approx(GAMMA)
    # Rewards really use the range (not all zero), and mu0 is the documented uniform default.
    assert np.abs(np.asarray(game.reward)).max() > 0.5
    np.testing.assert_allclose(game.initial, 1.0 / S)


def test_zero_sum_and_common_payoff_rewards():
    zs = games.zero_sum_game(KEY, num_states=S, num_actions=A2, discount=GAMMA)
    np.testing.assert_array_equal(zs.reward[0] + zs.reward[1], 0.0)  # exact
    cp = games.common_payoff_game(KEY, num_states=S, num_actions=A3, discount=GAMMA)
    for i in (1, 2):
        np.testing.assert_array_equal(cp.reward[i], cp.reward[0])
    assert float(jnp.std(cp.reward[0])) > 0.1
    # An int means both players, (A, A); the budget error names the shape (no compile needed).
    with pytest.raises(ValueError, match=r"\(10, 3, 3, 10\)"):
        games.zero_sum_game(KEY, num_states=10, num_actions=3, discount=GAMMA, max_bytes=1)


def test_vmap_over_keys_and_discounts_equals_a_loop():
    keys = jax.random.split(jax.random.key(1), 3)
    gammas = jnp.array([0.0, 0.5, 0.95])

    def make(key, gamma):
        return games.random_game(key, num_states=S, num_actions=A2, discount=gamma)

    batch = jax.vmap(make)(keys, gammas)
    assert isinstance(batch, jm.MarkovGame)
    assert batch.transition.shape == (3, S, *A2, S)
    np.testing.assert_array_equal(batch.discount, gammas)
    for b in range(3):
        one = make(keys[b], float(gammas[b]))
        for leaf_b, leaf in zip(jax.tree.leaves(batch), jax.tree.leaves(one)):
            np.testing.assert_allclose(leaf_b[b], leaf, rtol=1e-6, atol=1e-7)
    # Different keys give different games.
    assert float(jnp.abs(batch.reward[0] - batch.reward[1]).max()) > 0.1
    # vmap over the discount alone (a concrete key) leaves the tensors unbatched in value.
    by_gamma = jax.vmap(lambda g: make(KEY, g))(gammas)
    np.testing.assert_array_equal(by_gamma.discount, gammas)
    np.testing.assert_array_equal(by_gamma.transition[0], by_gamma.transition[2])


@pytest.mark.slow
def test_issue_example_batch_of_three_player_games_under_jit():
    keys = jax.random.split(jax.random.key(2), 4)

    @jax.jit
    def make(keys):
        return jax.vmap(
            lambda k: games.random_game(k, num_states=32, num_actions=(3, 3, 2), discount=0.95)
        )(keys)

    batch = make(keys)
    assert batch.transition.shape == (4, 32, 3, 3, 2, 32)
    assert batch.reward.shape == (4, 3, 32, 3, 3, 2)
    np.testing.assert_allclose(np.asarray(batch.transition).sum(-1), 1.0, atol=ROW_ATOL)
    # jit(vmap) == eager: the same game as an eager call with the same key.
    one = games.random_game(keys[3], num_states=32, num_actions=(3, 3, 2), discount=0.95)
    np.testing.assert_allclose(batch.transition[3], one.transition, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(batch.reward[3], one.reward, rtol=1e-6, atol=1e-7)


def test_branching_limits_the_support():
    k = 3
    game = games.random_game(KEY, num_states=S, num_actions=A2, discount=GAMMA, branching=k)
    _check_game(game, S, A2)
    support = np.count_nonzero(np.asarray(game.transition), axis=-1)
    # Dirichlet(1) weights are > 0 (module docstring): every row uses exactly k next states.
    np.testing.assert_array_equal(support, k)
    # The k states vary from row to row.
    assert len({tuple(np.flatnonzero(row)) for row in game.transition.reshape(-1, S)}) > 1


@pytest.mark.slow
def test_branching_concentration_and_dirichlet_initial_on_the_controller_family():
    # The options pass through the dominant families too (one compilation for all three).
    c = games.single_controller_dominant_game(
        KEY,
        num_states=S,
        num_actions=A2,
        discount=GAMMA,
        branching=2,
        concentration=0.2,
        initial="dirichlet",
    )
    _check_game(c.game, S, A2)
    assert bool(c.converged)
    assert np.count_nonzero(np.asarray(c.game.transition), axis=-1).max() <= 2
    assert float(jnp.std(c.game.initial)) > 0.0  # not the uniform default
    # Dirichlet(0.2) weights on 2 states are far from (1/2, 1/2): the larger one is usually
    # above 0.9 (here: on average over the rows above 0.75).
    assert float(jnp.mean(jnp.max(c.game.transition, axis=-1))) > 0.75


# ----------------------------------------------------------------------------------------------
# Dominant-strategy families.
# ----------------------------------------------------------------------------------------------


@jax.jit
def _gains(game, policies):
    """Best-response gains ``[B, n]`` of a batch of joint policies (``[B, S, A_i]`` leaves)."""
    return jax.vmap(lambda p: jm.nash_gap(game, p).gains)(policies)


CHUNK = 4096  # one batch size, one compilation


def _batched_gains(game, leaves):
    """Gains ``[B, n]`` of the joint policies ``leaves`` (``n`` arrays ``[B, S, A_i]``)."""
    count = len(leaves[0])
    out = []
    for start in range(0, count, CHUNK):
        chunk = [x[start : start + CHUNK] for x in leaves]
        pad = CHUNK - len(chunk[0])
        chunk = tuple(
            jnp.asarray(np.concatenate([x, np.repeat(x[-1:], pad, axis=0)]), game.dtype)
            for x in chunk
        )
        out.append(np.asarray(_gains(game, chunk)))
    return np.concatenate(out)[:count]


def _expert_gains(game, expert, player, others):
    """Player ``player``'s gains when it plays the expert against a batch of the others' policies.

    ``others``: ``n`` arrays ``[B, S, A_j]`` (entry ``player`` is ignored).
    """
    count = len(others[(player + 1) % len(others)])
    leaves = [
        np.broadcast_to(np.asarray(e), (count, *e.shape)) if j == player else others[j]
        for j, e in enumerate(expert)
    ]
    return _batched_gains(game, leaves)[:, player]


def _random_policies(rng, count):
    """``count`` random joint policies, from near-deterministic to near-uniform (NumPy, seeded)."""
    third = count // 3
    return [
        np.concatenate([rng.dirichlet(np.full(a, c), size=(third, S)) for c in (0.1, 1.0, 10.0)])
        for a in A3
    ]


def _dominant_instances():
    d = games.dominant_strategy_game(KEY, num_states=S, num_actions=A3, discount=GAMMA)
    c = games.single_controller_dominant_game(
        jax.random.key(3), num_states=S, num_actions=A3, discount=GAMMA, controller=1
    )
    assert bool(c.converged)
    return {"dominant": (d.game, d.expert), "controller": (c.game, c.expert)}


@pytest.fixture(scope="module")
def dominant_instances():
    return _dominant_instances()


@pytest.mark.parametrize("family", ["dominant", "controller"])
def test_dominant_expert_is_a_best_response_to_random_opponents(family, dominant_instances):
    game, expert = dominant_instances[family]
    for i, e in enumerate(expert):  # experts are one-hot policies
        assert e.shape == (S, A3[i])
        np.testing.assert_array_equal(jnp.sum(e, -1), 1.0)
        assert set(np.unique(np.asarray(e))) == {0.0, 1.0}
    others = _random_policies(np.random.default_rng(0), 600)
    for i in range(3):
        gains = _expert_gains(game, expert, i, others)
        assert np.abs(gains).max() <= GAIN_ATOL, (i, gains.max())
    # Not vacuous: the random policies themselves are exploitable.
    assert _batched_gains(game, others).max() > 0.1
    # The expert is an equilibrium (each part is dominant).
    assert np.abs(_batched_gains(game, [np.asarray(e)[None] for e in expert])).max() <= GAIN_ATOL


def _deterministic_policies(num_states, num_actions):
    """Every deterministic stationary policy, ``[A^S, S, A]``."""
    grid = itertools.product(range(num_actions), repeat=num_states)
    return np.eye(num_actions)[np.array(list(grid))]


@pytest.mark.parametrize("family", ["dominant", "controller"])
def test_dominant_expert_against_every_deterministic_opponent(family, dominant_instances):
    # docs/theory.md §4's certificate for small games: a best response to every deterministic
    # stationary policy of the others (2^5 * 3^5 = 7,776 profiles for players 0 and 2, 1,024
    # for player 1).
    game, expert = dominant_instances[family]
    tables = [_deterministic_policies(S, a) for a in A3]
    for i in range(3):
        others = [j for j in range(3) if j != i]
        index = np.array(list(itertools.product(*(range(len(tables[j])) for j in others))))
        batch = [None] * 3
        for column, j in enumerate(others):
            batch[j] = tables[j][index[:, column]]
        gains = _expert_gains(game, expert, i, batch)
        assert len(gains) == np.prod([len(tables[j]) for j in others])
        assert np.abs(gains).max() <= GAIN_ATOL, (i, gains.max())


def test_controller_family_has_action_dependent_transitions():
    c = games.single_controller_dominant_game(
        KEY, num_states=S, num_actions=A3, discount=GAMMA, controller=1
    )
    P = np.asarray(c.game.transition)  # [S, 2, 3, 2, S]
    # The controller (player 1) moves the state; players 0 and 2 do not.
    assert np.abs(P[:, :, 0] - P[:, :, 1]).max() > 0.1
    np.testing.assert_array_equal(P, np.broadcast_to(P[:, :1, :, :1], P.shape))
    # The controller's reward depends on its own action only; the others' on everyone's.
    R = np.asarray(c.game.reward)
    np.testing.assert_array_equal(R[1], np.broadcast_to(R[1][:, :1, :, :1], R[1].shape))
    assert np.abs(R[0, :, :, 0] - R[0, :, :, 1]).max() > 0.0  # player 0 feels the controller


@pytest.mark.slow
def test_controller_family_vmaps_over_keys_and_discounts():
    # vmap over (key, discount) pairs equals a loop. The controller plans (an MDP solution),
    # unlike the myopic argmax experts: for some keys its policy changes between gamma = 0 and
    # gamma = 0.99.
    def make(key, gamma):
        return games.single_controller_dominant_game(
            key, num_states=S, num_actions=A3, discount=gamma, controller=1
        )

    keys = jax.random.split(jax.random.key(5), 6)
    keys, gammas = jnp.concatenate([keys, keys]), jnp.repeat(jnp.array([0.0, 0.99]), 6)
    batch = jax.vmap(make)(keys, gammas)
    assert bool(jnp.all(batch.converged))
    for b in range(len(keys)):
        one = make(keys[b], float(gammas[b]))
        np.testing.assert_array_equal(batch.expert[1][b], one.expert[1])
        np.testing.assert_allclose(batch.game.transition[b], one.game.transition, rtol=1e-6)
    assert float(jnp.abs(batch.expert[1][:6] - batch.expert[1][6:]).max()) == 1.0


def test_dominant_family_transitions_ignore_actions_and_own_weight():
    d = games.dominant_strategy_game(
        KEY, num_states=S, num_actions=A3, discount=GAMMA, own_weight=0.8
    )
    P = np.asarray(d.game.transition)
    np.testing.assert_array_equal(P, np.broadcast_to(P[:, :1, :1], P.shape))
    # own_weight = 0.8: |u| <= 0.8, |w| <= 0.2; the reward spread across a player's own
    # actions (at fixed a_-i) is the spread of u, up to 1.6.
    R = np.asarray(d.game.reward)
    spread = R[0].max(axis=1) - R[0].min(axis=1)
    assert spread.max() <= 1.6 + 1e-6
    assert np.abs(R).max() <= 1.0


# ----------------------------------------------------------------------------------------------
# Memory budget and bad parameters.
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", list(FAMILIES))
def test_memory_budget(family):
    # 10 * 10 * 2 * 2 float32 entries = 1,600 bytes > 1,000.
    with pytest.raises(ValueError, match=r"1600 bytes.*max_bytes = 1000"):
        FAMILIES[family](KEY, num_states=10, num_actions=(2, 2), discount=GAMMA, max_bytes=1000)
    # The default budget (4 GiB) refuses a huge request before allocating anything:
    # 10^5 * 10^5 * 25 * 4 bytes = 10^12 bytes.
    with pytest.raises(ValueError, match="1000000000000 bytes"):
        FAMILIES[family](KEY, num_states=100_000, num_actions=(5, 5), discount=GAMMA)


def test_memory_budget_counts_float64(x64):
    with pytest.raises(ValueError, match="3200 bytes"):
        games.random_game(KEY, num_states=10, num_actions=(2, 2), discount=GAMMA, max_bytes=3000)


BAD = [
    ({"num_states": 0}, "num_states"),
    ({"num_states": 2.0}, "num_states"),
    ({"num_actions": ()}, "num_actions"),
    ({"num_actions": (2, 0)}, r"num_actions\[1\]"),
    ({"num_actions": 3}, "num_actions"),
    ({"discount": 1.0}, "discount"),
    ({"discount": -0.1}, "discount"),
    ({"discount": float("nan")}, "discount"),
    ({"discount": np.array([0.5, 0.6])}, "discount"),
    ({"branching": 0}, "branching"),
    ({"branching": S + 1}, "branching"),
    ({"concentration": 0.0}, "concentration"),
    ({"concentration": jnp.array(1.0)}, "concentration"),
    ({"initial": "peaked"}, "initial"),
]


BAD_CASES = [
    pytest.param(family, change, match, id=f"{family}-{match}")
    for family in FAMILIES
    for change, match in BAD
    # An int action count is valid for the two-player zero-sum family: (A, A).
    if not (family == "zero_sum" and change.get("num_actions") == 3)
]


@pytest.mark.parametrize("family, change, match", BAD_CASES)
def test_bad_parameters_raise(family, change, match):
    kwargs = {"num_states": S, "num_actions": A2, "discount": GAMMA, **change}
    with pytest.raises(ValueError, match=match):
        FAMILIES[family](KEY, **kwargs)


@pytest.mark.parametrize(
    "make, kwargs, match",
    [
        (games.zero_sum_game, {"num_actions": (2, 2, 2)}, "2 players"),
        (games.dominant_strategy_game, {"own_weight": 1.5}, "own_weight"),
        (games.single_controller_dominant_game, {"own_weight": -0.1}, "own_weight"),
        (games.single_controller_dominant_game, {"controller": 2}, "controller"),
        (games.single_controller_dominant_game, {"controller": True}, "controller"),
    ],
)
def test_family_specific_bad_parameters(make, kwargs, match):
    kwargs = {"num_states": S, "num_actions": A2, "discount": GAMMA, **kwargs}
    with pytest.raises(ValueError, match=match):
        make(KEY, **kwargs)


# ----------------------------------------------------------------------------------------------
# One random stream whatever the dtype.
# ----------------------------------------------------------------------------------------------

# Both games come from the same float32 draws. The float64 game then differs from the float32
# one only by float32 rounding of the arithmetic after the draw: a transition entry
# e_j / sum_k e_k with e = -log u carries a few ulps of relative error (eps_32 = 1.2e-7), so 8
# eps_32 bounds it for entries <= 1; a reward 2u - 1 in [-1, 1] is rounded at most once (one
# ulp of 1, eps_32). Before the fix the float64 game was drawn from 64-bit uniforms: R differed
# by up to 1.84 and P by up to 0.72 for these keys.
EPS32 = float(np.finfo(np.float32).eps)


@pytest.mark.parametrize(
    "family, options",
    [
        ("random", {}),
        pytest.param(  # top-k support, Dirichlet mu0 (its own compilation: in the full suite)
            "random", {"branching": 2, "initial": "dirichlet"}, marks=pytest.mark.slow
        ),
        pytest.param(  # the gamma sampler compiles for tens of seconds on a loaded CPU
            "random", {"concentration": 0.2}, marks=pytest.mark.slow, id="random-dirichlet0.2"
        ),
        ("dominant", {}),  # separable rewards; the controller family shares these samplers
    ],
)
def test_same_key_gives_the_same_game_in_float32_and_float64(family, options):
    kwargs = {"num_states": S, "num_actions": SHAPES[family], "discount": GAMMA, **options}
    g32 = FAMILIES[family](KEY, **kwargs)
    with jax.enable_x64(True):
        g64 = FAMILIES[family](KEY, **kwargs)
        assert g64.dtype == jnp.float64
        # float64 rows sum to 1 to float64 rounding (the normalisation is done in float64).
        np.testing.assert_allclose(np.asarray(g64.transition).sum(-1), 1.0, rtol=0, atol=1e-12)
    assert g32.dtype == jnp.float32
    P32, P64 = (np.asarray(g.transition, np.float64) for g in (g32, g64))
    np.testing.assert_allclose(P64, P32, rtol=0, atol=8 * EPS32)
    np.testing.assert_array_equal(P64 > 0, P32 > 0)  # the same sparse support
    np.testing.assert_allclose(np.asarray(g64.reward), g32.reward, rtol=0, atol=EPS32)
    np.testing.assert_allclose(np.asarray(g64.initial), g32.initial, rtol=0, atol=8 * EPS32)
