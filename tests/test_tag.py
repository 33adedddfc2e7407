"""Tests of the Tag game (jaxmail/games/tag_game.py; docs/theory.md §5).

The 2x3 grid used by the hand-checked cases, cells numbered ``row * cols + col``::

    0 1 2
    3 4 5

Moves: 0 up, 1 down, 2 left, 3 right (4 stay with ``allow_stay``). Two-player states are
``s = (cell_0 * 6 + cell_1) * 2 + tagger``; three-player ``s = ((c0 * 6 + c1) * 6 + c2) * 3 + t``.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmail as jm
from jaxmail.games.tag_game import DEFAULT_MAX_BYTES, TagLayout, _rewards, _Step, tag

UP, DOWN, LEFT, RIGHT, STAY = range(5)
ATOL = 1e-6  # float32 rewards built from constants like 0.1 / (n - 1)


# ----------------------------------------------------------------------------------------------
# An independent, slow reference: Python loops over states and joint moves, the rules as written
# in the module docstring, the state numbering taken from itertools.product's order.
# ----------------------------------------------------------------------------------------------


MOVES = [(-1, 0), (1, 0), (0, -1), (0, 1), (0, 0)]  # (d_row, d_col): up, down, left, right, stay


def reference_step(
    rows,
    cols,
    cells,
    t,
    a,
    *,
    step_cost=0.1,
    off_grid_cost=0.1,
    tag_bonus=0.0,
    zero_sum=True,
    evade_reward=0.0,
    allow_stay=False,
    swap_is_tag=False,
):
    """One step from ``(cells, tagger t)`` under joint move ``a``: ``(new cells, new tagger,
    rewards)``, by the rules of the module docstring of jaxmail/games/tag_game.py."""
    n = len(cells)
    assert allow_stay or STAY not in a
    new, off = [], []
    for i in range(n):
        r, c = divmod(cells[i], cols)
        dr, dc = MOVES[a[i]]
        if 0 <= r + dr < rows and 0 <= c + dc < cols:
            new.append((r + dr) * cols + (c + dc))
            off.append(False)
        else:
            new.append(cells[i])
            off.append(True)
    caught = [
        j
        for j in range(n)
        if j != t
        and (new[j] == new[t] or (swap_is_tag and new[j] == cells[t] and new[t] == cells[j]))
    ]
    new_t = min(caught) if caught else t
    r = [0.0] * n
    if zero_sum:
        r[t] -= step_cost
        for j in range(n):
            if j != t:
                r[j] += step_cost / (n - 1)
        for i in range(n):
            if off[i]:
                r[i] -= off_grid_cost
                for j in range(n):
                    if j != i:
                        r[j] += off_grid_cost / (n - 1)
        if caught:
            r[t] += tag_bonus
            r[new_t] -= tag_bonus
    else:
        for i in range(n):
            r[i] = -step_cost if i == t else evade_reward
            if off[i]:
                r[i] -= off_grid_cost
        if caught:
            r[t] += tag_bonus
    return tuple(new), new_t, r


def reference_states(rows, cols, n):
    """All states ``(c_0, ..., c_{n-1}, tagger)`` in index order (itertools.product's order)."""
    return list(itertools.product(*[range(rows * cols)] * n, range(n)))


def reference_tag(rows, cols, n, **kwargs):
    """``(P [S, A..A, S] float32, R [n, S, A..A] float64, corner support [S] bool)`` by loops."""
    num_actions = 5 if kwargs.get("allow_stay") else 4
    states = reference_states(rows, cols, n)
    index = {state: k for k, state in enumerate(states)}
    num_states = len(states)
    P = np.zeros((num_states, *[num_actions] * n, num_states), dtype=np.float32)  # exact 0/1
    R = np.zeros((n, num_states, *[num_actions] * n))
    for k, (*cells, t) in enumerate(states):
        for a in itertools.product(range(num_actions), repeat=n):
            new, new_t, r = reference_step(rows, cols, cells, t, a, **kwargs)
            P[(k, *a, index[(*new, new_t)])] = 1.0
            R[(slice(None), k, *a)] = r
    corners = {0, cols - 1, (rows - 1) * cols, rows * cols - 1}
    support = np.array(
        [len(set(cells)) == n and set(cells) <= corners for *cells, _ in states], dtype=bool
    )
    return P, R, support


REFERENCE_CASES = [
    # (rows, cols, n, keyword arguments)
    (2, 2, 2, {}),
    (2, 3, 2, {}),
    (3, 4, 2, {}),
    (1, 3, 2, {"tag_bonus": 0.3}),
    (2, 3, 2, {"swap_is_tag": True, "allow_stay": True, "tag_bonus": 0.5}),
    (2, 3, 2, {"zero_sum": False, "evade_reward": 0.05, "tag_bonus": 0.2}),
    (2, 2, 3, {}),
    (2, 3, 3, {"tag_bonus": 0.3, "swap_is_tag": True}),
    (2, 2, 3, {"zero_sum": False, "off_grid_cost": 0.2, "allow_stay": True}),
    (1, 4, 3, {"initial": "distinct"}),  # a line has 2 corners: too few for 3 players
]


@pytest.mark.parametrize("rows, cols, n, kwargs", REFERENCE_CASES)
def test_matches_loop_reference(rows, cols, n, kwargs):
    game = tag(rows, cols, num_players=n, **kwargs)
    kwargs = dict(kwargs)
    initial = kwargs.pop("initial", "corners")
    P, R, support = reference_tag(rows, cols, n, **kwargs)
    assert game.transition.shape == P.shape
    np.testing.assert_array_equal(np.asarray(game.transition), P)
    np.testing.assert_allclose(np.asarray(game.reward), R, atol=ATOL, rtol=0)
    if initial == "corners":
        np.testing.assert_allclose(np.asarray(game.initial), support / support.sum(), atol=1e-7)


@pytest.mark.parametrize("kwargs", [{"step_cost": 0.3, "tag_bonus": 0.1}, {"swap_is_tag": True}])
def test_four_players_sampled_against_reference(kwargs):
    # Four players need at least 4 cells, so the dense tensor is at least 1024 * 256 * 1024
    # floats (1 GiB; 27 GiB on 2x3). Check the vectorised index and reward arrays that `tag`
    # turns into the tensors instead, on a seeded sample of (state, joint move) pairs.
    rows, cols, n = 2, 3, 4
    layout = TagLayout(rows, cols, n)
    step = _Step(layout, kwargs.get("swap_is_tag", False))
    reward = _rewards(
        layout,
        step,
        step_cost=kwargs.get("step_cost", 0.1),
        off_grid_cost=0.1,
        tag_bonus=kwargs.get("tag_bonus", 0.0),
        zero_sum=True,
        evade_reward=0.0,
    )
    next_state = step.next_state.reshape(layout.num_states, *[4] * n)
    reward = reward.reshape(n, layout.num_states, *[4] * n)
    states = reference_states(rows, cols, n)
    rng = np.random.default_rng(0)
    for k, a in zip(rng.integers(len(states), size=2000), rng.integers(4, size=(2000, n))):
        *cells, t = states[k]
        new, new_t, r = reference_step(rows, cols, cells, t, tuple(a), **kwargs)
        assert states[next_state[(k, *a)]] == (*new, new_t)
        np.testing.assert_allclose(reward[(slice(None), k, *a)], r, atol=1e-12)
    with pytest.raises(ValueError, match=r"\[5184, 4, 4, 4, 4, 5184\]"):
        tag(rows, cols, num_players=n)


# ----------------------------------------------------------------------------------------------
# The paper's game: sizes, distributions, zero sum, initial distribution.
# ----------------------------------------------------------------------------------------------


def test_default_game_sizes():
    game = tag()
    assert game.num_states == 72  # 6 cells * 6 cells * 2 taggers
    assert game.num_players == 2
    assert game.num_actions == (4, 4)
    assert game.transition.shape == (72, 4, 4, 72)
    assert game.reward.shape == (2, 72, 4, 4)
    assert game.dtype == jnp.result_type(float)
    np.testing.assert_allclose(float(game.discount), 0.8, rtol=1e-7)
    layout = TagLayout(2, 3)
    assert layout.num_states == 72 and layout.transition_shape == (72, 4, 4, 72)


@pytest.mark.parametrize("rows, cols, n", [(2, 3, 2), (2, 2, 3)])
def test_rows_are_one_hot_distributions(rows, cols, n):
    game = tag(
        rows, cols, num_players=n, validate=True
    )  # the constructor's full value check passes
    P = np.asarray(game.transition)
    assert set(np.unique(P)) <= {0.0, 1.0}
    np.testing.assert_array_equal(P.sum(-1), 1.0)
    jm.MarkovGame(game.transition, game.reward, game.initial, game.discount)  # re-validates
    unchecked = tag(rows, cols, num_players=n)  # the default skips the redundant full scan
    for a, b in zip(jax.tree_util.tree_leaves(game), jax.tree_util.tree_leaves(unchecked)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        assert a.dtype == b.dtype


@pytest.mark.parametrize("n, kwargs", [(2, {}), (2, {"tag_bonus": 0.5}), (3, {"tag_bonus": 0.2})])
def test_zero_sum(n, kwargs):
    game = tag(2, 3, num_players=n, swap_is_tag=True, **kwargs)
    np.testing.assert_allclose(np.asarray(game.reward).sum(0), 0.0, atol=ATOL)


def test_general_sum_is_not_zero_sum():
    game = tag(zero_sum=False)
    total = np.asarray(game.reward).sum(0)
    assert np.abs(total).max() > 0.05  # off-grid costs are burned, evaders earn evade_reward=0
    # Tagger 0 at cell 0, evader 1 at cell 5 (s = (0*6+5)*2+0 = 10); tagger moves up into the
    # wall (off grid), evader moves left: tagger -0.1 step -0.1 off-grid, evader 0.
    np.testing.assert_allclose(np.asarray(game.reward[:, 10, UP, LEFT]), [-0.2, 0.0], atol=ATOL)
    game = tag(zero_sum=False, evade_reward=0.1, tag_bonus=0.5)
    np.testing.assert_allclose(np.asarray(game.reward[:, 10, UP, LEFT]), [-0.2, 0.1], atol=ATOL)
    # A tag (s = 4: tagger 0 at cell 0, evader at 2; right/left meet in cell 1): the old tagger
    # gets the bonus, the caught evader pays nothing.
    np.testing.assert_allclose(np.asarray(game.reward[:, 4, RIGHT, LEFT]), [0.4, 0.1], atol=ATOL)


def test_initial_distribution_corners():
    game = tag()
    mu0 = np.asarray(game.initial)
    corners = [0, 2, 3, 5]
    support = {
        (c0 * 6 + c1) * 2 + t for c0 in corners for c1 in corners if c0 != c1 for t in (0, 1)
    }
    assert len(support) == 24  # 4 * 3 ordered corner pairs x 2 taggers
    assert set(np.flatnonzero(mu0)) == support
    np.testing.assert_allclose(mu0[sorted(support)], 1 / 24, rtol=1e-6)


def test_initial_distribution_options():
    layout = TagLayout(2, 3)
    distinct = np.asarray(tag(initial="distinct").initial)
    assert np.count_nonzero(distinct) == 6 * 5 * 2
    cells, _ = layout.decode_state(np.flatnonzero(distinct))
    assert np.all(cells[0] != cells[1])
    np.testing.assert_allclose(np.asarray(tag(initial="all").initial), 1 / 72, rtol=1e-6)
    mu0 = np.zeros(72)
    mu0[layout.encode_state((0, 5), 0)] = 1.0
    np.testing.assert_array_equal(np.asarray(tag(initial=mu0).initial), mu0)
    # A line has only 2 corners: three players cannot start on distinct corners.
    with pytest.raises(ValueError, match="initial: a 1x4 grid has 2 distinct corner"):
        tag(1, 4, num_players=3)
    assert np.count_nonzero(np.asarray(tag(1, 4, num_players=3, initial="distinct").initial))


# ----------------------------------------------------------------------------------------------
# Hand-checked transitions on the 2x3 grid.
# ----------------------------------------------------------------------------------------------


def _next(game, s, *a):
    row = np.asarray(game.transition[(s, *a)])
    assert row.sum() == 1.0 and row.max() == 1.0
    return int(row.argmax())


def test_move_into_the_wall():
    game = tag()
    # s = 10: tagger 0 at cell 0, evader 1 at cell 5. Tagger moves up: off grid, stays at 0,
    # pays 0.1 to the evader on top of its step cost; evader moves left to 4.
    # Next: cells (0, 4), tagger 0 -> (0*6+4)*2+0 = 8.
    assert _next(game, 10, UP, LEFT) == 8
    np.testing.assert_allclose(np.asarray(game.reward[:, 10, UP, LEFT]), [-0.2, 0.2], atol=ATOL)
    # Both into walls (evader moves down from the bottom row): each pays 0.1 to the other.
    assert _next(game, 10, UP, DOWN) == 10
    np.testing.assert_allclose(np.asarray(game.reward[:, 10, UP, DOWN]), [-0.1, 0.1], atol=ATOL)
    # Evader 1 moves right off the grid at cell 5, tagger moves right to 1: (1, 5) tagger 0
    # -> (1*6+5)*2+0 = 22; evader pays 0.1 to the tagger, so 0 each.
    assert _next(game, 10, RIGHT, RIGHT) == 22
    np.testing.assert_allclose(np.asarray(game.reward[:, 10, RIGHT, RIGHT]), [0, 0], atol=ATOL)


def test_collision_swaps_roles_and_keeps_positions():
    game = tag()
    # s = 4: tagger 0 at cell 0, evader 1 at cell 2. Right/left: both land in cell 1. Evader 1
    # becomes the tagger; positions stay: (1, 1), tagger 1 -> (1*6+1)*2+1 = 15.
    assert _next(game, 4, RIGHT, LEFT) == 15
    # No tag bonus by default: only the per-step constant.
    np.testing.assert_allclose(np.asarray(game.reward[:, 4, RIGHT, LEFT]), [-0.1, 0.1], atol=ATOL)
    bonus = tag(tag_bonus=0.5)
    np.testing.assert_allclose(np.asarray(bonus.reward[:, 4, RIGHT, LEFT]), [0.4, -0.4], atol=ATOL)
    # The evader walks into a tagger stuck at the wall: s = (0*6+1)*2+0 = 2, tagger up (off
    # grid, stays at 0), evader left to 0 -> (0, 0), tagger 1 -> 1.
    assert _next(game, 2, UP, LEFT) == 1
    np.testing.assert_allclose(np.asarray(game.reward[:, 2, UP, LEFT]), [-0.2, 0.2], atol=ATOL)
    # The roles swap back: from (4, 4) with tagger 1 (s = (4*6+4)*2+1 = 57) both move left to
    # cell 3: evader 0 is caught -> (3, 3), tagger 0 -> (3*6+3)*2+0 = 42.
    assert _next(game, 57, LEFT, LEFT) == 42
    # Sharing a cell BEFORE the move is no tag: from s = 57 player 0 moves up to 1, tagger 1
    # moves down (off grid, stays at 4) -> (1, 4), tagger 1 -> (1*6+4)*2+1 = 21.
    assert _next(game, 57, UP, DOWN) == 21
    np.testing.assert_allclose(np.asarray(game.reward[:, 57, UP, DOWN]), [0.2, -0.2], atol=ATOL)


def test_players_pass_through_each_other_unless_swap_is_tag():
    # s = (0*6+1)*2+0 = 2: tagger 0 at cell 0, evader at 1; right/left exchange the cells.
    assert _next(tag(), 2, RIGHT, LEFT) == (1 * 6 + 0) * 2 + 0  # 12: no tag
    assert _next(tag(swap_is_tag=True), 2, RIGHT, LEFT) == (1 * 6 + 0) * 2 + 1  # 13: tag


def test_stay_action():
    game = tag(allow_stay=True)
    assert game.num_actions == (5, 5)
    # s = 4: tagger at 0 stays, evader at 2 moves left to 1: (0, 1) tagger 0 -> 2; no off-grid.
    assert _next(game, 4, STAY, LEFT) == 2
    np.testing.assert_allclose(np.asarray(game.reward[:, 4, STAY, LEFT]), [-0.1, 0.1], atol=ATOL)


# ----------------------------------------------------------------------------------------------
# Three players.
# ----------------------------------------------------------------------------------------------


def test_three_players_sizes():
    game = tag(2, 3, num_players=3)
    assert game.num_states == 6**3 * 3 == 648
    assert game.num_actions == (4, 4, 4)
    assert game.transition.shape == (648, 4, 4, 4, 648)
    assert game.reward.shape == (3, 648, 4, 4, 4)
    # 4 corners: 4 * 3 * 2 ordered triples of distinct corners x 3 taggers.
    assert np.count_nonzero(np.asarray(game.initial)) == 24 * 3


def test_three_players_collisions():
    game = tag(2, 3, num_players=3, tag_bonus=0.3)
    # Cells (0, 2, 4), tagger 2: s = ((0*6+2)*6+4)*3+2 = 50. Player 0 right, player 1 left,
    # tagger up: all three in cell 1, both evaders caught, the lowest index (0) becomes the
    # tagger: (1, 1, 1), tagger 0 -> ((1*6+1)*6+1)*3+0 = 129.
    assert _next(game, 50, RIGHT, LEFT, UP) == 129
    # Tagger pays 0.1 split between the evaders; the new tagger 0 pays the bonus to player 2.
    np.testing.assert_allclose(
        np.asarray(game.reward[:, 50, RIGHT, LEFT, UP]),
        [0.05 - 0.3, 0.05, -0.1 + 0.3],
        atol=ATOL,
    )
    # Only player 1 caught: player 0 moves down to 3, player 1 left to 1, tagger up to 1 ->
    # (3, 1, 1), tagger 1 -> ((3*6+1)*6+1)*3+1 = 346.
    assert _next(game, 50, DOWN, LEFT, UP) == 346
    # Evaders meeting each other is no tag: player 0 right to 1, player 1 left to 1, tagger
    # down (off grid at 4, pays 0.1 split between the others) -> (1, 1, 4), tagger 2 -> 140.
    assert _next(game, 50, RIGHT, LEFT, DOWN) == ((1 * 6 + 1) * 6 + 4) * 3 + 2 == 140
    np.testing.assert_allclose(
        np.asarray(game.reward[:, 50, RIGHT, LEFT, DOWN]), [0.1, 0.1, -0.2], atol=ATOL
    )


# ----------------------------------------------------------------------------------------------
# Layout helpers.
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rows, cols, n", [(2, 3, 2), (3, 2, 3), (1, 5, 4)])
def test_layout_round_trip(rows, cols, n):
    layout = TagLayout(rows, cols, n)
    states = np.arange(layout.num_states)
    cells, tagger = layout.decode_state(states)
    np.testing.assert_array_equal(layout.encode_state(cells, tagger), states)
    expected = list(itertools.product(*[range(rows * cols)] * n, range(n)))
    np.testing.assert_array_equal(np.stack([*cells, tagger], axis=1), expected)
    jax_cells, jax_tagger = layout.decode_state(jnp.asarray(states))
    np.testing.assert_array_equal(np.asarray(jax_tagger), tagger)
    assert layout.decode_state(int(states[-1])) == ((rows * cols - 1,) * n, n - 1)


def test_layout_helpers():
    layout = TagLayout(2, 3)
    assert layout.cell(1, 2) == 5 and layout.position(5) == (1, 2)
    assert layout.corners() == (0, 2, 3, 5)
    assert TagLayout(3, 1).corners() == (0, 2)
    assert TagLayout(1, 4).corners() == (0, 3)
    assert layout.moves == ("up", "down", "left", "right")
    assert TagLayout(2, 3, allow_stay=True).moves[-1] == "stay"
    assert layout.render(11) == "0  .  .\n.  .  1*"
    assert layout.transition_bytes(np.float32) == 72 * 16 * 72 * 4


# ----------------------------------------------------------------------------------------------
# Errors.
# ----------------------------------------------------------------------------------------------


def test_memory_budget_error_names_the_size():
    itemsize = jnp.dtype(jnp.result_type(float)).itemsize
    size = 20000 * 16 * 20000 * itemsize  # 10x10 grid: S = 100 * 100 * 2
    with pytest.raises(ValueError, match=r"\[20000, 4, 4, 20000\]") as err:
        tag(10, 10)
    assert f"{size:,} bytes" in str(err.value) and "max_bytes" in str(err.value)
    assert size > DEFAULT_MAX_BYTES
    with pytest.raises(ValueError, match=f"{72 * 16 * 72 * itemsize:,} bytes"):
        tag(max_bytes=1000)
    tag(max_bytes=72 * 16 * 72 * itemsize)  # exactly at the budget is fine
    assert tag(2, 2, max_bytes=None).num_states == 32
    assert tag(2, 2, max_bytes=1e9).num_states == 32


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"rows": 0}, "rows: must be at least 1"),
        ({"cols": -2}, "cols: must be at least 1"),
        ({"rows": 2.0}, "rows: expected an int"),
        ({"rows": True}, "rows: expected an int"),
        ({"num_players": -1}, "num_players: must be at least 2"),
        ({"num_players": 0}, "num_players: must be at least 2"),
        ({"num_players": 1}, "num_players: must be at least 2"),
        ({"num_players": 7}, "num_players: 7 players do not fit on a 2x3 grid"),
        ({"rows": 1, "cols": 1}, "num_players: 2 players do not fit on a 1x1 grid"),
        ({"discount": 1.0}, r"discount: must lie in \[0, 1\)"),
        ({"discount": -0.1}, r"discount: must lie in \[0, 1\)"),
        ({"discount": float("nan")}, r"discount: must lie in \[0, 1\)"),
        ({"discount": np.array([0.5, 0.6])}, "discount: expected a scalar"),
        ({"step_cost": -0.1}, "step_cost: must be finite and non-negative"),
        ({"off_grid_cost": float("inf")}, "off_grid_cost: must be finite and non-negative"),
        ({"tag_bonus": "big"}, "tag_bonus: expected a real number"),
        ({"evade_reward": 0.1}, "evade_reward: only for the general-sum game"),
        ({"zero_sum": False, "evade_reward": -1.0}, "evade_reward: must be finite"),
        ({"zero_sum": "no"}, "zero_sum: expected a bool"),
        ({"allow_stay": 1}, "allow_stay: expected a bool"),
        ({"initial": "center"}, "initial: expected one of"),
        ({"initial": np.ones(5) / 5}, r"initial: expected shape \[S\] = \(72,\)"),
        ({"initial": np.full(72, 0.5)}, "initial: rows must sum to 1"),
        ({"max_bytes": 0}, "max_bytes: must be at least 1"),
        ({"max_bytes": "4GB"}, "max_bytes: expected an int"),
        ({"discount": "0.8"}, "discount: expected a real number"),
        ({"validate": "yes"}, "validate: expected a bool"),
        ({"swap_is_tag": None}, "swap_is_tag: expected a bool"),
    ],
)
def test_bad_parameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tag(**kwargs)


