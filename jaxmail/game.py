"""The Markov game: a frozen pytree of dense tensors, its validation, and ``.npz`` files.

Shapes (DESIGN.md §1): ``n`` players, ``S`` states, ``A_i`` actions of player ``i``.

* ``transition`` ``[S, A_1, ..., A_n, S]``: ``P[s, a_1..a_n, s']``, every row a distribution.
* ``reward`` ``[n, S, A_1, ..., A_n]``: ``R[i, s, a]``, player ``i``'s reward for joint action a.
* ``initial`` ``[S]``: the initial-state distribution ``mu0``.
* ``discount`` ``[]``: ``gamma`` in ``[0, 1)``, an array leaf so that sweeps over it neither
  recompile nor block ``vmap``.

A batch of games is the same class with a leading axis on every leaf (``jax.vmap`` of a generator
makes one); the size properties read the shapes of ONE game.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmail import _npz

Array = jax.Array

_FIELDS = ("transition", "reward", "initial", "discount")


def probability_atol(dtype: Any) -> float:
    """The tolerance to which rows of probabilities must sum to one, for a float dtype.

    ``1e-4`` for 16/32-bit floats (a float32 Dirichlet row over 1000 entries is off by ~1e-5),
    ``1e-8`` for float64.
    """
    return 1e-8 if jnp.dtype(dtype) == jnp.float64 else 1e-4


def input_probability_atol(x: Any, dtype: Any) -> float:
    """:func:`probability_atol` of ``dtype``, or of ``x``'s own float dtype where less precise.

    Float32 probabilities (a game saved without ``jax_enable_x64``) sum to 1 only to ~1e-7, so
    checking them for a float64 game with the float64 tolerance would reject valid data.
    """
    x_dtype = np.dtype(x.dtype) if hasattr(x, "dtype") else np.asarray(x).dtype
    if x_dtype.kind == "f" and x_dtype.itemsize < jnp.dtype(dtype).itemsize:
        return max(probability_atol(dtype), probability_atol(x_dtype))
    return probability_atol(dtype)


def _is_concrete(x: Any) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _float_dtype() -> Any:
    return jnp.result_type(float)  # float32, or float64 under jax_enable_x64


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
    x = np.asarray(x)  # native dtype: no float64 copy of a large tensor
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
class MarkovGame:
    """A finite discounted n-player general-sum Markov game with dense tensors.

    Constructing one from arrays validates it: structure (ranks, shapes, player counts) always,
    even under ``jit``/``vmap``; values (probabilities, ``discount`` range, NaN/inf) whenever the
    arrays are concrete. Nothing is repaired: bad input raises ``ValueError`` naming the field and
    the worst violation. Leaves are cast to the default float dtype (float32, or float64 when
    ``jax_enable_x64`` is on). Rebuilding from leaves (``jax.tree_util``, ``vmap`` outputs)
    skips validation, which is what lets a batch of games carry a leading axis.

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
        dtype = _float_dtype()
        for name in _FIELDS:
            value = getattr(self, name)
            kind = np.asarray(value).dtype.kind if _is_concrete(value) else value.dtype.kind
            if kind not in "fiub":
                raise TypeError(f"{name}: expected a real numeric array, got dtype kind {kind!r}")
        _check_structure(self)
        if all(_is_concrete(getattr(self, f)) for f in _FIELDS):
            _check_values(self)
        from jaxmail import checking  # traced values: checked mode only (checking imports game)

        checking.check_game(self)
        for name in _FIELDS:
            object.__setattr__(self, name, jnp.asarray(getattr(self, name), dtype=dtype))

    # -- pytree protocol: rebuilding from leaves does not re-validate. --
    def tree_flatten(self):
        return tuple(getattr(self, f) for f in _FIELDS), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        del aux
        obj = object.__new__(cls)
        for name, value in zip(_FIELDS, children):
            object.__setattr__(obj, name, value)
        return obj

    # -- sizes, read from shapes (valid on one game, not on a batch). --
    @property
    def num_players(self) -> int:
        """``n``."""
        return self.reward.shape[0]

    @property
    def num_states(self) -> int:
        """``S``."""
        return self.transition.shape[0]

    @property
    def num_actions(self) -> tuple[int, ...]:
        """``(A_1, ..., A_n)``."""
        return tuple(self.transition.shape[1:-1])

    @property
    def num_joint_actions(self) -> int:
        """``prod_i A_i``."""
        return int(np.prod(self.num_actions))

    @property
    def dtype(self):
        return self.transition.dtype

    def replace(self, **changes) -> MarkovGame:
        """A copy with some fields replaced (validated like a new game)."""
        fields = {f: getattr(self, f) for f in _FIELDS}
        fields.update(changes)
        return MarkovGame(**fields)

    def __repr__(self) -> str:
        shape = getattr(self.transition, "shape", None)
        if shape is None or len(shape) < 2:
            return f"MarkovGame(transition={self.transition!r}, ...)"
        batch = tuple(getattr(self.discount, "shape", ()))  # leading axes of a batch of games
        shape = shape[len(batch) :]
        prefix = f"batch_shape={batch}, " if batch else ""
        return (
            f"MarkovGame({prefix}num_players={len(shape) - 2}, num_states={shape[0]}, "
            f"num_actions={tuple(shape[1:-1])}, dtype={self.transition.dtype})"
        )


