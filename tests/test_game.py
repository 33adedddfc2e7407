"""MarkovGame (jaxmail/game.py): construction, sizes, dtypes, pytree behaviour, files, replace.

Bad inputs and their error messages are in test_errors.py.
"""

import dataclasses
import os

import helpers as h
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference as ref

import jaxmail as jm


@pytest.mark.parametrize(
    "S, acts", [(1, (2, 3)), (4, (2, 3)), (3, (3, 2, 2)), (2, (2, 2, 3, 2)), (3, (4,))]
)
def test_sizes_are_read_from_shapes(S, acts):
    P, R, mu0, _ = h.instance(0, S, acts)
    game = h.make_game(P, R, mu0, 0.9)
    assert game.num_players == len(acts)
    assert game.num_states == S
    assert game.num_actions == acts
    assert isinstance(game.num_actions, tuple)
    assert game.num_joint_actions == int(np.prod(acts))
    assert game.transition.shape == (S, *acts, S)
    assert game.reward.shape == (len(acts), S, *acts)
    assert game.initial.shape == (S,)
    assert game.discount.shape == ()
    # The leaves hold the given numbers (rounded to float32 by default).
    np.testing.assert_allclose(game.transition, P, rtol=1e-6)
    np.testing.assert_allclose(game.reward, R, rtol=1e-6)
    np.testing.assert_allclose(game.initial, mu0, rtol=1e-6)
    assert float(game.discount) == pytest.approx(0.9)
    text = repr(game)
    assert f"num_players={len(acts)}" in text and f"num_actions={acts}" in text


def test_float32_by_default():
    P, R, mu0, _ = h.instance(0, 3, (2, 3))
    game = h.make_game(P, R, mu0, 0.9)  # float64 NumPy input
    for leaf in jax.tree_util.tree_leaves(game):
        assert leaf.dtype == jnp.float32
    assert game.dtype == jnp.float32
    # Integer and Python-scalar inputs are cast too.
    game = jm.MarkovGame(
        transition=np.ones((1, 2, 1), dtype=np.int64),  # one player, two actions
        reward=np.zeros((1, 1, 2), dtype=np.int32),
        initial=[1],
        discount=0,
    )
    assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(game)} == {jnp.dtype(jnp.float32)}


def test_float64_under_x64(x64):
    P, R, mu0, _ = h.instance(0, 3, (2, 3))
    game = h.make_game(P, R.astype(np.float32), mu0, 0.9)  # even from float32 input
    for leaf in jax.tree_util.tree_leaves(game):
        assert leaf.dtype == jnp.float64
    np.testing.assert_array_equal(game.transition, P)  # float64 in, exactly
    np.testing.assert_array_equal(game.reward, R.astype(np.float32))
    # Evaluation results follow the game's dtype.
    assert jm.values(game, jm.uniform_policy(game)).dtype == jnp.float64
    assert jm.uniform_policy(game)[0].dtype == jnp.float64


