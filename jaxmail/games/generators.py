"""Random Markov games: pure, key-first generators that ``jit`` and ``vmap``.

Shapes: ``n`` players, ``S`` states, ``A_i`` actions of player ``i``, ``k`` the branching factor.

Every generator takes a PRNG key first (consumed), sizes and options as static keyword
arguments (``concentration`` too: it picks the sampler), and ``discount`` (and ``own_weight``)
as values that may be traced, so that

    jax.vmap(lambda k: random_game(k, num_states=32, num_actions=(3, 3, 2), discount=0.95))(keys)

returns ONE :class:`~jaxmail.MarkovGame` whose leaves carry a leading batch axis, and a sweep over
``discount`` neither recompiles nor blocks ``vmap``. No NumPy randomness, no Python loop over
states. Eagerly (concrete arrays) the result is validated like any new game; under ``jit``/``vmap``
only its structure is checked (MarkovGame's contract).

Common conventions:

* Transitions: every row ``P[s, a, .]`` is ``Dirichlet(concentration)`` over all ``S`` next
  states (dense), or, with ``branching=k``, ``Dirichlet(concentration)`` over ``k`` distinct
  next states drawn uniformly without replacement (every other entry exactly 0), independently
  per row. With the default ``concentration = 1`` every drawn weight is strictly positive, so a
  dense row has full support and a sparse row exactly ``k`` nonzero entries.
* Rewards are drawn uniformly in ``[-1, 1]`` (the range the paper's bounds assume).
* One stream whatever the dtype: every random number is drawn in float32 and then cast to the
  game's dtype, so the same key gives the same game in float32 and in float64 (to float32
  rounding), and a float32-against-float64 comparison compares one game.
* ``initial="uniform"`` (default): ``mu0 = 1/S``, a deterministic full-support start;
  ``initial="dirichlet"``: ``mu0 ~ Dirichlet(1)``.
* Memory budget: before allocating, every generator computes the size in bytes of the dense
  transition tensor ``S * S * prod_i A_i * itemsize`` (float32: 4 bytes; float64: 8) and raises
  ``ValueError`` naming it when it exceeds ``max_bytes`` (default 4 GiB, per game; a vmapped
  batch of ``B`` games needs ``B`` times that). Generation briefly needs about as much again for
  the random draws.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmail._args import check_choice
from jaxmail._arrays import default_float_dtype, is_concrete
from jaxmail.game import MarkovGame
from jaxmail.responses import solve_mdp

Array = jax.Array

DEFAULT_MAX_BYTES = 4 * 2**30  # 4 GiB per game
INITIALS = ("uniform", "dirichlet")


class DominantStrategyGame(NamedTuple):
    """A game with a known dominant-strategy expert (docs/theory.md §3.5, Def 8).

    Attributes:
      game: the :class:`~jaxmail.MarkovGame`.
      expert: ``n`` one-hot arrays ``[S, A_i]``; ``expert[i]`` is a best response to EVERY
        policy of the others, from every state.
    """

    game: MarkovGame
    expert: tuple[Array, ...]


class ControlledDominantGame(NamedTuple):
    """A single-controller game with a dominant-strategy expert.

    Attributes:
      game: the :class:`~jaxmail.MarkovGame`.
      expert: ``n`` one-hot arrays ``[S, A_i]``, each a best response to every policy of the
        others (see :func:`single_controller_dominant_game`).
      converged: ``[]`` bool: policy iteration on the controller's MDP converged (the
        controller's expert is optimal only then; with the default cap it always does).
    """

    game: MarkovGame
    expert: tuple[Array, ...]
    converged: Array


# ----------------------------------------------------------------------------------------------
# Parameter checks (static sizes always; real values when concrete).
# ----------------------------------------------------------------------------------------------


def _check_count(name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}: expected a Python int (static), got {value!r}")
    if value < 1:
        raise ValueError(f"{name}: must be >= 1, got {value}")
    return int(value)


def _check_actions(num_actions, *, num_players: int | None = None) -> tuple[int, ...]:
    if isinstance(num_actions, (int, np.integer)) and not isinstance(num_actions, bool):
        if num_players is None:
            raise ValueError(
                "num_actions: expected a sequence (A_1, ..., A_n) with one count per player, "
                f"got {num_actions!r}"
            )
        num_actions = (num_actions,) * num_players
    if not isinstance(num_actions, Sequence) or len(num_actions) == 0:
        raise ValueError(
            f"num_actions: expected a non-empty sequence (A_1, ..., A_n), got {num_actions!r}"
        )
    actions = tuple(_check_count(f"num_actions[{i}]", a) for i, a in enumerate(num_actions))
    if num_players is not None and len(actions) != num_players:
        raise ValueError(
            f"num_actions: this family has {num_players} players; got {len(actions)} action "
            f"counts {actions}"
        )
    return actions


def _check_real(name: str, value, *, low: float, high: float, closed_high: bool) -> None:
    """Range check of a scalar parameter, when concrete (traced values are trusted)."""
    if not is_concrete(value):
        if jnp.ndim(value) != 0:
            raise ValueError(f"{name}: expected a scalar, got shape {jnp.shape(value)}")
        return
    arr = np.asarray(value)
    if arr.ndim != 0:
        raise ValueError(f"{name}: expected a scalar, got shape {arr.shape}")
    x = float(arr)
    ok = np.isfinite(x) and low <= x and (x <= high if closed_high else x < high)
    if not ok:
        bracket = "]" if closed_high else ")"
        raise ValueError(f"{name}: must lie in [{low:g}, {high:g}{bracket}, got {x}")


def _check_discount(discount) -> None:
    _check_real("discount", discount, low=0.0, high=1.0, closed_high=False)


def _check_concentration(concentration) -> float:
    ok = isinstance(concentration, (int, float, np.integer, np.floating)) and not isinstance(
        concentration, (bool, np.bool_)
    )
    if not ok or not np.isfinite(concentration) or concentration <= 0:
        raise ValueError(
            f"concentration: expected a finite Python number > 0 (static), got {concentration!r}"
        )
    return float(concentration)


def _check_branching(branching, num_states: int) -> int | None:
    if branching is None:
        return None
    k = _check_count("branching", branching)
    if k > num_states:
        raise ValueError(
            f"branching: at most num_states = {num_states} next states per row, got {k}"
        )
    return k


def _format_bytes(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} B"


def check_memory(num_states: int, num_actions: Sequence[int], *, max_bytes: int) -> int:
    """Size in bytes of the dense transition tensor; raises when it exceeds ``max_bytes``.

    ``S * S * prod_i A_i * itemsize``, with the item size of the default float dtype (4, or 8
    under ``jax_enable_x64``). Called by every generator before it allocates anything.

    Raises:
      ValueError: naming the shape, the size and the budget.
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer, float)):
        raise ValueError(f"max_bytes: expected a number of bytes, got {max_bytes!r}")
    dtype = jnp.dtype(default_float_dtype())
    shape = (num_states, *num_actions, num_states)
    size = math.prod(shape) * dtype.itemsize
    if size > max_bytes:
        raise ValueError(
            f"transition: the dense tensor of shape {shape} in {dtype.name} needs {size} bytes "
            f"({_format_bytes(size)}), over the budget max_bytes = {int(max_bytes)} "
            f"({_format_bytes(int(max_bytes))}); use fewer states or actions, or raise max_bytes"
        )
    return size