def _shape(x) -> tuple[int, ...]:
    return tuple(np.shape(x)) if not hasattr(x, "shape") else tuple(x.shape)


def _check_structure(game: MarkovGame) -> None:
    P, R, mu0, gamma = (_shape(getattr(game, f)) for f in _FIELDS)
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


def _check_values(game: MarkovGame) -> None:
    dtype = _float_dtype()
    atol = input_probability_atol(game.transition, dtype)
    check_distributions("transition", np.asarray(game.transition), atol=atol, index_names="s, a")
    _check_finite("reward", np.asarray(game.reward))
    atol = input_probability_atol(game.initial, dtype)
    check_distributions("initial", np.asarray(game.initial, dtype=np.float64), atol=atol)
    gamma = float(np.asarray(game.discount))
    if not np.isfinite(gamma) or not 0.0 <= gamma < 1.0:
        raise ValueError(f"discount: must lie in [0, 1), got {gamma}")
    # A discount that rounds to 1 in the working dtype makes I - gamma P singular.
    if float(np.asarray(gamma, dtype=_float_dtype())) >= 1.0:
        raise ValueError(
            f"discount: {gamma} rounds to 1.0 in {jnp.dtype(_float_dtype()).name}; "
            "enable jax_enable_x64 or use a smaller discount"
        )


# --------------------------------------------------------------------------------------------
# Files.
# --------------------------------------------------------------------------------------------

_FORMAT = "jaxmail.MarkovGame/1"


def save_game(path: str | os.PathLike, game: MarkovGame) -> None:
    """Writes one game to ``path`` as ``.npz`` (no pickle), atomically.

    The file holds the four tensors and a format tag. A partly written file never appears under
    ``path``: the data goes to a temporary file in the same folder that is then renamed.
    """
    if not os.fspath(path).endswith(".npz"):
        raise ValueError(f"path: a game file must end in .npz, got {os.fspath(path)!r}")
    if np.ndim(game.discount) != 0:
        raise ValueError("game: save_game writes one game; got a batch (discount is not a scalar)")
    arrays = {f: np.asarray(getattr(game, f)) for f in _FIELDS}
    _npz.save(path, arrays, tag=_FORMAT, kind="game")


def load_game(path: str | os.PathLike) -> MarkovGame:
    """Reads a game written by :func:`save_game` and validates it like a new one."""
    return MarkovGame(**_npz.load(path, _FIELDS, tag=_FORMAT, kind="game"))
