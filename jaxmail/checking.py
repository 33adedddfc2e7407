"""Checked mode: the value checks of games, policies and datasets, inside ``jit`` too.

Built from concrete arrays, a game, a policy or a dataset is validated eagerly (rows are
distributions, rewards finite, ``discount`` in ``[0, 1)``, indices in range), and the message
names the field and the worst violation. Inside ``jit``/``vmap`` the values are tracers, and the
kernels trust their inputs: a discount of 1.5 gives a negative Nash gap, a NaN reward a NaN
result, and out-of-range action indices all-zero policy rows, all with ``converged=True``.

:func:`checked` is the debugging mode for that case. ``checked(fn)`` runs ``fn`` (usually
``jax.jit(f)``) with every value check compiled into the program and raises the first
violation as a ``ValueError``::

    jm.checked(jax.jit(f))(*args)   # ValueError: discount: must lie in [0, 1) in float32, ...

What is checked, wherever the values are traced:

* every :class:`~jaxmail.MarkovGame` built inside ``fn`` or passed to it (:func:`check_game`):
  ``transition`` rows and ``initial`` are distributions within
  :func:`~jaxmail.game.input_probability_atol` (the eager tolerance), ``reward`` is finite,
  ``discount`` lies in ``[0, 1)`` in the game's dtype;
* every policy a kernel receives (:func:`check_policy_values`): rows are distributions;
* the action indices of :func:`~jaxmail.deterministic_policy` and the masked-in states and
  actions of a dataset checked against a game (:func:`check_indices`,
  :func:`check_dataset_values`);
* the result: no NaN in any floating leaf of ``fn``'s output.

The messages are the eager validators' (field, kind of violation, place and size of the worst
or first violation) with the run-time numbers filled in.

How it works. The check sites (the traced branches of the validators in ``game``, ``policy``
and ``data``) call this module, which in checked mode emits one ``jax.debug.callback`` per
check: the predicate and the numbers of the message travel to the host, which records the
violations; :func:`checked` waits for the callbacks (``jax.effects_barrier``) and raises the
first one. Checked mode is a JAX configuration state that is part of every ``jit`` cache key,
so ``checked(jax.jit(f))`` retraces ``f`` with the checks even after ``jax.jit(f)`` ran
unchecked with the same shapes, and an unchecked program never carries them (an effect in a
compiled function costs its fast dispatch path, ~0.5 ms a call, besides the host round trips).

Why not ``jax.experimental.checkify`` (or ``chex.chexify``, which wraps it): checkify
functionalizes every check through the whole program, and it refuses a ``while_loop`` under
``vmap`` ("Checkify does not support batched while-loops"), which every kernel that computes
best responses contains (policy iteration is vmapped over players). Callbacks work under
``vmap`` (once per batch element), ``while_loop``, ``scan`` and ``grad``.

Limits: ``checked`` must be the outermost transformation (its arguments are concrete; they are
checked on the host before the call), one ``checked`` call at a time per process (the
violations are collected in one host-side list), and a game rebuilt from leaves inside ``fn``
(``jax.tree_util``) skips construction, so it is checked only if it is an argument of ``fn``.
Policies reach the checks through the kernels; ``deterministic_policy`` and
``check_dataset`` check their indices themselves.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmail._arrays import default_float_dtype, is_concrete
from jaxmail.game import MarkovGame, input_probability_atol

if TYPE_CHECKING:
    from jaxmail.data import Dataset

Array = jax.Array

__all__ = [
    "checked",
    "check_dataset_values",
    "check_dtype",
    "check_game",
    "check_indices",
    "check_policy_values",
    "enabled",
]


def _mode_state():
    """The checked-mode flag: a context manager factory ``state(True)`` with a ``.value``.

    Preferably a JAX configuration state that is part of JAX's trace context and jit cache key
    (JAX offers no public way to declare one), so that a jit traced with the checks never
    serves an unchecked call, and the reverse. Where this JAX lacks it, a thread-local flag
    whose changes clear JAX's caches (correct, but every checked call recompiles).
    """
    try:
        from jax._src import config as jax_config

        if "jaxmail_checked_mode" in jax_config.config_states:  # this module reloaded
            return jax_config.config_states["jaxmail_checked_mode"]
        return jax_config.bool_state(
            "jaxmail_checked_mode",
            False,
            "jaxmail: emit value checks in traced code; set by jaxmail.checked.",
            include_in_jit_key=True,  # the C++ dispatch cache of jit
            include_in_trace_context=True,  # the tracing caches
        )
    except (ImportError, AttributeError, TypeError):  # pragma: no cover (other JAX versions)
        return _ClearingFlag()


class _ClearingFlag(threading.local):
    value = False

    @contextlib.contextmanager
    def __call__(self, value: bool):
        old, self.value = self.value, value
        jax.clear_caches()
        try:
            yield
        finally:
            self.value = old
            jax.clear_caches()


_CHECKED = _mode_state()

# Violations reported by the callbacks of the running checked call (host side).
_LOCK = threading.Lock()
_VIOLATIONS: list[str] = []


def enabled() -> bool:
    """Whether checked mode is on (inside a call of a :func:`checked` function)."""
    return bool(_CHECKED.value)


def checked(fn: Callable) -> Callable:
    """``fn`` with the value checks of games, policies, indices and results run inside ``jit``.

    Args:
      fn: any function of arrays and pytrees; typically ``jax.jit(f)`` or a function that calls
        jaxmail kernels under ``jit``/``vmap``.

    Returns:
      A function with ``fn``'s signature and results. Before the call it checks the games among
      its arguments; during the call, every game, policy, index array and dataset that reaches
      a check site with traced values; after it, that no floating leaf of the result is NaN.
      Valid inputs give ``fn``'s results unchanged.

    Raises:
      ValueError: the first violation, naming the field and the violation, e.g.
        ``"discount: must lie in [0, 1) in float32, got 1.5"`` (with the count of further
        violations, if any).
      RuntimeError: a ``checked`` function called inside another one or under a transformation.

    Example:
      >>> def gap(discount):
      ...     game = game0.replace(discount=discount)      # built inside jit: traced
      ...     return jm.nash_gap(game, jm.uniform_policy(game)).nash_gap
      >>> jm.checked(jax.jit(gap))(1.5)                   # doctest: +SKIP
      ValueError: discount: must lie in [0, 1) in float32, got 1.5
    """
    if not callable(fn):
        raise TypeError(f"fn: expected a callable, got {type(fn).__name__}")

    @functools.wraps(fn)
    def call(*args, **kwargs):
        if enabled():
            raise RuntimeError("checked: do not nest checked functions; wrap the outermost one")
        if any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves((args, kwargs))):
            raise RuntimeError(
                "checked: must be the outermost transformation (it got traced arguments); "
                "apply jit/vmap/grad inside it"
            )
        for path, leaf in _walk((args, kwargs)):
            if isinstance(leaf, MarkovGame):
                check_game(leaf, name=path, force=True)
        with _LOCK:
            _VIOLATIONS.clear()
        with _CHECKED(True):
            out = fn(*args, **kwargs)
            jax.block_until_ready(out)
            jax.effects_barrier()  # every callback of the call has reported
        with _LOCK:
            found = list(dict.fromkeys(_VIOLATIONS))  # unique, in the order reported
            _VIOLATIONS.clear()
        if found:
            more = f" (and {len(found) - 1} more violations)" if len(found) > 1 else ""
            raise ValueError(found[0] + more)
        _check_results(out)
        return out

    return call


def _walk(tree) -> list[tuple[str, Any]]:
    """``(path, node)`` for every leaf of ``tree``, games and datasets kept whole."""
    from jaxmail.data import Dataset  # data imports policy, which imports this module

    leaves, _ = jax.tree_util.tree_flatten_with_path(
        tree, is_leaf=lambda x: isinstance(x, (MarkovGame, Dataset))
    )
    return [(_path_name(path), leaf) for path, leaf in leaves]


def _path_name(path) -> str:
    """``args[0]`` / ``kwargs['game']`` for the ``(args, kwargs)`` tree, else ``keystr``."""
    text = jax.tree_util.keystr(path)
    if text.startswith("[0]"):
        return "args" + text[3:]
    if text.startswith("[1]"):
        return "kwargs" + text[3:]
    return text


def _check_results(out) -> None:
    """Raises ``ValueError`` when a floating leaf of ``out`` holds a NaN, naming its path."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(out)
    for path, leaf in leaves:
        dtype = getattr(leaf, "dtype", None)
        if dtype is None or not jnp.issubdtype(dtype, jnp.inexact):
            continue  # integers, booleans, PRNG keys, Python objects
        bad = np.isnan(np.asarray(leaf))
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"result{jax.tree_util.keystr(path)}: {int(bad.sum())} entries are NaN; "
                f"first at index {idx}"
            )