class _Spec(NamedTuple):
    """The checked sizes and options of one generator call: hashable, so one ``jit`` static."""

    num_states: int
    num_actions: tuple[int, ...]
    branching: int | None
    concentration: float
    initial: str


def _check_common(
    num_states, num_actions, discount, branching, concentration, initial, max_bytes, *, players=None
) -> _Spec:
    """The checks every generator makes; ``players`` fixes the number of players, if given."""
    num_states = _check_count("num_states", num_states)
    actions = _check_actions(num_actions, num_players=players)
    _check_discount(discount)
    k = _check_branching(branching, num_states)
    concentration = _check_concentration(concentration)
    check_choice("initial", initial, INITIALS)
    check_memory(num_states, actions, max_bytes=max_bytes)
    return _Spec(num_states, actions, k, concentration, initial)


# ----------------------------------------------------------------------------------------------
# Building blocks (traced; sizes static).
# ----------------------------------------------------------------------------------------------


SAMPLE_DTYPE = jnp.float32
"""The one dtype every generator draws its random numbers in, whatever the game's dtype.

The draws are then cast to the game's dtype (float32, or float64 under ``jax_enable_x64``),
so the same key gives the same game in both: a float64 game equals the float32 one to float32
rounding of the arithmetic after the draw (normalising a row, ``2u - 1``). Drawing in the
game's dtype would not: ``jax.random.uniform`` spends 64 random bits per float64 draw, so the
stream, and every number of the game, would change with the dtype.
"""


