"""The Markov game: a frozen pytree of dense tensors, its validation, and ``.npz`` files.

Shapes (docs/design.md §1): ``n`` players, ``S`` states, ``A_i`` actions of player ``i``.

* ``transition`` ``[S, A_1, ..., A_n, S]``: ``P[s, a_1..a_n, s']``, every row a distribution.
* ``reward`` ``[n, S, A_1, ..., A_n]``: ``R[i, s, a]``, player ``i``'s reward for joint action a.
* ``initial`` ``[S]``: the initial-state distribution ``mu0``.
* ``discount`` ``[]``: ``gamma`` in ``[0, 1)``, an array leaf so that sweeps over it neither
  recompile nor block ``vmap``.

A batch of games is the same class with a leading axis on every leaf (``jax.vmap`` of a generator
makes one); ``game.batch_shape`` gives those axes (``()`` for one game). The size properties read
the shapes of ONE game and raise on a batch, as do the kernels (:func:`check_game`): the message
says to ``jax.vmap``. ``replace`` works on one game and on a batch.

Input dtypes: real numbers (float16, bfloat16, float32, float64, integers, bool), cast to the
default float dtype; probabilities are checked to a row-sum tolerance that follows the precision
of the input dtype (:func:`input_probability_atol`). float8 and narrower are refused.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmail import _records
from jaxmail._arrays import default_float_dtype, host_array, is_concrete

Array = jax.Array

_FIELDS = ("transition", "reward", "initial", "discount")


# Input dtypes the constructors accept for probabilities and rewards (the game itself is cast to
# float32, or float64 under jax_enable_x64). Narrower floats (float8 and below) are refused:
# their relative precision (eps >= 2**-3) cannot tell a distribution from a mistake.
SUPPORTED_DTYPES = "float16, bfloat16, float32, float64, integer or bool"


def input_dtype(name: str, x: Any) -> np.dtype:
    """The NumPy dtype of ``x``, after checking that it is a supported real dtype.

    Raises:
      TypeError: naming ``name``, the dtype and the supported ones (complex, strings, objects,
        float8 and narrower).
    """
    dtype = np.dtype(x.dtype) if hasattr(x, "dtype") else np.asarray(x).dtype
    if jnp.issubdtype(dtype, jnp.floating):
        if jnp.finfo(dtype).bits < 16:
            raise TypeError(
                f"{name}: dtype {dtype.name} is too narrow for probabilities and rewards "
                f"(eps {float(jnp.finfo(dtype).eps):g}); supported: {SUPPORTED_DTYPES}"
            )
        return dtype
    if dtype.kind not in "iub":
        raise TypeError(
            f"{name}: expected a real numeric array, got dtype kind {dtype.kind!r} "
            f"({dtype.name}); supported: {SUPPORTED_DTYPES}"
        )
    return dtype


def probability_atol(dtype: Any) -> float:
    """The tolerance to which rows of probabilities must sum to one, for a float dtype.

    ``1e-4`` for float32 (a float32 Dirichlet row over 1000 entries is off by ~1e-5), ``1e-8``
    for float64. Narrower floats get :func:`input_probability_atol`'s per-row bound.
    """
    return 1e-8 if jnp.dtype(dtype) == jnp.float64 else 1e-4


def input_probability_atol(x: Any, dtype: Any) -> float:
    """The row-sum tolerance for probabilities ``x`` ``[..., K]`` checked for a ``dtype`` game.

    :func:`probability_atol` of ``dtype``, or of ``x``'s own float dtype where that is less
    precise: float32 probabilities (a game saved without ``jax_enable_x64``) sum to 1 only to
    ~1e-7, so checking them for a float64 game with the float64 tolerance would reject valid data.

    For float16 and bfloat16 input (``eps`` = 2**-10 and 2**-7), a row normalised in that dtype
    (``K - 1`` additions for the sum, one division per entry, each off by at most ``eps / 2``
    relative) sums to 1 only within ``(K + 1) eps / 2 <= K eps``; the tolerance is
    ``max(1e-4, K eps)``, so it grows with the row length ``K`` as the rounding error does.
    """
    x_dtype = np.dtype(x.dtype) if hasattr(x, "dtype") else np.asarray(x).dtype
    atol = probability_atol(dtype)
    if jnp.issubdtype(x_dtype, jnp.floating) and jnp.finfo(x_dtype).bits < jnp.finfo(dtype).bits:
        atol = max(atol, probability_atol(x_dtype))
        eps = float(jnp.finfo(x_dtype).eps)
        if eps > float(jnp.finfo(jnp.float32).eps):
            atol = max(atol, max(int(np.shape(x)[-1]) if np.ndim(x) else 1, 1) * eps)
    return atol


def _check_finite(name: str, x: np.ndarray) -> None:
    bad = ~np.isfinite(x)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name}: {int(bad.sum())} entries are NaN or inf; first at index {idx} = {x[idx]}"
        )


def check_distributions(name: str, x: np.ndarray, *, atol: float, index_names: str = "") -> None:
    """Raises ``ValueError`` unless every row (last axis) of ``x`` is a probability distribution.

    Args:
      name: the field named in the message.
      x: ``[..., K]`` concrete array.
      atol: allowed ``|sum - 1|`` per row; also the allowed negative excursion of an entry.
      index_names: optional description of the leading indices for the message.
    """
    x = host_array(x)  # native dtype: no float64 copy of a large tensor
    _check_finite(name, x)
    if x.shape[-1] == 0:
        raise ValueError(f"{name}: the last axis is empty (shape {x.shape}); no distribution")
    if x.size and x.min() < -atol:
        idx = tuple(int(i) for i in np.unravel_index(np.argmin(x), x.shape))
        raise ValueError(
            f"{name}: probabilities must be non-negative; most negative entry at index "
            f"{idx} is {float(x[idx]):.3g} (tolerance {atol:g})"
        )
    sums = x.sum(axis=-1, dtype=np.float64)
    err = np.abs(sums - 1.0)
    if err.size and err.max() > atol:
        idx = tuple(int(i) for i in np.unravel_index(np.argmax(err), err.shape))
        if index_names == "s, a":
            where = f" (s={idx[0]}, a={idx[1:]})"
        elif index_names:
            where = f" ({index_names}={idx[0] if len(idx) == 1 else idx})"
        else:
            where = f" {idx}" if idx else ""
        raise ValueError(
            f"{name}: rows must sum to 1 within {atol:g}; worst row{where} sums to "
            f"{sums[idx]:.10g} (off by {err[idx]:.3g})"
        )


@jax.tree_util.register_pytree_node_class
@dataclasses.dataclass(frozen=True, eq=False)
class MarkovGame(_records.Record):
    """A finite discounted n-player general-sum Markov game with dense tensors.

    Constructing one from arrays validates it: structure (ranks, shapes, player counts) always,
    even under ``jit``/``vmap``; values (probabilities, ``discount`` range, NaN/inf) whenever the
    arrays are concrete. Nothing is repaired: bad input raises ``ValueError`` naming the field and
    the worst violation. Leaves are cast to the default float dtype (float32, or float64 when
    ``jax_enable_x64`` is on); float16 and bfloat16 input is accepted with row-sum tolerances
    that follow its precision (:func:`input_probability_atol`). Rebuilding from leaves
    (``jax.tree_util``, ``vmap`` outputs) skips validation, which is what lets a batch of games
    carry a leading axis.

    A batch of games has ``batch_shape`` ``(B, ...)`` (the shape of ``discount``, a scalar for
    one game): the size properties and the kernels refuse it and say to use ``jax.vmap``;
    :meth:`replace` works on it.

    Attributes:
      transition: ``[S, A_1, ..., A_n, S]`` transition probabilities ``P[s, a, s']``.
      reward: ``[n, S, A_1, ..., A_n]`` rewards ``R[i, s, a]`` (the paper's bounds assume
        ``[-1, 1]``; other ranges are allowed).
      initial: ``[S]`` initial-state distribution ``mu0``.
      discount: ``[]`` discount factor ``gamma`` in ``[0, 1)``.

    Example:
      >>> import jax.numpy as jnp, jaxmail as jm
      >>> P = jnp.ones((1, 2, 2, 1))                 # one state, 2x2 actions
      >>> R = jnp.stack([jnp.eye(2), -jnp.eye(2)])[:, None]   # [2, 1, 2, 2]
      >>> game = jm.MarkovGame(transition=P, reward=R, initial=jnp.ones(1), discount=0.9)
      >>> game.num_players, game.num_states, game.num_actions
      (2, 1, (2, 2))
    """

    transition: Array
    reward: Array
    initial: Array
    discount: Array

    def __post_init__(self):
        fields = _validated({f: getattr(self, f) for f in _FIELDS}, batch_shape=())
        for name in _FIELDS:
            object.__setattr__(self, name, fields[name])
        from jaxmail import checking  # traced values: checked mode only (checking imports game)

        checking.check_game(self)

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """The leading batch axes: ``()`` for one game, ``(B,)`` for a batch of ``B`` games.

        Read from ``discount``, which is a scalar for one game.
        """
        return _shape(self.discount)

    def _one(self, what: str) -> None:
        if self.batch_shape:
            raise ValueError(f"{what} is defined for one game; {batch_words(self.batch_shape)}")

    # -- sizes, read from shapes (one game; a batch raises). --
    @property
    def num_players(self) -> int:
        """``n``."""
        self._one("num_players")
        return self.reward.shape[0]

    @property
    def num_states(self) -> int:
        """``S``."""
        self._one("num_states")
        return self.transition.shape[0]

    @property
    def num_actions(self) -> tuple[int, ...]:
        """``(A_1, ..., A_n)``."""
        self._one("num_actions")
        return tuple(self.transition.shape[1:-1])

    @property
    def num_joint_actions(self) -> int:
        """``prod_i A_i``."""
        return int(np.prod(self.num_actions))

    @property
    def dtype(self):
        return self.transition.dtype

    def replace(self, **changes) -> MarkovGame:
        """A copy with some fields replaced (validated like a new game).

        On a batch of games (``batch_shape`` ``(B, ...)``) a new field has either the batched
        shape ``(B, ..., *one_game_shape)`` or the shape of one game's field, which is then
        shared by every game (``batch.replace(discount=0.5)``).

        Raises:
          TypeError: an unknown field name.
          ValueError: as the constructor, naming the field.
        """
        unknown = sorted(set(changes) - set(_FIELDS))
        if unknown:
            raise TypeError(f"replace() got an unexpected keyword argument {unknown[0]!r}")
        fields = {f: getattr(self, f) for f in _FIELDS}
        batch = self.batch_shape
        if not batch:
            fields.update(changes)
            return MarkovGame(**fields)
        for name, value in changes.items():
            old, new = _shape(fields[name]), _shape(value)
            one = old[len(batch) :]
            if new == one and new != old:
                value = jnp.broadcast_to(jnp.asarray(value), old)  # one value for every game
            elif new[: len(batch)] != batch or len(new) != len(old):
                raise ValueError(
                    f"{name}: for {batch_words(batch, advice=False)} expected shape {old} "
                    f"(one per game) or {one} (shared), got shape {new}"
                )
            fields[name] = value
        return MarkovGame.tree_unflatten(None, tuple(_validated(fields, batch).values()))

    def __repr__(self) -> str:
        shape = getattr(self.transition, "shape", None)
        if shape is None or len(shape) < 2:
            return f"MarkovGame(transition={self.transition!r}, ...)"
        batch = self.batch_shape  # leading axes of a batch of games
        shape = shape[len(batch) :]
        prefix = f"batch_shape={batch}, " if batch else ""
        return (
            f"MarkovGame({prefix}num_players={len(shape) - 2}, num_states={shape[0]}, "
            f"num_actions={tuple(shape[1:-1])}, dtype={self.transition.dtype})"
        )


def batch_words(batch_shape: tuple[int, ...], *, advice: bool = True) -> str:
    """``"a batch of 16 games (batch_shape (16,)): use jax.vmap ..."`` for error messages."""
    size = int(np.prod(batch_shape))
    words = f"a batch of {size} games (batch_shape {tuple(batch_shape)})"
    if advice:
        words += ": use jax.vmap to apply a one-game function to every game"
    return words


def check_game(game: Any, *, name: str = "game") -> MarkovGame:
    """Returns ``game`` if it is ONE :class:`MarkovGame`; the kernels call it first.

    Raises:
      TypeError: ``game`` is not a :class:`MarkovGame`.
      ValueError: ``game`` is a batch (non-empty ``batch_shape``); the message says to vmap.
    """
    if not isinstance(game, MarkovGame):
        raise TypeError(f"{name}: expected a jaxmail.MarkovGame, got {type(game).__name__}")
    if game.batch_shape:
        raise ValueError(
            f"{name}: this function takes one game; got {batch_words(game.batch_shape)}"
        )
    return game


def _shape(x) -> tuple[int, ...]:
    return tuple(np.shape(x)) if not hasattr(x, "shape") else tuple(x.shape)


def _validated(fields: dict[str, Any], batch_shape: tuple[int, ...]) -> dict[str, Any]:
    """Checks dtypes, structure and (when concrete) values; returns the fields cast to float."""
    dtype = default_float_dtype()
    for name in _FIELDS:
        input_dtype(name, fields[name])
    k = len(batch_shape)
    shapes = {}
    for name in _FIELDS:
        shape = _shape(fields[name])
        if shape[:k] != tuple(batch_shape):
            raise ValueError(
                f"{name}: expected the leading axes {tuple(batch_shape)} of "
                f"{batch_words(batch_shape, advice=False)}, got shape {shape}"
            )
        shapes[name] = shape[k:]
    _check_structure(*(shapes[f] for f in _FIELDS))
    if all(is_concrete(fields[f]) for f in _FIELDS):
        if k == 0:
            _check_values(*(fields[f] for f in _FIELDS))
        else:
            arrays = {f: host_array(fields[f]) for f in _FIELDS}
            for b in np.ndindex(*batch_shape):
                try:
                    _check_values(*(arrays[f][b] for f in _FIELDS))
                except ValueError as e:
                    raise ValueError(f"{e} (in game {b} of the batch)") from e
    return {name: jnp.asarray(fields[name], dtype=dtype) for name in _FIELDS}


def _check_structure(P, R, mu0, gamma) -> None:
    """Shapes of one game's ``transition, reward, initial, discount``."""
    if len(P) < 3:
        raise ValueError(
            f"transition: expected shape [S, A_1, ..., A_n, S] with n >= 1, got shape {P}"
        )
    S, actions = P[0], P[1:-1]
    n = len(actions)
    if P[-1] != S:
        raise ValueError(
            f"transition: first and last axes are both states and must agree; got shape {P} "
            f"({S} != {P[-1]})"
        )
    if S < 1 or any(a < 1 for a in actions):
        raise ValueError(f"transition: every axis needs at least one entry; got shape {P}")
    if len(R) != n + 2 or R[0] != n:
        raise ValueError(
            f"reward: expected shape [n, S, A_1, ..., A_n] = {(n, S, *actions)} for the "
            f"{n}-player transition of shape {P}; got shape {R}"
        )
    if tuple(R[1:]) != (S, *actions):
        raise ValueError(
            f"reward: shape {R} disagrees with transition shape {P}; expected {(n, S, *actions)}"
        )
    if mu0 != (S,):
        raise ValueError(f"initial: expected shape [S] = ({S},), got shape {mu0}")
    if gamma != ():
        raise ValueError(f"discount: expected a scalar, got shape {gamma}")


def _check_values(transition, reward, initial, discount) -> None:
    """Values of one game (concrete arrays)."""
    dtype = default_float_dtype()
    atol = input_probability_atol(transition, dtype)
    check_distributions("transition", transition, atol=atol, index_names="s, a")
    _check_finite("reward", host_array(reward))
    atol = input_probability_atol(initial, dtype)
    check_distributions("initial", host_array(initial).astype(np.float64), atol=atol)
    gamma = float(host_array(discount))
    if not np.isfinite(gamma) or not 0.0 <= gamma < 1.0:
        raise ValueError(f"discount: must lie in [0, 1), got {gamma}")
    # A discount that rounds to 1 in the working dtype makes I - gamma P singular.
    if float(np.asarray(gamma, dtype=default_float_dtype())) >= 1.0:
        raise ValueError(
            f"discount: {gamma} rounds to 1.0 in {jnp.dtype(default_float_dtype()).name}; "
            "enable jax_enable_x64 or use a smaller discount"
        )


# --------------------------------------------------------------------------------------------
# Files.
# --------------------------------------------------------------------------------------------

_FORMAT = "jaxmail.MarkovGame/1"


def save_game(path: str | os.PathLike, game: MarkovGame) -> None:
    """Writes one game to ``path`` as ``.npz`` (no pickle), atomically and durably.

    The file holds the four tensors and a format tag. A partly written file never appears under
    ``path``: the data goes to a temporary file in the same folder that is synced to disk and
    then renamed; temporary files that killed writers left in that folder are removed. The file
    follows the umask (``0o644`` under umask ``022``).

    Raises:
      ValueError: ``path`` does not end in ``.npz``, or ``game`` is a batch.
    """
    _records.check_path(path, kind="game")
    if np.ndim(game.discount) != 0:
        raise ValueError(
            f"game: save_game writes one game; got a batch (discount is not a scalar): "
            f"{batch_words(_shape(game.discount))}"
        )
    _records.save(path, game, tag=_FORMAT, kind="game")


def load_game(path: str | os.PathLike) -> MarkovGame:
    """Reads a game written by :func:`save_game` and validates it like a new one.

    Raises:
      FileNotFoundError: no file at ``path``.
      ValueError: the file is not a readable game file (a ``.npy``, empty, text or truncated
        file, a missing field, another format), or the game it holds is invalid; the message
        starts with the path.
      TypeError: a field has a dtype a game cannot have; the message starts with the path.
    """
    return _records.load(path, MarkovGame, tag=_FORMAT, kind="game")