def _format(message: str, values) -> str:
    return message.format(*(np.asarray(v).item() for v in values))


def _record(ok, *values, message: str) -> None:
    """Host side of a check: records the formatted message when ``ok`` is False."""
    if not bool(np.all(ok)):
        text = _format(message, values)
        with _LOCK:
            _VIOLATIONS.append(text)


def _report(ok: Array, message: str, *values: Array) -> None:
    """Asserts ``ok``, else reports ``message.format(*values)``: now if concrete, else at run time.

    Concrete: raises ``ValueError`` at once. Traced: one ``jax.debug.callback`` that sends ``ok``
    and ``values`` (scalars) to the host, where :func:`checked` collects the violations.
    """
    if all(is_concrete(x) for x in (ok, *values)):
        if not bool(np.all(ok)):
            raise ValueError(_format(message, values))
        return
    jax.debug.callback(functools.partial(_record, message=message), ok, *values)


# ----------------------------------------------------------------------------------------------
# The checks. Each is a no-op outside checked mode and on concrete values (checked eagerly
# where they were built); the messages follow the eager validators'.
# ----------------------------------------------------------------------------------------------


def _index_text(ndim: int) -> str:
    """A format template for an index tuple, as Python prints one: ``({}, {})``, ``({},)``."""
    return "(" + ", ".join(["{}"] * ndim) + ("," if ndim == 1 else "") + ")"