def test_game_is_frozen():
    game = h.matrix_game(np.stack([np.eye(2), -np.eye(2)]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        game.discount = 0.5


# ---------------------------------------------------------------------------------------------
# Pytree.
# ---------------------------------------------------------------------------------------------


def test_pytree_round_trip():
    P, R, mu0, _ = h.instance(1, 3, (3, 2, 2))
    game = h.make_game(P, R, mu0, 0.8)
    leaves, treedef = jax.tree_util.tree_flatten(game)
    assert len(leaves) == 4
    np.testing.assert_array_equal(leaves[0], game.transition)
    np.testing.assert_array_equal(leaves[1], game.reward)
    np.testing.assert_array_equal(leaves[2], game.initial)
    np.testing.assert_array_equal(leaves[3], game.discount)
    again = jax.tree_util.tree_unflatten(treedef, leaves)
    assert type(again) is jm.MarkovGame
    for a, b in zip(jax.tree_util.tree_leaves(again), leaves, strict=True):
        assert a is b
    assert again.num_actions == (3, 2, 2)
    # tree_map gives a game too (e.g. a dtype cast), and jit passes games in and out.
    doubled = jax.tree_util.tree_map(lambda x: 2 * x, game)
    assert type(doubled) is jm.MarkovGame
    np.testing.assert_allclose(doubled.reward, 2 * game.reward)
    out = jax.jit(lambda g: g)(game)
    assert type(out) is jm.MarkovGame
    np.testing.assert_array_equal(out.transition, game.transition)


def test_vmap_builds_a_batched_game():
    B, S, acts = 3, 4, (2, 3)
    games = [h.instance(seed, S, acts)[:3] for seed in range(B)]
    # jnp inputs: JAX's vmap hands a function that returns its (already float32-typed) input
    # back unconverted, so NumPy float64 inputs would come back as NumPy float64 leaves.
    Ps, Rs, mus = (jnp.stack([g[k] for g in games]) for k in range(3))
    gammas = jnp.array([0.5, 0.9, 0.99])

    def build(P, R, mu0, gamma):
        return jm.MarkovGame(transition=P, reward=R, initial=mu0, discount=gamma)

    batch = jax.vmap(build)(Ps, Rs, mus, gammas)
    assert type(batch) is jm.MarkovGame
    assert batch.transition.shape == (B, S, *acts, S)
    assert batch.reward.shape == (B, 2, S, *acts)
    assert batch.initial.shape == (B, S)
    assert batch.discount.shape == (B,)
    assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(batch)} == {jnp.dtype(jnp.float32)}
    for b in range(B):
        one = jax.tree_util.tree_map(lambda x, b=b: x[b], batch)
        np.testing.assert_allclose(one.transition, Ps[b], rtol=1e-6)
        np.testing.assert_allclose(one.reward, Rs[b], rtol=1e-6)
        assert float(one.discount) == pytest.approx(gammas[b])
        assert one.num_actions == acts
    # Stacking games' leaves gives the same batch.
    stacked = jax.tree_util.tree_map(
        lambda *xs: jnp.stack(xs), *(build(*g, gm) for g, gm in zip(games, gammas, strict=True))
    )
    for a, b in zip(
        jax.tree_util.tree_leaves(stacked), jax.tree_util.tree_leaves(batch), strict=True
    ):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------------
# Files.
# ---------------------------------------------------------------------------------------------


def test_save_and_load_round_trip(x64, tmp_path):
    P, R, mu0, _ = h.instance(2, 3, (2, 3), 0.95)
    game = h.make_game(P, R, mu0, 0.95)
    path = tmp_path / "game.npz"
    jm.save_game(path, game)
    assert sorted(os.listdir(tmp_path)) == ["game.npz"]  # no temporary file left behind
    loaded = jm.load_game(path)
    assert type(loaded) is jm.MarkovGame
    for name in ("transition", "reward", "initial", "discount"):
        got, want = getattr(loaded, name), getattr(game, name)
        assert got.dtype == jnp.float64 and got.shape == want.shape
        np.testing.assert_array_equal(got, want, err_msg=name)  # float64: bit for bit
    # A str path works too, and the file is plain npz without pickles.
    jm.save_game(str(tmp_path / "again.npz"), loaded)
    with np.load(tmp_path / "again.npz", allow_pickle=False) as data:
        assert set(data.files) == {"transition", "reward", "initial", "discount", "format"}
        np.testing.assert_array_equal(data["reward"], R)


def test_save_and_load_float32(tmp_path):
    P, R, mu0, _ = h.instance(3, 2, (3, 2), 0.9)
    game = h.make_game(P, R, mu0, 0.9)
    jm.save_game(tmp_path / "g.npz", game)
    loaded = jm.load_game(tmp_path / "g.npz")
    assert loaded.dtype == jnp.float32
    for a, b in zip(
        jax.tree_util.tree_leaves(loaded), jax.tree_util.tree_leaves(game), strict=True
    ):
        np.testing.assert_array_equal(a, b)


def test_float32_data_is_accepted_under_x64(tmp_path):
    # A game saved without x64 holds float32 rows, which sum to 1 only to ~1e-7 in float64:
    # more than the float64 tolerance (1e-8), within the float32 one (1e-4) it was made with.
    P, R, mu0, policy = h.instance(6, 16, (2, 3), 0.9)
    game32 = h.make_game(P, R, mu0, 0.9)
    jm.save_game(tmp_path / "g32.npz", game32)
    P32 = np.asarray(game32.transition)
    policy32 = tuple(p.astype(np.float32) for p in policy)
    # Preconditions: the float32 data really is off by more than 1e-8 somewhere.
    assert np.abs(P32.sum(-1, dtype=np.float64) - 1).max() > 1e-8
    assert max(np.abs(p.sum(-1, dtype=np.float64) - 1).max() for p in policy32) > 1e-8
    with jax.enable_x64(True):
        loaded = jm.load_game(tmp_path / "g32.npz")
        assert loaded.dtype == jnp.float64
        np.testing.assert_array_equal(loaded.transition, P32)  # float32 values, exactly
        # float32 arrays given directly, and float32 policies for a float64 game, likewise.
        direct = h.make_game(P32, np.asarray(game32.reward), np.asarray(game32.initial), 0.9)
        v = jm.values(direct, policy32)
        assert v.dtype == jnp.float64
        # Float64 data is still held to the float64 tolerance.
        P_bad = P.copy()
        P_bad[0, 0, 0, 0] += 1e-6
        with pytest.raises(ValueError, match="transition: rows must sum to 1 within 1e-08"):
            h.make_game(P_bad, R, mu0, 0.9)
        bad = (policy[0] * (1 + 1e-6), policy[1])
        with pytest.raises(ValueError, match=r"policy\[0\]: rows must sum to 1 within 1e-08"):
            jm.values(direct, bad)


def test_load_rejects_a_file_that_is_not_a_game(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, weights=np.ones(3), bias=np.zeros(1))
    with pytest.raises(ValueError, match=r"not a jaxmail game file; missing \["):
        jm.load_game(path)
    # The right keys but another format tag.
    game = h.matrix_game(np.stack([np.eye(2), -np.eye(2)]))
    arrays = {
        f: np.asarray(getattr(game, f)) for f in ("transition", "reward", "initial", "discount")
    }
    np.savez(path, format=np.asarray("something/2"), **arrays)
    with pytest.raises(ValueError, match="unknown format 'something/2'"):
        jm.load_game(path)


def test_load_validates_the_game(tmp_path):
    game = h.matrix_game(np.stack([np.eye(2), -np.eye(2)]))
    arrays = {
        f: np.asarray(getattr(game, f)) for f in ("transition", "reward", "initial", "discount")
    }
    arrays["transition"] = arrays["transition"] * 0.5  # rows sum to 0.5
    np.savez(tmp_path / "bad.npz", format=np.asarray("jaxmail.MarkovGame/1"), **arrays)
    with pytest.raises(ValueError, match="transition: rows must sum to 1"):
        jm.load_game(tmp_path / "bad.npz")


def test_save_rejects_a_bad_path_or_a_batch(tmp_path):
    game = h.matrix_game(np.stack([np.eye(2), -np.eye(2)]))
    with pytest.raises(ValueError, match=r"path: .*\.npz"):
        jm.save_game(tmp_path / "game.bin", game)
    batch = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), game, game)
    with pytest.raises(ValueError, match="one game; got a batch"):
        jm.save_game(tmp_path / "batch.npz", batch)
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# replace().
# ---------------------------------------------------------------------------------------------


