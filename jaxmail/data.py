"""Demonstrations: trajectory sampling, datasets and empirical occupancy measures.

A :class:`Dataset` holds ``N`` trajectories padded to ``T`` steps: the states, the joint actions,
a validity mask and a per-step weight. Every empirical measure is the weighted, masked histogram

    mu_hat(s) = sum_{k,t} w[k,t] m[k,t] 1{s_kt = s} / sum_{k,t} w[k,t] m[k,t],

an estimate of the normalised discounted occupancy ``d(s) = (1-gamma) sum_t gamma^t Pr(s_t = s)``:

- ``lengths="geometric"`` (the paper's protocol): trajectory lengths ``L ~ Geometric(1-gamma)``
  on ``{1, 2, ...}`` so that ``Pr(L > t) = gamma^t``; every step weighs 1 and the histogram is
  a ratio estimator of ``d`` (steps past the padded horizon ``T`` are lost, probability
  ``gamma^T`` per trajectory).
- ``lengths="fixed"``: every trajectory runs ``T`` steps and step ``t`` weighs ``gamma^t``, which
  estimates ``d`` truncated at ``T`` (bias at most ``gamma^T`` in L1).

The mask also pads dataset SIZES: ``data.truncate(k)`` keeps the first ``k`` trajectories with a
traced ``k``, so a sweep over dataset sizes is one compiled program (shapes stay static).

Shapes: ``n`` players, ``S`` states, ``A_i`` actions of player ``i``, ``N`` trajectories, ``T``
steps per trajectory.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxmail import _records, checking
from jaxmail._arrays import default_float_dtype, host_array, is_concrete
from jaxmail.game import MarkovGame, batch_words, check_game, input_dtype
from jaxmail.policy import check_policy

Array = jax.Array

_FIELDS = ("states", "actions", "mask", "weights")
_FORMAT = "jaxmail.Dataset/1"


@jax.tree_util.register_pytree_node_class
@dataclasses.dataclass(frozen=True, eq=False)
class Dataset(_records.Record):
    """Demonstrations: ``N`` trajectories of joint play, padded to ``T`` steps.

    Constructing one from arrays checks structure always and values when the arrays are concrete
    (states and actions non-negative where masked in and within int32 everywhere, since the cast
    to int32 would wrap them; weights finite and non-negative; at least one valid step).
    Ranges against a game are checked by :func:`check_dataset`, which every learner calls.
    Rebuilding from leaves (``vmap`` outputs, ``jax.tree_util``) skips the checks, so a batch of
    datasets is the same class with a leading axis on every leaf.

    Attributes:
      states: ``[N, T]`` int32 states ``s_kt``.
      actions: ``[N, T, n]`` int32 joint actions ``a_kt``.
      mask: ``[N, T]`` bool, True where step ``t`` of trajectory ``k`` is real data.
      weights: ``[N, T]`` float, the weight of each step in the empirical occupancy (``gamma^t``
        for fixed horizons, 1 for geometric lengths); masked steps are ignored whatever their
        weight.
    """

    states: Array
    actions: Array
    mask: Array
    weights: Array

    def __post_init__(self):
        states, actions, mask, weights = (getattr(self, f) for f in _FIELDS)
        shapes = {f: tuple(np.shape(getattr(self, f))) for f in _FIELDS}
        if len(shapes["states"]) != 2:
            raise ValueError(f"states: expected [N, T], got shape {shapes['states']}")
        if len(shapes["actions"]) != 3 or shapes["actions"][:2] != shapes["states"]:
            raise ValueError(
                f"actions: expected [N, T, n] with [N, T] = {shapes['states']}, got shape "
                f"{shapes['actions']}"
            )
        for name in ("mask", "weights"):
            if shapes[name] != shapes["states"]:
                raise ValueError(
                    f"{name}: expected shape {shapes['states']} (that of states), "
                    f"got {shapes[name]}"
                )
        for name in ("states", "actions"):
            kind = _kind(getattr(self, name))
            if kind not in "iu":
                raise TypeError(f"{name}: expected integers, got dtype kind {kind!r}")
        if _kind(mask) != "b":
            raise TypeError(f"mask: expected booleans, got dtype kind {_kind(mask)!r}")
        if _kind(weights) not in "fiu":
            input_dtype("weights", weights)  # bfloat16 passes; complex, strings, float8 raise
            if _kind(weights) == "b":
                raise TypeError("weights: expected real numbers, got dtype kind 'b'")
        if all(is_concrete(x) for x in (states, actions, mask, weights)):
            _check_values(np.asarray(states), np.asarray(actions), np.asarray(mask), weights)
        for name, x in (("states", states), ("actions", actions)):
            if is_concrete(x):
                _check_int32(name, np.asarray(x))
        object.__setattr__(self, "states", jnp.asarray(states, dtype=jnp.int32))
        object.__setattr__(self, "actions", jnp.asarray(actions, dtype=jnp.int32))
        object.__setattr__(self, "mask", jnp.asarray(mask, dtype=bool))
        object.__setattr__(self, "weights", jnp.asarray(weights, dtype=default_float_dtype()))

    @property
    def num_trajectories(self) -> int:
        """``N``, the padded number of trajectories."""
        return self.states.shape[-2]

    @property
    def horizon(self) -> int:
        """``T``, the padded number of steps per trajectory."""
        return self.states.shape[-1]

    @property
    def num_players(self) -> int:
        """``n``."""
        return self.actions.shape[-1]

    @property
    def num_samples(self) -> Array:
        """``[]`` int32: the number of valid (state, joint action) steps."""
        return jnp.sum(self.mask, axis=(-2, -1), dtype=jnp.int32)

    def truncate(self, num_trajectories: int | Array) -> Dataset:
        """The first ``num_trajectories`` trajectories; the rest are masked out, shapes kept.

        ``num_trajectories`` may be traced, so ``jax.vmap(lambda k: f(data.truncate(k)))(sizes)``
        sweeps dataset sizes in one compilation.
        """
        keep = jnp.arange(self.num_trajectories) < num_trajectories
        return self.replace(mask=self.mask & keep[:, None])

    def replace(self, **changes) -> Dataset:
        """A copy with some fields replaced (validated like a new dataset when concrete)."""
        return dataclasses.replace(self, **changes)

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """The leading batch axes: ``()`` for one dataset, ``(B,)`` for a batch of ``B``."""
        return tuple(
            np.shape(self.states) if not hasattr(self.states, "shape") else self.states.shape
        )[:-2]

    def __repr__(self) -> str:
        shapes = [getattr(getattr(self, f), "shape", None) for f in ("states", "actions")]
        if any(s is None or len(s) < (2 if f == "states" else 3) for f, s in zip(_FIELDS, shapes)):
            return f"Dataset(states={self.states!r}, ...)"  # leaves that are not arrays
        batch = tuple(shapes[0][:-2])
        prefix = f"batch_shape={batch}, " if batch else ""
        mask = self.mask
        concrete = isinstance(mask, (jax.Array, np.ndarray)) and is_concrete(mask)
        samples = int(np.sum(np.asarray(mask))) if concrete and not batch else "?"
        return (
            f"Dataset({prefix}num_trajectories={shapes[0][-2]}, horizon={shapes[0][-1]}, "
            f"num_players={shapes[1][-1]}, num_samples={samples})"
        )


def _kind(x) -> str:
    return np.asarray(x).dtype.kind if is_concrete(x) else x.dtype.kind


_INT32 = np.iinfo(np.int32)


def _check_int32(name: str, x: np.ndarray) -> None:
    """Raises unless every entry of the integer array ``x`` fits int32 (checked before the cast,
    which would wrap ``2**31 + 1`` to ``-2147483647``), masked steps included."""
    if x.size == 0 or x.dtype.kind not in "iu":
        return
    bad = (x > _INT32.max) if x.dtype.kind == "u" else (x > _INT32.max) | (x < _INT32.min)
    if np.any(bad):
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name}: value {int(x[where])} at index {where} does not fit int32 "
            f"[{_INT32.min}, {_INT32.max}]; {int(bad.sum())} such entries"
        )


def _check_values(states, actions, mask, weights) -> None:
    weights = host_array(weights).astype(np.float64)
    if not np.all(np.isfinite(weights)):
        raise ValueError(f"weights: {int(np.sum(~np.isfinite(weights)))} entries are NaN or inf")
    if np.any(weights < 0):
        raise ValueError(f"weights: must be non-negative, minimum {weights.min():.6g}")
    for name, x in (("states", states), ("actions", actions)):
        bad = mask[..., None] & (x < 0) if x.ndim == 3 else mask & (x < 0)
        if np.any(bad):
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"{name}: negative value {x[where]} at index {where}")
    if states.ndim == 2 and not np.any(mask & (weights > 0)):
        raise ValueError(
            "dataset is empty: no step has mask True and a positive weight "
            f"({int(mask.sum())} masked-in steps of {mask.size})"
        )


def check_dataset(game: MarkovGame, data: Dataset, *, name: str = "data") -> Dataset:
    """Checks a dataset against a game: player count always, ranges when concrete.

    Raises:
      TypeError: ``data`` is not a :class:`Dataset`.
      ValueError: the number of players differs, ``data`` or ``game`` is a batch, an index does
        not fit int32, or a (masked-in) state or action is out of range (negative included); the
        message names the first offending step ``(trajectory, step)``.
    """
    if not isinstance(data, Dataset):
        raise TypeError(f"{name}: expected a jaxmail.data.Dataset, got {type(data).__name__}")
    if isinstance(game, MarkovGame):
        check_game(game)
    if data.batch_shape:
        raise ValueError(
            f"{name}: expected one dataset [N, T], got states {tuple(data.states.shape)}: "
            f"{batch_words(data.batch_shape).replace('games', 'datasets')}"
        )
    if data.num_players != game.num_players:
        raise ValueError(
            f"{name}: actions have {data.num_players} players, the game has {game.num_players}"
        )
    if data.states.ndim != 2:
        raise ValueError(f"{name}: expected one dataset [N, T], got states {data.states.shape}")
    if all(is_concrete(x) for x in (data.states, data.actions, data.mask)):
        states, actions, mask = (np.asarray(x) for x in (data.states, data.actions, data.mask))
        # A dataset rebuilt from leaves (jax.tree_util) skipped the constructor's checks.
        _check_int32(f"{name}.states", states)
        _check_int32(f"{name}.actions", actions)
        bad = mask & ((states < 0) | (states >= game.num_states))
        if np.any(bad):
            k, t = np.argwhere(bad)[0]
            raise ValueError(
                f"{name}: state {states[k, t]} out of range [0, {game.num_states}) at "
                f"(trajectory={k}, step={t})"
            )
        for i, a in enumerate(game.num_actions):
            bad = mask & ((actions[..., i] < 0) | (actions[..., i] >= a))
            if np.any(bad):
                k, t = np.argwhere(bad)[0]
                raise ValueError(
                    f"{name}: action {actions[k, t, i]} of player {i} out of range [0, {a}) at "
                    f"(trajectory={k}, step={t})"
                )
    checking.check_dataset_values(game, data, name=name)
    return data


# ----------------------------------------------------------------------------------------------
# Sampling.


def _cdf(p: Array) -> Array:
    """Cumulative sums along the last axis, computed at run time.

    The optimisation barrier stops XLA from constant-folding the sum when the game is a
    constant of the caller's ``jit`` (closed over): folding a ``[S A, S]`` cumulative sum took
    seconds of compile time.
    """
    return jnp.cumsum(jax.lax.optimization_barrier(p), axis=-1)


def _draw(cdf: Array, u: Array) -> Array:
    """Inverse-CDF draw: the ``j`` with ``cdf[j-1] <= u * cdf[-1] < cdf[j]``.

    One uniform per draw (``jax.random.categorical`` draws one Gumbel per category: 30x slower
    here); zero-probability entries have empty intervals and are never drawn, and scaling by
    ``cdf[-1]`` absorbs rounding in the sum.
    """
    return jnp.sum(cdf <= u * cdf[..., -1:], axis=-1, dtype=jnp.int32)


def _sample_trajectory(key, game, policy_cdf, transition_cdf, initial_cdf, horizon):
    """One trajectory of ``horizon`` steps: ``([T] states, [T, n] actions)``."""
    strides = np.cumprod((1,) + game.num_actions[::-1])[::-1]  # joint index = sum a_i stride_i
    n = game.num_players

    def step(state, u):  # u: [n + 1] uniforms
        actions = jnp.stack([_draw(c[state], u[i]) for i, c in enumerate(policy_cdf)])
        row = state * int(strides[0]) + jnp.dot(actions, jnp.asarray(strides[1:], jnp.int32))
        return _draw(transition_cdf[row], u[n]), (state, actions)

    k0, k_steps = jax.random.split(key)
    s0 = _draw(initial_cdf, jax.random.uniform(k0, dtype=game.dtype))
    uniforms = jax.random.uniform(k_steps, (horizon, n + 1), dtype=game.dtype)
    _, (states, actions) = jax.lax.scan(step, s0, uniforms)
    return states, actions


def sample_demonstrations(
    key: Array,
    game: MarkovGame,
    policy: Sequence[Array],
    *,
    num_trajectories: int,
    horizon: int,
    lengths: str = "fixed",
) -> Dataset:
    """Samples ``num_trajectories`` trajectories of joint play under ``policy``.

    ``s_0 ~ mu0``, ``a_t ~ prod_i pi_i(.|s_t)``, ``s_{t+1} ~ P(.|s_t, a_t)``. Traceable: vmap it
    over keys (or over games and policies) for many datasets at once.

    Args:
      key: PRNG key (consumed).
      game: the game.
      policy: ``n`` arrays ``[S, A_i]``, the demonstrator (usually the expert).
      num_trajectories: ``N`` (static).
      horizon: ``T``, steps per trajectory, or the cap on geometric lengths (static).
      lengths: ``"fixed"`` (all ``T`` steps valid, step ``t`` weighs ``gamma^t``) or
        ``"geometric"`` (length ``L ~ Geometric(1-gamma)`` on ``{1, 2, ...}``, capped at ``T``;
        steps ``t < L`` valid with weight 1), see the module docstring.

    Returns:
      A :class:`Dataset` with ``[N, T]`` states.
    """
    policy = check_policy(game, policy)
    if lengths not in ("fixed", "geometric"):
        raise ValueError(f"lengths: expected 'fixed' or 'geometric', got {lengths!r}")
    for name, value in (("num_trajectories", num_trajectories), ("horizon", horizon)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name}: expected a positive int (static), got {value!r}")
    return _sample(key, game, policy, num_trajectories, horizon, lengths)


@functools.partial(jax.jit, static_argnums=(3, 4, 5))
def _sample(key, game, policy, num_trajectories, horizon, lengths):
    k_traj, k_len = jax.random.split(key)
    keys = jax.random.split(k_traj, num_trajectories)
    transition_cdf = _cdf(game.transition.reshape(-1, game.num_states))  # [S * prod A, S]
    policy_cdf = tuple(_cdf(p) for p in policy)
    states, actions = jax.vmap(_sample_trajectory, in_axes=(0,) + (None,) * 5)(
        keys, game, policy_cdf, transition_cdf, _cdf(game.initial), horizon
    )
    steps = jnp.arange(horizon)
    dtype = game.dtype
    if lengths == "fixed":
        mask = jnp.ones((num_trajectories, horizon), dtype=bool)
        weights = jnp.broadcast_to(game.discount.astype(dtype) ** steps, mask.shape)
    else:
        # L = 1 + floor(log U / log gamma), U ~ Uniform(0, 1]: Pr(L > t) = gamma^t.
        u = jax.random.uniform(k_len, (num_trajectories,), dtype=dtype, minval=0.0, maxval=1.0)
        u = 1.0 - u  # (0, 1]
        log_gamma = jnp.log(jnp.clip(game.discount.astype(dtype), jnp.finfo(dtype).tiny))
        length = 1.0 + jnp.floor(jnp.log(u) / log_gamma)
        mask = steps[None, :] < length[:, None]
        weights = jnp.ones(mask.shape, dtype)
    return Dataset.tree_unflatten(None, (states, actions, mask, weights))


# ----------------------------------------------------------------------------------------------
# Empirical measures.


def _step_weights(data: Dataset) -> Array:
    """``[N, T]`` effective weights ``w * m`` normalised to sum 1 (zeros for an empty dataset)."""
    w = jnp.where(data.mask, data.weights, 0.0)
    total = jnp.sum(w)
    return w / jnp.where(total > 0, total, 1.0)


def empirical_state_occupancy(game: MarkovGame, data: Dataset) -> Array:
    """``[S]`` empirical discounted state occupancy ``mu_hat`` (module docstring); sums to 1."""
    check_dataset(game, data)
    w = _step_weights(data)
    return jnp.zeros(game.num_states, w.dtype).at[data.states].add(w)


def empirical_state_action_occupancy(game: MarkovGame, data: Dataset) -> tuple[Array, ...]:
    """Per-player empirical ``rho_hat_i(s, a_i)``, ``n`` arrays ``[S, A_i]``, each summing to 1."""
    check_dataset(game, data)
    w = _step_weights(data)
    return tuple(
        jnp.zeros((game.num_states, a), w.dtype).at[data.states, data.actions[..., i]].add(w)
        for i, a in enumerate(game.num_actions)
    )


def empirical_joint_state_action_occupancy(game: MarkovGame, data: Dataset) -> Array:
    """Empirical joint ``rho_hat(s, a)``, ``[S, A_1, ..., A_n]``, summing to 1."""
    check_dataset(game, data)
    w = _step_weights(data)
    index = (data.states,) + tuple(data.actions[..., i] for i in range(game.num_players))
    return jnp.zeros((game.num_states, *game.num_actions), w.dtype).at[index].add(w)


def action_counts(game: MarkovGame, data: Dataset, *, weighted: bool = False) -> tuple[Array, ...]:
    """Per-player counts ``c_i(s, a_i)`` of valid steps, ``n`` arrays ``[S, A_i]``.

    With ``weighted=True`` each step counts its weight (``gamma^t`` for fixed horizons) instead
    of 1. These are the sufficient statistics of tabular behavioural cloning.
    """
    check_dataset(game, data)
    w = jnp.where(data.mask, data.weights if weighted else 1.0, 0.0).astype(default_float_dtype())
    return tuple(
        jnp.zeros((game.num_states, a), w.dtype).at[data.states, data.actions[..., i]].add(w)
        for i, a in enumerate(game.num_actions)
    )


# ----------------------------------------------------------------------------------------------
# Files.


def save_dataset(path: str | os.PathLike, data: Dataset) -> None:
    """Writes one dataset to ``path`` as ``.npz`` (no pickle), atomically (temp file + rename)."""
    _records.check_path(path, kind="dataset")
    if data.states.ndim != 2:
        raise ValueError(f"data: save_dataset writes one dataset; got states {data.states.shape}")
    _records.save(path, data, tag=_FORMAT, kind="dataset")


def load_dataset(path: str | os.PathLike) -> Dataset:
    """Reads a dataset written by :func:`save_dataset` and validates it like a new one.

    Raises:
      FileNotFoundError: no file at ``path``.
      ValueError: the file is not a readable dataset file (a ``.npy``, empty, text or truncated
        file, a missing field, another format), or the dataset it holds is invalid; the message
        starts with the path.
      TypeError: a field has the wrong dtype; the message starts with the path.
    """
    return _records.load(path, Dataset, tag=_FORMAT, kind="dataset")