def _numpy_or_jax(*xs):
    """NumPy for concrete arrays (host arithmetic, nothing to compile), else ``jax.numpy``."""
    return np if all(is_concrete(x) for x in xs) else jnp


def _unravel(flat_index: Array, shape: tuple[int, ...]) -> tuple[Array, ...]:
    xp = _numpy_or_jax(flat_index)
    return tuple(xp.asarray(i, np.int32) for i in xp.unravel_index(flat_index, shape))


def _check_finite(name: str, x: Array) -> None:
    """``x`` has no NaN or inf; else the count and the first bad entry (eager message)."""
    if x.size == 0:
        return
    xp = _numpy_or_jax(x)
    x = xp.asarray(x)  # NumPy reductions of a jax.Array would call JAX inside a trace
    bad = ~xp.isfinite(x)
    first = xp.argmax(bad.reshape(-1))
    _report(
        ~xp.any(bad),
        f"{name}: {{}} entries are NaN or inf; first at index {_index_text(x.ndim)} = {{}}",
        xp.sum(bad, dtype=np.int32),
        *_unravel(first, x.shape),
        x.reshape(-1)[first],
    )


def _check_distributions(name: str, x: Array, *, atol: float, index_names: str = "") -> None:
    """The traced twin of :func:`jaxmail.game.check_distributions` (same checks, messages)."""
    _check_finite(name, x)
    if x.size == 0:
        return  # empty axes are rejected statically by the eager validators
    xp = _numpy_or_jax(x)
    x = xp.asarray(x)
    lowest = xp.argmin(x.reshape(-1))
    _report(
        xp.min(x) >= -atol,
        f"{name}: probabilities must be non-negative; most negative entry at index "
        f"{_index_text(x.ndim)} is {{:.3g}} (tolerance {atol:g})",
        *_unravel(lowest, x.shape),
        x.reshape(-1)[lowest],
    )
    sums = xp.sum(x, axis=-1)
    err = xp.abs(sums - 1.0)
    worst = xp.argmax(err.reshape(-1))
    if index_names == "s, a":
        where = " (s={}, a=" + _index_text(sums.ndim - 1) + ")"
    elif index_names:
        where = f" ({index_names}=" + ("{})" if sums.ndim == 1 else _index_text(sums.ndim) + ")")
    else:
        where = " " + _index_text(sums.ndim) if sums.ndim else ""
    _report(
        xp.max(err) <= atol,
        f"{name}: rows must sum to 1 within {atol:g}; worst row{where} sums to {{:.10g}} "
        "(off by {:.3g})",
        *_unravel(worst, sums.shape),
        sums.reshape(-1)[worst],
        err.reshape(-1)[worst],
    )


def check_game(game: MarkovGame, *, name: str = "", force: bool = False) -> None:
    """In checked mode, the eager game checks on traced values.

    ``transition`` ``[S, A_1..A_n, S]`` rows and ``initial`` ``[S]`` are distributions within
    :func:`~jaxmail.game.input_probability_atol` of the default float dtype; ``reward`` is
    finite; ``0 <= discount < 1`` after rounding to that dtype (a discount that rounds to 1
    makes ``I - gamma P`` singular). A batch of games (leading axes) is checked whole.

    Args:
      game: the game; its fields may be raw inputs (any real dtype), as in
        ``MarkovGame.__post_init__``.
      name: a prefix for the field names in messages (``"args[0]"`` gives
        ``"args[0].discount: ..."``).
      force: check even outside checked mode and on concrete values (raising at once).
    """
    if not force and (not enabled() or all(is_concrete(x) for x in jax.tree.leaves(game))):
        return
    prefix = f"{name}." if name else ""
    dtype = default_float_dtype()
    P, R, mu0, gamma = (game.transition, game.reward, game.initial, game.discount)
    xp = _numpy_or_jax(P, R, mu0, gamma)
    _check_distributions(
        f"{prefix}transition",
        xp.asarray(P, dtype),
        atol=input_probability_atol(P, dtype),
        index_names="s, a" if jnp.ndim(gamma) == 0 else "",
    )
    _check_finite(f"{prefix}reward", xp.asarray(R, dtype))
    _check_distributions(
        f"{prefix}initial", xp.asarray(mu0, dtype), atol=input_probability_atol(mu0, dtype)
    )
    gamma = xp.asarray(gamma, dtype).reshape(-1)
    good = xp.isfinite(gamma) & (gamma >= 0) & (gamma < 1)
    _report(
        xp.all(good),
        f"{prefix}discount: must lie in [0, 1) in {jnp.dtype(dtype).name}, got {{}}",
        gamma[xp.argmin(good)],
    )