def test_replace_returns_a_validated_copy():
    P, R, mu0, _ = h.instance(4, 3, (2, 3))
    game = h.make_game(P, R, mu0, 0.9)
    other = game.replace(discount=0.5)
    assert type(other) is jm.MarkovGame and other is not game
    assert float(other.discount) == 0.5 and float(game.discount) == pytest.approx(0.9)
    assert other.transition is game.transition  # untouched fields are shared
    assert other.discount.dtype == jnp.float32 and other.discount.shape == ()
    R2 = -R
    flipped = game.replace(reward=R2)
    np.testing.assert_allclose(flipped.reward, R2, rtol=1e-6)
    np.testing.assert_allclose(game.reward, R, rtol=1e-6)
    # The copy is validated like a new game.
    with pytest.raises(ValueError, match="discount"):
        game.replace(discount=1.0)
    with pytest.raises(ValueError, match="initial"):
        game.replace(initial=np.ones(2) / 2)
    with pytest.raises(TypeError, match="unexpected keyword"):
        game.replace(gamma=0.5)


def test_replaced_game_gives_the_reference_values(x64):
    P, R, mu0, policy = h.instance(5, 3, (2, 3), 0.9)
    game = h.make_game(P, R, mu0, 0.9).replace(discount=0.6)
    np.testing.assert_allclose(
        jm.values(game, policy), ref.values(P, R, 0.6, policy), rtol=0, atol=1e-9 / (1 - 0.6)
    )