# ----------------------------------------------------------------------------------------------
# Transformations, dtype, and the uniform policy's Nash gap.
# ----------------------------------------------------------------------------------------------


def test_vmap_and_jit_over_discount():
    gammas = jnp.array([0.0, 0.5, 0.8, 0.95])
    games = jax.vmap(lambda g: tag(discount=g))(gammas)
    assert games.discount.shape == (4,)
    assert games.transition.shape == (4, 72, 4, 4, 72)
    np.testing.assert_allclose(np.asarray(games.discount), np.asarray(gammas))

    def values(g):  # per-state values of a fixed policy (the uniform one is 0 at mu0)
        game = tag(discount=g)
        policy = jm.deterministic_policy(game, [jnp.zeros(72, int), jnp.full(72, RIGHT)])
        return jm.values(game, policy)

    batched = jax.jit(jax.vmap(values))(gammas)
    one = jax.jit(values)
    looped = np.stack([np.asarray(one(g)) for g in gammas])
    np.testing.assert_allclose(np.asarray(batched), looped, rtol=1e-5, atol=1e-5)
    assert np.abs(looped[2]).max() > 0.1
    assert float(jax.jit(lambda g: tag(discount=g).discount)(0.7)) == pytest.approx(0.7)


def test_float64(x64):
    game = tag(discount=0.9)
    assert game.transition.dtype == jnp.float64 and game.reward.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(game.reward).sum(0), 0.0, atol=1e-15)
    assert TagLayout(2, 3).transition_bytes() == 72 * 16 * 72 * 8


def test_nash_gap_of_uniform_policy():
    game = tag()
    gap = jm.nash_gap(game, jm.uniform_policy(game))
    # The game and mu0 are symmetric under exchanging the players (with the tagger index), and
    # the uniform policy is symmetric, so V_0 = V_1; zero sum makes both 0 and the gains equal.
    np.testing.assert_allclose(np.asarray(gap.policy_values), 0.0, atol=1e-5)
    np.testing.assert_allclose(float(gap.gains[0]), float(gap.gains[1]), rtol=1e-4)
    assert bool(gap.converged.all())
    bound = 2 * 0.2 / (1 - 0.8)  # |R| <= 0.2, so any value gap is at most 2 * 0.2 / (1 - gamma)
    assert 0.0 < float(gap.nash_gap) < bound
    print(f"\nTag 2x3 default, uniform policy: NashGap = {float(gap.nash_gap):.6f}")