def _uniform01(key, shape, dtype, minval=0.0):
    """``U[minval, 1)`` of ``shape``, drawn FLAT in :data:`SAMPLE_DTYPE`, reshaped and cast.

    jaxlib 0.10's threefry takes seconds to compile for a rank-5 shape and a fraction of that
    for a flat one (measured 2.5 s against 0.4 s of CPU for 36,864 draws), and every new game
    shape compiles anew; flat draws keep the generators quick to compile.
    """
    flat = jax.random.uniform(key, (math.prod(shape),), SAMPLE_DTYPE, minval, 1.0)
    return flat.reshape(shape).astype(dtype)


def _dirichlet(key, concentration: float, shape, size: int, dtype):
    """``[*shape, size]`` rows ``~ Dirichlet(concentration)`` (symmetric).

    ``concentration == 1`` (the default) normalises i.i.d. ``Exp(1)`` draws ``-log U`` with
    ``U ~ U[tiny, 1)`` (``tiny`` of :data:`SAMPLE_DTYPE`, so every entry > 0 and every row
    sums to 1): the same law as ``jax.random.dirichlet`` at a fraction of its compile time (its
    gamma sampler costs seconds per shape on a CPU). Other values take what
    ``jax.random.dirichlet`` computes, ``softmax(log Gamma(concentration))`` along the row,
    with the log-gamma draws in :data:`SAMPLE_DTYPE` and the softmax in ``dtype`` (so a
    float64 row sums to 1 to float64 rounding).
    """
    if concentration == 1.0:
        u = _uniform01(key, (*shape, size), dtype, jnp.finfo(SAMPLE_DTYPE).tiny)
        e = -jnp.log(u)
        return e / jnp.sum(e, axis=-1, keepdims=True)
    alpha = jnp.full((size,), concentration, SAMPLE_DTYPE)
    log_gamma = jax.random.loggamma(key, alpha, (*shape, size), SAMPLE_DTYPE)
    return jax.nn.softmax(log_gamma.astype(dtype), axis=-1)


def _random_rows(key, shape, spec: _Spec, dtype):
    """``[*shape, S]`` random distributions (dense Dirichlet, or ``k``-sparse), as ``spec`` says."""
    num_states, branching = spec.num_states, spec.branching
    if branching is None:
        return _dirichlet(key, spec.concentration, shape, num_states, dtype)
    key_support, key_weights = jax.random.split(key)
    # k distinct next states per row, uniformly: the top k of i.i.d. uniform noise.
    noise = _uniform01(key_support, (*shape, num_states), SAMPLE_DTYPE)
    _, support = lax.top_k(noise, branching)  # [*shape, k]
    weights = _dirichlet(key_weights, spec.concentration, shape, branching, dtype)
    rows = math.prod(shape)
    out = jnp.zeros((rows, num_states), dtype)
    out = out.at[jnp.arange(rows)[:, None], support.reshape(rows, branching)].set(
        weights.reshape(rows, branching)
    )
    return out.reshape(*shape, num_states)


def _initial(key, spec: _Spec, dtype):
    """``mu0 [S]``: uniform, or ``Dirichlet(1)`` drawn with ``key`` (``spec.initial``)."""
    if spec.initial == "uniform":
        return jnp.full((spec.num_states,), 1.0 / spec.num_states, dtype)
    return _dirichlet(key, 1.0, (), spec.num_states, dtype)


def _uniform(key, shape, dtype, scale=1.0):
    """Uniform in ``[-scale, scale]``."""
    return jnp.asarray(scale, dtype) * (2.0 * _uniform01(key, shape, dtype) - 1.0)


