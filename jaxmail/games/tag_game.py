"""The Tag game (docs/theory.md §5): a tagger chases evaders on a grid; a tag swaps the roles.

Shapes: ``n`` players, ``C = rows * cols`` cells, ``S = C**n * n`` states, ``A`` moves per
player (4, or 5 with ``allow_stay``), ``J = A**n`` joint moves.

Numbering (see :class:`TagLayout`, which encodes and decodes it):

* cell ``c = row * cols + col``, row 0 at the top;
* move ``0 up (row - 1), 1 down (row + 1), 2 left (col - 1), 3 right (col + 1)`` and, only with
  ``allow_stay=True``, ``4 stay``;
* state ``(cell_0, ..., cell_{n-1}, tagger)`` ravelled in C order, the tagger fastest::

      s = ((cell_0 * C + cell_1) * C + ... + cell_{n-1}) * n + tagger

  so the paper's 2x3 game has ``6 * 6 * 2 = 72`` states. Every combination is a state, players
  sharing a cell included (they do after a tag). Players are numbered from 0.

One step from ``(cells, tagger)`` under the joint move ``(a_0, ..., a_{n-1})``:

1. Moves. All players move at once, one cell in their direction. A move that would leave the
   grid (an *off-grid move*) leaves that player where it is.
2. Tags. Evader ``j`` is caught when it is in the tagger's cell after the moves. Evaders may
   share cells with each other freely. The tagger and an evader that exchange cells pass through
   each other without a tag (the paper's Tag counts same-cell collisions only, docs/theory.md
   §5); ``swap_is_tag=True`` counts such a swap as a tag as well.
3. Roles. If evaders are caught, the caught evader with the LOWEST index becomes the tagger and
   the old tagger an evader (one new tagger even when several evaders are caught at once).
   Nobody is moved: the positions after the moves are kept (no reset), so right after a tag the
   new tagger and the old one share a cell. A tag is judged after the moves only: two players
   sharing a cell at the start of a step are not tagged unless they share one again after it.

Rewards ``R[i, s, a]`` depend on the state before the step (who is the tagger) and the joint
move; with ``n = 2`` and the defaults they are the paper's (docs/theory.md §5): tagger ``-0.1``
/ evader ``+0.1`` per step, an off-grid move costs its mover ``0.1``, paid to the other
player, nothing else.

* ``zero_sum=True`` (default): every amount is a transfer, so ``sum_i R[i, s, a] = 0``.

  - step: the tagger pays ``step_cost``, shared equally by the ``n - 1`` evaders;
  - off-grid: each player whose move would leave the grid pays ``off_grid_cost``, shared equally
    by the ``n - 1`` other players (two players both moving off the grid in a two-player game
    pay each other: net 0);
  - tag: on a tag the new tagger pays ``tag_bonus`` (default 0: the paper has no bonus) to the
    old tagger.

* ``zero_sum=False`` (general sum): nothing is transferred; each player gets its own terms only.

  - step: the tagger gets ``-step_cost``, each evader ``+evade_reward`` (default 0);
  - off-grid: each off-grid mover gets ``-off_grid_cost`` (the cost is burned, no one receives
    it);
  - tag: the old tagger gets ``+tag_bonus``; the caught evader pays nothing.

Rewards stay in the paper's ``[-1, 1]`` as long as the constants are small: ``|R| <= step_cost
+ off_grid_cost + tag_bonus`` (``+ evade_reward`` in the general-sum game) for any ``n``; larger
constants are allowed.

The transition tensor is deterministic (one-hot rows); it is assembled with vectorised array
code: the next-state index of every (state, joint move) is computed by NumPy broadcasting over
``[C]*n x [n] x [A]*n`` (``S * J`` integers), and only the final one-hot ``[S, A, ..., A, S]``
tensor, the one big object, is written by one NumPy scatter into zeroed memory that JAX then
aliases (no copy on the CPU; one host-to-device transfer on an accelerator).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmail._arrays import is_concrete
from jaxmail.game import MarkovGame, check_distributions, probability_atol
from jaxmail.games.generators import DEFAULT_MAX_BYTES  # one memory budget for every generator

Array = jax.Array

MOVES = ("up", "down", "left", "right", "stay")
"""Move names by action index; the first four unless ``allow_stay``."""

_DELTAS = np.array([[-1, 0], [1, 0], [0, -1], [0, 1], [0, 0]])  # (d_row, d_col) per move

INITIAL = ("corners", "distinct", "all")
"""The named initial distributions of :func:`tag`."""


# ----------------------------------------------------------------------------------------------
# Parameter checks.
# ----------------------------------------------------------------------------------------------


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}: expected an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: must be at least {minimum}, got {value}")
    return int(value)


def _check_constant(name: str, value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name}: expected a real number, got {type(value).__name__} {value!r}"
        ) from None
    if not math.isfinite(x) or x < 0:
        raise ValueError(f"{name}: must be finite and non-negative, got {value!r}")
    return x


def _human(num_bytes: int) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if num_bytes >= size:
            return f"{num_bytes / size:.3g} {unit}"
    return f"{num_bytes} B"


# ----------------------------------------------------------------------------------------------
# Layout: how states and actions are numbered.
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TagLayout:
    """The numbering of Tag's cells, moves and states (see the module docstring).

    ``state = ((cell_0 * C + cell_1) * C + ... + cell_{n-1}) * n + tagger`` with
    ``cell = row * cols + col``. The methods take Python ints, NumPy or JAX arrays (elementwise
    arithmetic only, so they also work under ``jit``/``vmap``).

    Attributes:
      rows: grid size (each at least 1).
      cols: grid size (each at least 1).
      num_players: ``n`` (at least 2, at most ``rows * cols``).
      allow_stay: whether move 4 ("stay") exists.

    Example:
      >>> layout = TagLayout(2, 3)
      >>> layout.num_states, layout.num_actions
      (72, 4)
      >>> s = layout.encode_state((layout.cell(0, 0), layout.cell(1, 2)), tagger=1)
      >>> s, layout.decode_state(s)
      (11, ((0, 5), 1))
      >>> print(layout.render(s))
      0  .  .
      .  .  1*
    """

    rows: int
    cols: int
    num_players: int = 2
    allow_stay: bool = False

    def __post_init__(self):
        rows = _check_int("rows", self.rows, 1)
        cols = _check_int("cols", self.cols, 1)
        n = _check_int("num_players", self.num_players, 2)
        if n > rows * cols:
            raise ValueError(
                f"num_players: {n} players do not fit on a {rows}x{cols} grid of {rows * cols} "
                "cells (every player needs a cell of its own at the start)"
            )
        if not isinstance(self.allow_stay, (bool, np.bool_)):
            raise ValueError(f"allow_stay: expected a bool, got {self.allow_stay!r}")
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "cols", cols)
        object.__setattr__(self, "num_players", n)
        object.__setattr__(self, "allow_stay", bool(self.allow_stay))

    @property
    def num_cells(self) -> int:
        """``C = rows * cols``."""
        return self.rows * self.cols

    @property
    def num_states(self) -> int:
        """``S = C**n * n``."""
        return self.num_cells**self.num_players * self.num_players

    @property
    def num_actions(self) -> int:
        """``A``, moves per player: 4, or 5 with ``allow_stay``."""
        return 5 if self.allow_stay else 4

    @property
    def moves(self) -> tuple[str, ...]:
        """Move names by action index."""
        return MOVES[: self.num_actions]

    @property
    def transition_shape(self) -> tuple[int, ...]:
        """``(S, A, ..., A, S)``."""
        n, a, s = self.num_players, self.num_actions, self.num_states
        return (s, *(a,) * n, s)

    def transition_bytes(self, dtype: Any = None) -> int:
        """Bytes of the dense transition tensor in ``dtype`` (default: JAX's default float)."""
        itemsize = np.dtype(jnp.result_type(float) if dtype is None else dtype).itemsize
        return math.prod(self.transition_shape) * itemsize

    def cell(self, row, col):
        """``row * cols + col``."""
        return row * self.cols + col

    def position(self, cell):
        """``(row, col)`` of a cell."""
        return cell // self.cols, cell % self.cols

    def corners(self) -> tuple[int, ...]:
        """The distinct corner cells, ascending (1 on a 1x1 grid, 2 on a line, else 4)."""
        r, c = self.rows - 1, self.cols - 1
        return tuple(sorted({self.cell(i, j) for i in (0, r) for j in (0, c)}))

    def encode_state(self, cells: Sequence[Any], tagger):
        """The state index of ``n`` cells (one per player) and the tagger's index."""
        if len(cells) != self.num_players:
            raise ValueError(
                f"cells: expected {self.num_players} cells (one per player), got {len(cells)}"
            )
        s = 0
        for c in cells:
            s = s * self.num_cells + c
        return s * self.num_players + tagger

    def decode_state(self, state) -> tuple[tuple[Any, ...], Any]:
        """``((cell_0, ..., cell_{n-1}), tagger)`` of a state index (elementwise on arrays)."""
        n, num_cells = self.num_players, self.num_cells
        tagger, rest = state % n, state // n
        cells = []
        for _ in range(n):
            cells.append(rest % num_cells)
            rest = rest // num_cells
        cells = tuple(c if not isinstance(c, np.integer) else int(c) for c in reversed(cells))
        tagger = tagger if not isinstance(tagger, np.integer) else int(tagger)
        return cells, tagger

    def render(self, state: int) -> str:
        """A text picture of one state: player indices in their cells, ``*`` after the tagger."""
        cells, tagger = self.decode_state(int(state))
        marks = []
        for row in range(self.rows):
            for col in range(self.cols):
                here = [i for i, c in enumerate(cells) if c == self.cell(row, col)]
                mark = "".join(str(i) for i in here) + ("*" if tagger in here else "")
                marks.append(mark or ".")
        width = max(len(m) for m in marks)
        lines = [
            " ".join(m.ljust(width) for m in marks[r * self.cols : (r + 1) * self.cols]).rstrip()
            for r in range(self.rows)
        ]
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Vectorised dynamics.
# ----------------------------------------------------------------------------------------------


class _Step:
    """Index arrays of one step over all states and joint moves, shape ``[C]*n + [n] + [A]*n``.

    Attributes:
      next_state: next-state index.
      tagger: the tagger before the step.
      new_tagger: the tagger after the step.
      tagged: whether a tag happened.
      off_grid: ``[n, ...]`` whether player ``i``'s move would have left the grid.
    """

    def __init__(self, layout: TagLayout, swap_is_tag: bool):
        n, num_cells, num_actions = layout.num_players, layout.num_cells, layout.num_actions
        ndim = 2 * n + 1  # cell axes 0..n-1, tagger axis n, action axes n+1..2n

        # One player: destination and off-grid flag of every (cell, move), [C, A].
        row, col = np.divmod(np.arange(num_cells), layout.cols)
        delta = _DELTAS[:num_actions]
        new_row = row[:, None] + delta[:, 0]
        new_col = col[:, None] + delta[:, 1]
        off = (new_row < 0) | (new_row >= layout.rows) | (new_col < 0) | (new_col >= layout.cols)
        dest = np.where(off, np.arange(num_cells)[:, None], new_row * layout.cols + new_col)

        def on_axes(table, axes):
            shape = [1] * ndim
            for ax, size in zip(axes, table.shape):
                shape[ax] = size
            return table.reshape(shape)

        full = (num_cells,) * n + (n,) + (num_actions,) * n
        old = np.stack(
            [np.broadcast_to(on_axes(np.arange(num_cells), (i,)), full) for i in range(n)]
        )
        new = np.stack([np.broadcast_to(on_axes(dest, (i, n + 1 + i)), full) for i in range(n)])
        self.off_grid = np.stack(
            [np.broadcast_to(on_axes(off, (i, n + 1 + i)), full) for i in range(n)]
        )
        self.tagger = np.broadcast_to(on_axes(np.arange(n), (n,)), full)

        player = np.arange(n).reshape((n,) + (1,) * ndim)
        new_t = np.take_along_axis(new, self.tagger[None], axis=0)
        caught = new == new_t
        if swap_is_tag:
            old_t = np.take_along_axis(old, self.tagger[None], axis=0)
            caught |= (new == old_t) & (new_t == old)
        caught &= player != self.tagger
        self.tagged = caught.any(axis=0)
        self.new_tagger = np.where(self.tagged, caught.argmax(axis=0), self.tagger)

        state = np.zeros(full, dtype=np.int64)
        for i in range(n):
            state = state * num_cells + new[i]
        self.next_state = state * n + self.new_tagger


def _rewards(
    layout: TagLayout,
    step: _Step,
    *,
    step_cost: float,
    off_grid_cost: float,
    tag_bonus: float,
    zero_sum: bool,
    evade_reward: float,
) -> np.ndarray:
    """``[n, C, ..., C, n, A, ..., A]`` float64 rewards (see the module docstring)."""
    n = layout.num_players
    player = np.arange(n).reshape((n,) + (1,) * step.tagger.ndim)
    is_tagger = player == step.tagger
    is_new_tagger = step.tagged & (player == step.new_tagger)
    tags = is_tagger & step.tagged
    off = step.off_grid.astype(np.float64)
    if zero_sum:
        reward = np.where(is_tagger, -step_cost, step_cost / (n - 1))
        reward = reward - off_grid_cost * off + off_grid_cost / (n - 1) * (off.sum(0) - off)
        reward = reward + tag_bonus * (tags.astype(np.float64) - is_new_tagger)
    else:
        reward = np.where(is_tagger, -step_cost, evade_reward)
        reward = reward - off_grid_cost * off + tag_bonus * tags
    return reward


def _initial(layout: TagLayout, initial: Any) -> np.ndarray:
    """``[S]`` float64 initial distribution."""
    num_states, n = layout.num_states, layout.num_players
    if not isinstance(initial, str):
        if not is_concrete(initial):
            raise ValueError("initial: an explicit initial distribution must be concrete")
        mu0 = np.asarray(initial, dtype=np.float64)
        if mu0.shape != (num_states,):
            raise ValueError(f"initial: expected shape [S] = ({num_states},), got {mu0.shape}")
        check_distributions("initial", mu0, atol=probability_atol(jnp.result_type(float)))
        return mu0
    if initial not in INITIAL:
        raise ValueError(f"initial: expected one of {INITIAL} or an [S] array, got {initial!r}")
    cells, _ = layout.decode_state(np.arange(num_states))
    cells = np.stack(cells)  # [n, S]
    distinct = np.ones(num_states, dtype=bool)
    for i in range(n):
        for j in range(i + 1, n):
            distinct &= cells[i] != cells[j]
    if initial == "all":
        support = np.ones(num_states, dtype=bool)
    elif initial == "distinct":
        support = distinct
    else:
        corners = layout.corners()
        if len(corners) < n:
            raise ValueError(
                f"initial: a {layout.rows}x{layout.cols} grid has {len(corners)} distinct "
                f"corner(s), too few to start {n} players on distinct corners; pass "
                "initial='distinct' or 'all'"
            )
        support = distinct & np.isin(cells, corners).all(axis=0)
    return support / support.sum()


def _one_hot(next_state: np.ndarray, num_states: int, dtype: Any) -> Array:
    """``[*next_state.shape, S]`` one-hot rows, as a JAX array on the default device.

    Written by one NumPy scatter into zeroed memory (``S * J`` writes, the rest of the tensor
    untouched) and handed to JAX without a copy on the CPU: the buffer is 64-byte aligned so that
    ``device_put(..., may_alias=True)`` can alias it. Measured on 6x6 (430 MB float32, 2 CPU
    cores) this took ~0.1 s where a jitted ``jax.nn.one_hot`` took ~0.6 s and a copying
    ``jnp.asarray`` ~1 s.
    """
    dtype = np.dtype(dtype)
    rows = next_state.size
    align = 64 // dtype.itemsize
    buffer = np.zeros(rows * num_states + align, dtype=dtype)
    start = (-buffer.ctypes.data % 64) // dtype.itemsize
    flat = buffer[start : start + rows * num_states].reshape(rows, num_states)
    flat[np.arange(rows), next_state.reshape(-1)] = 1
    flat = flat.reshape(*next_state.shape, num_states)
    try:
        return jax.device_put(flat, may_alias=True)
    except TypeError:  # a JAX without may_alias: one copy
        return jnp.asarray(flat)


# ----------------------------------------------------------------------------------------------
# The game.
# ----------------------------------------------------------------------------------------------


def tag(
    rows: int = 2,
    cols: int = 3,
    *,
    num_players: int = 2,
    discount: float | Array = 0.8,
    step_cost: float = 0.1,
    off_grid_cost: float = 0.1,
    tag_bonus: float = 0.0,
    zero_sum: bool = True,
    evade_reward: float | None = None,
    allow_stay: bool = False,
    swap_is_tag: bool = False,
    initial: str | Array = "corners",
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    validate: bool = False,
) -> MarkovGame:
    """The Tag game on a ``rows x cols`` grid (docs/theory.md §5; rules in the module docstring).

    The defaults are the paper's game: two players, zero-sum, 2x3 grid, ``gamma = 0.8``, four
    moves each, 72 states, tagger ``-0.1`` / evader ``+0.1`` per step, an off-grid move costs
    ``0.1`` paid to the other player, ``mu0`` uniform over (distinct corner pairs) x tagger.
    Decode states with :class:`TagLayout` ``(rows, cols, num_players, allow_stay)``.

    Args:
      rows: grid height, at least 1.
      cols: grid width, at least 1.
      num_players: ``n >= 2``: one tagger and ``n - 1`` evaders; at most ``rows * cols``.
      discount: ``gamma`` in ``[0, 1)``. It may be a traced scalar (``jax.vmap(lambda g:
        tag(discount=g))(gammas)`` works): it is the only leaf that depends on an argument that
        can be traced; every other parameter is static (a Python number).
      step_cost: what the tagger pays per step (``>= 0``).
      off_grid_cost: what a move off the grid costs its mover (``>= 0``).
      tag_bonus: paid to the old tagger on a tag (``>= 0``; by the new tagger when
        ``zero_sum``); 0 by default, as in the paper.
      zero_sum: every amount a transfer between players (default), or general sum: nothing
        transferred (module docstring).
      evade_reward: an evader's reward per step in the general-sum game (``>= 0``, default 0);
        must be left ``None`` when ``zero_sum`` (the evaders then share the tagger's cost).
      allow_stay: add move 4, "stay" (``A = 5``).
      swap_is_tag: also count a tagger and an evader exchanging cells as a tag.
      initial: ``"corners"`` (uniform over states whose players stand on pairwise-distinct
        corners, any tagger: 24 states on 2x3; needs ``n`` distinct corners), ``"distinct"``
        (uniform over states with pairwise-distinct cells, any tagger), ``"all"`` (uniform over
        all states), or an explicit ``[S]`` distribution.
      max_bytes: budget for the transition tensor (default 4 GiB); ``None`` for no limit. The
        size is computed before anything is allocated; building needs about that much memory
        once (the tensor is written in place and handed to JAX without a copy on the CPU), and
        with ``validate`` briefly over twice as much again on the host (the constructor's
        float64 copy and its temporaries).
      validate: also run the :class:`~jaxmail.MarkovGame` constructor's full value check of
        the built tensors (off by default). The tensors are valid by construction: every row
        of ``transition`` is a one-hot vector of an in-range index (checked here on the
        ``S * J`` indices), ``initial`` is a normalised indicator and the rewards are finite
        sums of the checked constants (``tests/test_tag.py`` compares the whole tensors with a
        loop reference). The full check adds a float64 copy of the tensor and several passes
        over it (~0.5 s and 860 MB on 6x6), so it is opt-in. Parameters are checked either
        way, before anything big is allocated.

    Returns:
      A :class:`~jaxmail.MarkovGame` with ``transition [S, A, ..., A, S]`` (one-hot rows),
      ``reward [n, S, A, ..., A]``, ``initial [S]``, ``discount []`` in the default float dtype.

    Raises:
      ValueError: a bad parameter (naming it), or a transition tensor over ``max_bytes``
        (naming its shape and size).

    Example:
      >>> game = tag()                                   # the paper's game
      >>> game.num_states, game.num_actions
      (72, (4, 4))
      >>> layout = TagLayout(2, 3)
      >>> s = layout.encode_state((0, 5), tagger=0)   # tagger top-left, evader bottom-right
      >>> nxt = int(game.transition[s, 0, 1].argmax())  # tagger up, evader down: both walls
      >>> layout.decode_state(nxt), [round(float(r), 6) for r in game.reward[:, s, 0, 1]]
      (((0, 5), 0), [-0.1, 0.1])
    """
    layout = TagLayout(rows, cols, num_players, allow_stay)
    step_cost = _check_constant("step_cost", step_cost)
    off_grid_cost = _check_constant("off_grid_cost", off_grid_cost)
    tag_bonus = _check_constant("tag_bonus", tag_bonus)
    if not isinstance(zero_sum, (bool, np.bool_)):
        raise ValueError(f"zero_sum: expected a bool, got {zero_sum!r}")
    if not isinstance(swap_is_tag, (bool, np.bool_)):
        raise ValueError(f"swap_is_tag: expected a bool, got {swap_is_tag!r}")
    if zero_sum:
        if evade_reward is not None:
            raise ValueError(
                "evade_reward: only for the general-sum game (zero_sum=False); in the zero-sum "
                "game the evaders share the tagger's step_cost"
            )
        evade_reward = 0.0
    else:
        evade_reward = _check_constant(
            "evade_reward", 0.0 if evade_reward is None else evade_reward
        )
    if not isinstance(validate, (bool, np.bool_)):
        raise ValueError(f"validate: expected a bool, got {validate!r}")
    if is_concrete(discount) and np.asarray(discount).dtype.kind not in "fiu":
        raise ValueError(f"discount: expected a real number, got {discount!r}")
    if jnp.ndim(discount) != 0:
        raise ValueError(f"discount: expected a scalar, got shape {jnp.shape(discount)}")
    if is_concrete(discount):
        gamma = float(np.asarray(discount))
        if not math.isfinite(gamma) or not 0.0 <= gamma < 1.0:
            raise ValueError(f"discount: must lie in [0, 1), got {gamma}")
    if max_bytes is not None:
        if isinstance(max_bytes, (float, np.floating)) and math.isfinite(max_bytes):
            max_bytes = int(max_bytes)  # 4e9 is fine
        max_bytes = _check_int("max_bytes", max_bytes, 1)

    dtype = jnp.result_type(float)
    num_bytes = layout.transition_bytes(dtype)
    if max_bytes is not None and num_bytes > max_bytes:
        raise ValueError(
            f"tag({rows}x{cols} grid, {layout.num_players} players): the transition tensor "
            f"{list(layout.transition_shape)} in {jnp.dtype(dtype).name} needs {num_bytes:,} "
            f"bytes ({_human(num_bytes)}), over max_bytes={max_bytes:,} ({_human(max_bytes)}); "
            "use a smaller grid or fewer players, or raise max_bytes"
        )
    mu0 = _initial(layout, initial)

    step = _Step(layout, swap_is_tag)
    reward = _rewards(
        layout,
        step,
        step_cost=step_cost,
        off_grid_cost=off_grid_cost,
        tag_bonus=tag_bonus,
        zero_sum=bool(zero_sum),
        evade_reward=evade_reward,
    )
    num_states, n = layout.num_states, layout.num_players
    joint = (layout.num_actions,) * n
    next_state = step.next_state.reshape(num_states, *joint)
    if next_state.min() < 0 or next_state.max() >= num_states:  # the invariant `validate` trusts
        raise AssertionError("tag: next-state index out of range (a bug in jaxmail.games.tag)")
    transition = _one_hot(next_state, num_states, dtype)
    reward = reward.reshape(n, num_states, *joint).astype(dtype)
    if validate:
        return MarkovGame(transition=transition, reward=reward, initial=mu0, discount=discount)
    # Rebuilding from leaves (the pytree protocol) skips the constructor's value check.
    leaves = (
        transition,
        jnp.asarray(reward),
        jnp.asarray(mu0, dtype=dtype),
        jnp.asarray(discount, dtype=dtype),
    )
    return MarkovGame.tree_unflatten(None, leaves)