# ---------------------------------------------------------------------------------------------
# Batches of games (issue 13, items 10 and 18).
# ---------------------------------------------------------------------------------------------


def _stack(games):
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *games)


def _games(count, S=3, acts=(2, 2)):
    return [h.make_game(*h.instance(seed, S, acts)[:3], 0.9) for seed in range(count)]


def test_a_batch_knows_it_is_a_batch():
    one = _games(1)[0]
    batch = _stack(_games(16))
    assert one.batch_shape == () and batch.batch_shape == (16,)
    grid = jax.tree_util.tree_map(lambda x: x.reshape((4, 4) + x.shape[1:]), batch)
    assert grid.batch_shape == (4, 4)
    for name in ("num_players", "num_states", "num_actions", "num_joint_actions"):
        with pytest.raises(ValueError, match=r"^num_\w+ is defined for one game; a batch of 16 "):
            getattr(batch, name)
        with pytest.raises(ValueError, match=r"a batch of 16 games \(batch_shape \(4, 4\)\)"):
            getattr(grid, name)
    # Under vmap the function sees one game, and the properties work.
    sizes = jax.vmap(lambda g: jnp.asarray(g.num_states * g.num_players))(batch)
    np.testing.assert_array_equal(sizes, np.full(16, 3 * 2))
    assert repr(batch).startswith("MarkovGame(batch_shape=(16,), num_players=2, num_states=3,")


@pytest.mark.parametrize("size", [4, 3])  # 4 = a "4-player" reading; 3 = S, broadcasts silently
def test_kernels_refuse_a_batch_and_say_vmap(size):
    batch = _stack(_games(size))
    one = _games(1)[0]
    policy = jm.uniform_policy(one)
    pattern = rf"^game: this function takes one game; got a batch of {size} games .*jax\.vmap"
    for call in (
        lambda: jm.nash_gap(batch, policy),
        lambda: jm.evaluate(batch, policy),
        lambda: jm.values(batch, policy),
        lambda: jm.best_response(batch, policy, 0),
        lambda: jm.uniform_policy(batch),
        lambda: jm.check_policy(batch, policy),
        lambda: jm.data.check_dataset(batch, _one_dataset()),
    ):
        with pytest.raises(ValueError, match=pattern):
            call()


def _one_dataset():
    return jm.data.Dataset(
        states=np.zeros((1, 2), np.int32),
        actions=np.zeros((1, 2, 2), np.int32),
        mask=np.ones((1, 2), bool),
        weights=np.ones((1, 2)),
    )