@functools.partial(jax.jit, static_argnames=("spec", "payoff"))
def _random_arrays(key, *, spec: _Spec, payoff: str):
    dtype = default_float_dtype()
    num_states, num_actions = spec.num_states, spec.num_actions
    key_p, key_r, key_mu = jax.random.split(key, 3)
    transition = _random_rows(key_p, (num_states, *num_actions), spec, dtype)
    n = len(num_actions)
    if payoff == "general":
        reward = _uniform(key_r, (n, num_states, *num_actions), dtype)
    elif payoff == "zero_sum":
        r0 = _uniform(key_r, (num_states, *num_actions), dtype)
        reward = jnp.stack([r0, -r0])
    else:  # "common"
        r0 = _uniform(key_r, (num_states, *num_actions), dtype)
        reward = jnp.broadcast_to(r0, (n, *r0.shape))
    return transition, reward, _initial(key_mu, spec, dtype)


def _random_family(key, spec: _Spec, discount, payoff: str) -> MarkovGame:
    """The game of :func:`random_game` and its zero-sum and common-payoff variants."""
    transition, reward, mu0 = _random_arrays(key, spec=spec, payoff=payoff)
    return MarkovGame(transition=transition, reward=reward, initial=mu0, discount=discount)


# ----------------------------------------------------------------------------------------------
# Random general-sum, zero-sum and common-payoff games.
# ----------------------------------------------------------------------------------------------