def check_policy_values(game: MarkovGame, policy: Sequence[Array], *, name: str = "policy"):
    """In checked mode, every traced ``policy[i]`` ``[S, A_i]`` has distributions as rows.

    The tolerance is the eager one, :func:`~jaxmail.game.input_probability_atol` of the game's
    dtype (and the policy's own, where less precise).
    """
    if not enabled():
        return
    for i, p in enumerate(policy):
        if is_concrete(p):
            continue  # checked eagerly
        _check_distributions(
            f"{name}[{i}]",
            jnp.asarray(p, game.dtype),
            atol=input_probability_atol(p, game.dtype),
            index_names="s",
        )


def check_indices(name: str, index: Array, size: int, *, where: str = "state") -> None:
    """In checked mode, every entry of a traced integer ``index`` ``[K]`` lies in ``[0, size)``.

    The message is :func:`~jaxmail.deterministic_policy`'s:
    ``"{name}: index {i} at {where} {k} is out of range [0, size)"``.
    """
    if not enabled() or is_concrete(index):
        return  # concrete indices are checked eagerly
    index = jnp.asarray(index).reshape(-1)
    if index.size == 0:
        return
    bad = (index < 0) | (index >= size)
    first = jnp.argmax(bad)
    _report(
        ~jnp.any(bad),
        f"{name}: index {{}} at {where} {{}} is out of range [0, {size})",
        index[first],
        jnp.asarray(first, jnp.int32),
    )


def check_dataset_values(game: MarkovGame, data: Dataset, *, name: str = "data") -> None:
    """In checked mode, the masked-in states and actions of a traced ``data`` are in range.

    ``states`` ``[N, T]`` in ``[0, S)`` and ``actions[..., i]`` ``[N, T]`` in ``[0, A_i)`` where
    ``mask`` is True; the message names the first bad step ``(trajectory, step)``, as
    :func:`~jaxmail.data.check_dataset` does eagerly.
    """
    if not enabled() or all(is_concrete(x) for x in (data.states, data.actions, data.mask)):
        return  # concrete datasets are checked eagerly
    if data.states.size == 0:
        return
    columns = [("state {}", data.states, game.num_states)]
    columns += [
        (f"action {{}} of player {i}", data.actions[..., i], a)
        for i, a in enumerate(game.num_actions)
    ]
    for what, x, size in columns:
        bad = data.mask & ((x < 0) | (x >= size))
        first = jnp.argmax(bad.reshape(-1))
        _report(
            ~jnp.any(bad),
            f"{name}: {what} out of range [0, {size}) at (trajectory={{}}, step={{}})",
            x.reshape(-1)[first],
            *_unravel(first, bad.shape),
        )


# ----------------------------------------------------------------------------------------------
# Dtypes (always on: a static property).
# ----------------------------------------------------------------------------------------------


def check_dtype(name: str, x: Any, dtype: Any) -> None:
    """Raises ``TypeError`` when using ``x`` in a ``dtype`` computation would round it.

    JAX's promotion decides: when ``jnp.result_type(x, dtype)`` is wider than ``dtype`` (a
    float64 policy for a float32 game, under ``jax_enable_x64``), computing in ``dtype`` would
    silently drop precision that the caller asked for, so the caller must cast one side
    explicitly. Lossless uses pass: narrower floats, integers, weakly typed Python numbers, and
    NumPy float64 arrays when ``jax_enable_x64`` is off (JAX reads them as float32 then).

    Args:
      name: the argument named in the message, e.g. ``"policy[0]"``.
      x: an array (concrete or traced) or array-like.
      dtype: the dtype of the computation (a game's dtype).
    """
    if not hasattr(x, "dtype"):
        return  # Python numbers and lists are weakly typed: they take the game's dtype
    promoted = jnp.result_type(x, dtype)
    if promoted != jnp.dtype(dtype):
        raise TypeError(
            f"{name}: dtype {jnp.result_type(x).name} is wider than the game's "
            f"{jnp.dtype(dtype).name}, and computing in {jnp.dtype(dtype).name} would round it; "
            f"cast the game (jax.tree.map(lambda x: x.astype(jnp.{promoted.name}), game)) or "
            f"the {name.split('[')[0]} to {jnp.dtype(dtype).name} explicitly"
        )