def test_replace_works_on_a_batch():
    games = _games(4)
    batch = _stack(games)
    shared = batch.replace(discount=0.5)  # one value for every game
    assert shared.batch_shape == (4,) and shared.discount.dtype == jnp.float32
    np.testing.assert_array_equal(shared.discount, np.full(4, 0.5, np.float32))
    assert shared.transition is batch.transition  # untouched leaves are shared
    each = batch.replace(discount=jnp.array([0.1, 0.2, 0.3, 0.4]))
    expected = _stack([g.replace(discount=d) for g, d in zip(games, [0.1, 0.2, 0.3, 0.4])])
    for a, b in zip(jax.tree_util.tree_leaves(each), jax.tree_util.tree_leaves(expected)):
        np.testing.assert_array_equal(a, b)
    rewards = batch.replace(reward=-games[0].reward)
    np.testing.assert_array_equal(rewards.reward, np.stack([-games[0].reward] * 4))
    # Validated like new games: the bad game is named.
    with pytest.raises(
        ValueError, match=r"discount: must lie in \[0, 1\), got 1.5 \(in game \(2,\)"
    ):
        batch.replace(discount=jnp.array([0.1, 0.2, 1.5, 0.4]))
    P = np.array(batch.transition)
    P[1, 0, 1, 0] += 0.1
    with pytest.raises(ValueError, match=r"transition: rows must sum to 1.*\(in game \(1,\)"):
        batch.replace(transition=P)
    with pytest.raises(ValueError, match=r"discount: for a batch of 4 games .* got shape \(3,\)"):
        batch.replace(discount=jnp.ones(3) / 2)
    with pytest.raises(TypeError, match="unexpected keyword argument 'gamma'"):
        batch.replace(gamma=0.5)
    # Under jit (traced values): the structure is checked, the values trusted.
    out = jax.jit(lambda b, d: b.replace(discount=d))(batch, jnp.full(4, 0.7))
    np.testing.assert_allclose(out.discount, 0.7)


# ---------------------------------------------------------------------------------------------
# Narrow float input (issue 13, item 12).
# ---------------------------------------------------------------------------------------------


def test_float16_and_bfloat16_input_is_accepted_with_its_own_tolerance():
    P, R, mu0, _ = h.instance(6, 3, (2, 3))
    for dtype in (jnp.float16, jnp.bfloat16):
        game = jm.MarkovGame(
            transition=jnp.asarray(P, dtype),
            reward=jnp.asarray(R, dtype),
            initial=jnp.asarray(mu0, dtype),
            discount=jnp.asarray(0.9, dtype),
        )
        assert game.dtype == jnp.float32
        # The narrow values, cast exactly to float32 (both are subsets of float32).
        np.testing.assert_array_equal(game.transition, jnp.asarray(P, dtype).astype(jnp.float32))
    # 1/3 in float16 is 0.33325195, so three of them sum to 0.99975586: off by 2.4e-4, above
    # float32's 1e-4 and below float16's K eps = 3 * 2**-10 = 2.9e-3.
    third = np.full((1, 1, 3), 1 / 3, np.float16)
    assert abs(float(third.astype(np.float64).sum()) - 1) > 1e-4
    game = jm.MarkovGame(
        transition=np.ones((1, 3, 1)), reward=np.zeros((1, 1, 3)), initial=np.ones(1), discount=0.5
    )
    policy = (third[0],)
    assert jm.check_policy(game, policy)[0].dtype == jnp.float32
    with pytest.raises(
        ValueError, match=r"policy\[0\]: rows must sum to 1 within 0\.00292969; worst row \(s=0\)"
    ):
        jm.check_policy(game, (np.array([[0.3, 0.3, 0.3]], np.float16),))  # off by 0.1


def test_float8_is_refused_naming_the_dtype():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    P, R, mu0, _ = h.instance(6, 3, (2, 3))
    with pytest.raises(
        TypeError,
        match=r"transition: dtype float8_e4m3fn is too narrow .*supported: float16, bfloat16",
    ):
        jm.MarkovGame(
            transition=P.astype(ml_dtypes.float8_e4m3fn), reward=R, initial=mu0, discount=0.9
        )