def random_game(
    key: Array,
    *,
    num_states: int,
    num_actions: Sequence[int],
    discount: float | Array,
    branching: int | None = None,
    concentration: float = 1.0,
    initial: str = "uniform",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> MarkovGame:
    """A random n-player general-sum game.

    ``P[s, a, .] ~ Dirichlet(concentration)`` (dense) or ``k``-sparse with ``branching=k`` (see
    the module docstring); ``R[i, s, a] ~ U[-1, 1]`` independently for every player, state and
    joint action; ``mu0`` uniform or Dirichlet(1) (``initial``).

    Args:
      key: PRNG key (consumed).
      num_states: ``S >= 1`` (static).
      num_actions: ``(A_1, ..., A_n)``, every ``A_i >= 1`` (static); ``n = len(num_actions)``.
      discount: ``gamma`` in ``[0, 1)``; may be traced.
      branching: ``None`` (dense rows) or ``k`` in ``[1, S]``: each row has at most ``k``
        nonzero entries (static).
      concentration: Dirichlet parameter ``> 0`` of the rows (small: near-deterministic
        transitions); a static Python number (a new value recompiles).
      initial: ``"uniform"`` (default) or ``"dirichlet"``.
      max_bytes: budget for the dense transition tensor of one game (default 4 GiB).

    Returns:
      A :class:`~jaxmail.MarkovGame` ``[S, A_1..A_n, S]`` / ``[n, S, A_1..A_n]``.

    Raises:
      ValueError: a size < 1, ``branching`` outside ``[1, S]``, a concrete ``discount`` outside
        ``[0, 1)`` or ``concentration <= 0``, an unknown ``initial``, or a transition tensor
        over ``max_bytes``.

    Example:
      >>> keys = jax.random.split(jax.random.key(0), 8)
      >>> games = jax.vmap(lambda k: random_game(
      ...     k, num_states=32, num_actions=(3, 3, 2), discount=0.95))(keys)
      >>> games.transition.shape
      (8, 32, 3, 3, 2, 32)
    """
    spec = _check_common(
        num_states, num_actions, discount, branching, concentration, initial, max_bytes
    )
    return _random_family(key, spec, discount, "general")


def zero_sum_game(
    key: Array,
    *,
    num_states: int,
    num_actions: int | Sequence[int],
    discount: float | Array,
    branching: int | None = None,
    concentration: float = 1.0,
    initial: str = "uniform",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> MarkovGame:
    """A random two-player zero-sum game: ``R[0] ~ U[-1, 1]``, ``R[1] = -R[0]`` exactly.

    Transitions and ``mu0`` as in :func:`random_game`; so are the arguments but for one.

    Args:
      key: PRNG key (consumed).
      num_actions: ``A`` (both players) or ``(A_1, A_2)``.
    """
    spec = _check_common(
        num_states, num_actions, discount, branching, concentration, initial, max_bytes, players=2
    )
    return _random_family(key, spec, discount, "zero_sum")


def common_payoff_game(
    key: Array,
    *,
    num_states: int,
    num_actions: Sequence[int],
    discount: float | Array,
    branching: int | None = None,
    concentration: float = 1.0,
    initial: str = "uniform",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> MarkovGame:
    """A random n-player common-payoff (fully cooperative) game: ``R[i] = R[0] ~ U[-1, 1]``.

    Transitions and ``mu0`` as in :func:`random_game`; arguments likewise.
    """
    spec = _check_common(
        num_states, num_actions, discount, branching, concentration, initial, max_bytes
    )
    return _random_family(key, spec, discount, "common")


# ----------------------------------------------------------------------------------------------
# Dominant-strategy families.
# ----------------------------------------------------------------------------------------------


def _separable_rewards(key, num_states, actions, own_weight, dtype):
    """``r_i(s, a) = u_i(s, a_i) + w_i(s, a_-i)`` for every player; returns ``(R, [u_i])``.

    ``u_i ~ U[-c, c]`` ``[S, A_i]`` and ``w_i ~ U[-(1-c), 1-c]`` ``[S, A_-i]`` (``c =
    own_weight``), all from ONE flat draw (one random-bits kernel to compile).
    """
    n = len(actions)
    shapes = []
    for i, a_i in enumerate(actions):  # a loop over players (static n), not over states
        shapes.append((num_states, a_i))
        shapes.append((num_states, *(1 if j == i else a for j, a in enumerate(actions))))
    sizes = [math.prod(shape) for shape in shapes]
    flat = _uniform(key, (sum(sizes),), dtype)
    parts = jnp.split(flat, np.cumsum(sizes)[:-1])
    own_weight = jnp.asarray(own_weight, dtype)
    rewards, utilities = [], []
    for i, a_i in enumerate(actions):
        u = own_weight * parts[2 * i].reshape(shapes[2 * i])
        w = (1.0 - own_weight) * parts[2 * i + 1].reshape(shapes[2 * i + 1])
        u_b = u.reshape((num_states,) + tuple(a_i if j == i else 1 for j in range(n)))
        rewards.append(u_b + w)
        utilities.append(u)
    return jnp.stack(rewards), utilities


def _check_own_weight(own_weight) -> None:
    _check_real("own_weight", own_weight, low=0.0, high=1.0, closed_high=True)


def _moved_by(rows, num_actions, mover: int | None):
    """``[S, A_1..A_n, S]`` transitions from ``rows``: ``[S, S]`` (``mover=None``: no player
    moves the state) or ``[S, A_mover, S]`` (only player ``mover``'s action does)."""
    num_states = rows.shape[0]
    axes = tuple(a if j == mover else 1 for j, a in enumerate(num_actions))
    return jnp.broadcast_to(
        rows.reshape((num_states, *axes, num_states)), (num_states, *num_actions, num_states)
    )


def _one_hot(best, num_actions, dtype) -> tuple[Array, ...]:
    """``n`` one-hot policies ``[S, A_i]`` from ``n`` arrays ``[S]`` of actions."""
    return tuple(jax.nn.one_hot(b, a, dtype=dtype) for b, a in zip(best, num_actions))


@functools.partial(jax.jit, static_argnames=("spec",))
def _dominant_arrays(key, own_weight, *, spec: _Spec):
    dtype = default_float_dtype()
    num_states, num_actions = spec.num_states, spec.num_actions
    key_p, key_r, key_mu = jax.random.split(key, 3)
    rows = _random_rows(key_p, (num_states,), spec, dtype)
    transition = _moved_by(rows, num_actions, None)
    reward, utilities = _separable_rewards(key_r, num_states, num_actions, own_weight, dtype)
    expert = _one_hot([jnp.argmax(u, axis=-1) for u in utilities], num_actions, dtype)
    return transition, reward, _initial(key_mu, spec, dtype), expert


def dominant_strategy_game(
    key: Array,
    *,
    num_states: int,
    num_actions: Sequence[int],
    discount: float | Array,
    own_weight: float | Array = 0.5,
    branching: int | None = None,
    concentration: float = 1.0,
    initial: str = "uniform",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> DominantStrategyGame:
    """The dominant-strategy family: action-independent transitions, separable rewards.

    docs/theory.md §4.

    * ``P[s, a, s'] = P(s, s')``: one random row per state (dense Dirichlet or ``k``-sparse), the
      same for every joint action.
    * ``r_i(s, a) = u_i(s, a_i) + w_i(s, a_-i)`` with ``u_i ~ U[-c, c]`` and
      ``w_i ~ U[-(1 - c), 1 - c]``, ``c = own_weight``, so that ``|r_i| <= 1``.
    * ``expert_i(s) = argmax_a u_i(s, a)`` (one-hot).

    Why the expert is dominant: the law of the state process ``(s_t)`` is that of the Markov
    chain ``P`` from ``mu0`` whatever anyone plays, so
    ``V_i^pi(s) = sum_t gamma^t E_{s_t}[ sum_a pi_i(a|s_t) u_i(s_t, a) + E_{pi_-i} w_i(s_t, .) ]``;
    the second term does not depend on ``pi_i`` and the first is maximised at every state and
    time by ``argmax u_i``. So ``expert_i`` is a best response to EVERY ``pi_-i`` from every state
    (a weakly dominant strategy, strict in ``u`` almost surely). ``own_weight = 0`` makes every
    action tie (the expert, action 0, is then only weakly dominant).

    ``num_states``, ``num_actions``, ``discount``, ``branching``, ``concentration``,
    ``initial`` and ``max_bytes`` are as in :func:`random_game`.

    Args:
      key: PRNG key (consumed).
      own_weight: ``c`` in ``[0, 1]``, the share of the reward range that depends on the
        player's own action; may be traced.

    Returns:
      ``DominantStrategyGame(game, expert)``.
    """
    spec = _check_common(
        num_states, num_actions, discount, branching, concentration, initial, max_bytes
    )
    _check_own_weight(own_weight)
    transition, reward, mu0, expert = _dominant_arrays(key, own_weight, spec=spec)
    game = MarkovGame(transition=transition, reward=reward, initial=mu0, discount=discount)
    return DominantStrategyGame(game, expert)


@functools.partial(jax.jit, static_argnames=("spec", "controller"))
def _controlled_arrays(key, discount, own_weight, *, spec: _Spec, controller: int):
    dtype = default_float_dtype()
    num_states, num_actions = spec.num_states, spec.num_actions
    a_c = num_actions[controller]
    key_p, key_r, key_c, key_mu = jax.random.split(key, 4)
    local = _random_rows(key_p, (num_states, a_c), spec, dtype)
    transition = _moved_by(local, num_actions, controller)
    reward, utilities = _separable_rewards(key_r, num_states, num_actions, own_weight, dtype)
    u_c = _uniform(key_c, (num_states, a_c), dtype)  # the controller's reward, full range
    shape = (num_states,) + tuple(a if j == controller else 1 for j, a in enumerate(num_actions))
    reward = reward.at[controller].set(jnp.broadcast_to(u_c.reshape(shape), reward.shape[1:]))
    sol = solve_mdp(local, u_c, jnp.asarray(discount, dtype))
    best = [jnp.argmax(u, axis=-1) for u in utilities]
    best[controller] = sol.actions
    mu0 = _initial(key_mu, spec, dtype)
    return transition, reward, mu0, _one_hot(best, num_actions, dtype), sol.converged


def single_controller_dominant_game(
    key: Array,
    *,
    num_states: int,
    num_actions: Sequence[int],
    discount: float | Array,
    controller: int = 0,
    own_weight: float | Array = 0.5,
    branching: int | None = None,
    concentration: float = 1.0,
    initial: str = "uniform",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ControlledDominantGame:
    """A dominant-strategy family with ACTION-DEPENDENT transitions (a single-controller game).

    One player, the controller ``c``, steers the state; the others' payoffs interact with every
    player's action, the controller's included:

    * ``P[s, a, s'] = P_c(s, a_c, s')``: random rows (dense Dirichlet or ``k``-sparse) for every
      state and controller action; the other players' actions do not move the state.
    * controller: ``r_c(s, a) = u_c(s, a_c) ~ U[-1, 1]``;
      ``expert_c`` = an optimal policy of the controller's MDP ``M_c = (S, A_c, P_c, u_c, gamma)``
      (exact policy iteration, :func:`jaxmail.solve_mdp`; optimal from every state).
    * every other player ``i``: ``r_i(s, a) = u_i(s, a_i) + w_i(s, a_-i)`` with
      ``u_i ~ U[-c, c]``, ``w_i ~ U[-(1 - c), 1 - c]`` (``c = own_weight``; ``a_-i`` includes the
      controller's action), ``expert_i(s) = argmax_a u_i(s, a)``.

    All rewards lie in ``[-1, 1]``. With one player this is a random MDP and its optimal policy.

    Proof that every ``expert_i`` is a best response to EVERY policy ``pi_-i`` of the others,
    from every initial state (a weakly dominant strategy, Def 8). Fix any ``pi_-i``.

    * Player ``c``: the next state depends on ``(s_t, a_c,t)`` only and ``c``'s reward is
      ``u_c(s_t, a_c,t)``, so under any joint policy the law of ``(s_t, a_c,t)_t`` and of ``c``'s
      reward stream is that of ``pi_c`` in ``M_c``: ``V_c^{pi_c, pi_-c}(s) = V_{M_c}^{pi_c}(s)``
      for every ``pi_-c``. An optimal policy of ``M_c`` maximises the right side at every ``s``
      over ALL policies of ``c`` (Markov, or history-dependent), hence is a best response to
      every ``pi_-c``.
    * Player ``i != c``: ``(s_t)`` is the Markov chain ``P_{pi_c}(s, s') =
      sum_{a_c} pi_c(a_c|s) P_c(s, a_c, s')`` from ``mu0``; its law ``d_t`` does not depend on
      ``pi_i`` (player ``i``'s actions enter neither ``P`` nor the other players' policies, which
      are functions of the state only). So
      ``V_i(s_0) = sum_t gamma^t E_{s ~ d_t}[sum_a pi_i(a|s) u_i(s, a) + E_{a_-i ~ pi_-i(s)}
      w_i(s, a_-i)]``: the second term does not depend on ``pi_i``; the first is maximised at
      every ``(t, s)`` by ``argmax u_i(s, .)``. Hence ``expert_i`` is a best response. ∎

    This contains the suggestion "transitions depend only on the other players' actions and
    rewards are separable" for every non-controller; note that that condition cannot hold for
    ALL players of an ``n >= 2`` game with action-dependent transitions (independence of each
    ``a_i`` separately means independence of all of them), which is why one player must steer
    and be handled by its own MDP. The controller's reward cannot take a term in ``a_-c``
    without losing dominance in general: the others could then reward or punish the states that
    ``c`` steers to.

    ``num_states``, ``num_actions``, ``discount``, ``branching`` (which limits the controller's
    rows ``P_c(s, a_c, .)``), ``concentration``, ``initial`` and ``max_bytes`` are as in
    :func:`random_game`.

    Args:
      key: PRNG key (consumed).
      controller: the player who controls the transitions, a static int in ``[0, n)``.
      own_weight: ``c`` in ``[0, 1]`` for the non-controllers; may be traced.

    Returns:
      ``ControlledDominantGame(game, expert, converged)``.
    """
    spec = _check_common(
        num_states, num_actions, discount, branching, concentration, initial, max_bytes
    )
    _check_own_weight(own_weight)
    if isinstance(controller, (bool, np.bool_)) or not isinstance(controller, (int, np.integer)):
        raise ValueError(f"controller: expected a Python int (static), got {controller!r}")
    n = len(spec.num_actions)
    if not 0 <= controller < n:
        raise ValueError(f"controller: {controller} is out of range for a {n}-player game")
    transition, reward, mu0, expert, converged = _controlled_arrays(
        key, discount, own_weight, spec=spec, controller=int(controller)
    )
    game = MarkovGame(transition=transition, reward=reward, initial=mu0, discount=discount)
    return ControlledDominantGame(game, expert, converged)
