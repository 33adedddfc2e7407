"""Single-controller dominant-strategy games built from free parameters (differentiable).

Shapes: ``n`` players, ``S`` states, ``A_i`` actions of player ``i``, ``c`` the controller.

:func:`controlled_game` maps unconstrained parameters (:class:`ControlledParams`) to a game of
the single-controller dominant-strategy family of
:func:`jaxmail.games.single_controller_dominant_game`, with its dominant expert. Every parameter
value gives a member of the family and every member (with full-support rows and start) is
reached, so an optimiser can move through the family freely: this is what
:func:`jaxmail.tightness.lemma3_search` does to look for the games where Lemma 3 is tightest.

* ``P[s, a, .] = softmax(transition[s, a_c])``: only the controller moves the state.
* controller: ``r_c(s, a) = tanh(own[c])(s, a_c)``; ``expert_c`` an optimal policy of its MDP
  ``(S, A_c, P_c, r_c, gamma)`` (policy iteration, :func:`jaxmail.solve_mdp`).
* every other player ``i``: ``r_i(s, a) = w tanh(own[i])(s, a_i) + (1 - w) tanh(cross[i])(s,
  a_-i)`` (``w = own_weight``), ``expert_i(s) = argmax_a own[i](s, a)``.
* ``mu0 = softmax(initial)``.

All rewards lie in ``(-1, 1)``. The experts are dominant (a best response to every policy of the
others, from every state) by the proof in :func:`jaxmail.games.single_controller_dominant_game`.
The expert is a piecewise-constant function of the parameters; it is computed under
``lax.stop_gradient``, so gradients of quantities built on the returned game treat it as fixed.

A sharper bound holds in this family than Lemma 3's ``(2n - 1) r_max eps_BC / (1 - gamma)^2``
(:func:`family_bound`): ``NashGap(pi) <= r_max eps_BC / (1 - gamma)^2`` for every joint policy
``pi``, so the Lemma 3 ratio ``NashGap / bound`` is at most ``1 / (2n - 1)`` here. Proof, with
``E`` the expert, ``d^pi`` normalised state occupancies, ``x_i(s) = ||pi_i(.|s) - E_i(.|s)||_1``
and ``eps_i = E_{d^E} x_i`` (so ``eps_BC = max_i eps_i``):

* the controller's gain does not depend on ``pi_-c`` (its value is that of ``pi_c`` in its MDP),
  and the performance-difference lemma under ``d^E`` gives ``V_c^E - V_c^{pi_c} = E_{d^E}[(E_c -
  pi_c)(.|s) . Q_c^{pi_c}(s, .)] / (1 - gamma) <= E_{d^E}[x_c(s)/2 * 2 r_max / (1 - gamma)] /
  (1 - gamma) = r_max eps_c / (1 - gamma)^2`` (the Q-values span at most ``2 r_max/(1-gamma)``);
* for ``i != c``, ``E_i`` is a best response to ``pi_-i`` and ``i`` does not move the state, so
  ``g_i = E_{d^pi}[(E_i - pi_i)(.|s) . u_i(s, .)] / (1 - gamma) <= r_max E_{d^pi} x_i / (1 -
  gamma)`` (``u_i(s, .)`` spans at most ``2 r_max``); ``E_{d^pi} x_i <= eps_i + ||d^pi - d^E||_1``
  (``0 <= x_i <= 2``), and ``d^pi - d^E = gamma (I - gamma P_pi^T)^{-1} (P_pi - P_E)^T d^E`` with
  ``||(P_pi - P_E)^T d^E||_1 <= eps_c`` (only the controller moves the state) gives
  ``||d^pi - d^E||_1 <= gamma eps_c / (1 - gamma)``. So ``g_i <= r_max (eps_i + gamma eps_c /
  (1 - gamma)) / (1 - gamma) <= r_max eps_BC / (1 - gamma)^2``. ∎

Both steps can be nearly tight: a controller that, with a small probability, leaves a rewarding
absorbing state for a punishing one has ``g_c = r_max eps_c / (1 - gamma)^2`` to first order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmail.game import MarkovGame
from jaxmail.games.generators import ControlledDominantGame
from jaxmail.responses import solve_mdp

Array = jax.Array

__all__ = [
    "ControlledParams",
    "controlled_game",
    "family_bound",
    "random_controlled_params",
]


class ControlledParams(NamedTuple):
    """Unconstrained parameters of one single-controller dominant-strategy game.

    Attributes:
      transition: ``[S, A_c, S]`` logits of the controller's transition rows.
      own: ``n`` arrays ``[S, A_i]``: the controller's reward (``tanh``) for ``i = c``, the
        own-action part of the reward for the others.
      cross: ``n`` arrays ``[S, A_1, ..., A_n]`` with size 1 on player ``i``'s axis: the part
        of ``i``'s reward that depends on the others' actions (``cross[c]`` is not used: the
        controller's reward depends on its own action only).
      initial: ``[S]`` logits of ``mu0``.
    """

    transition: Array
    own: tuple[Array, ...]
    cross: tuple[Array, ...]
    initial: Array


def _check_controller(controller, num_players: int) -> int:
    if isinstance(controller, (bool, np.bool_)) or not isinstance(controller, (int, np.integer)):
        raise ValueError(f"controller: expected a Python int (static), got {controller!r}")
    if not 0 <= controller < num_players:
        raise ValueError(f"controller: {controller} is out of range for {num_players} players")
    return int(controller)


def _check_params(params: ControlledParams, controller: int) -> tuple[int, tuple[int, ...]]:
    """Static shape checks; returns ``(S, (A_1, ..., A_n))``."""
    n = len(params.own)
    if n < 1 or len(params.cross) != n:
        raise ValueError(
            f"params: own and cross need one array per player, got {len(params.own)} and "
            f"{len(params.cross)}"
        )
    controller = _check_controller(controller, n)
    if jnp.ndim(params.initial) != 1:
        raise ValueError(f"params.initial: expected [S], got shape {jnp.shape(params.initial)}")
    s = jnp.shape(params.initial)[0]
    actions = []
    for i, u in enumerate(params.own):
        if jnp.ndim(u) != 2 or jnp.shape(u)[0] != s:
            raise ValueError(f"params.own[{i}]: expected [S={s}, A_{i}], got {jnp.shape(u)}")
        actions.append(int(jnp.shape(u)[1]))
    for i, w in enumerate(params.cross):
        want = (s, *(1 if j == i else a for j, a in enumerate(actions)))
        if tuple(jnp.shape(w)) != want:
            raise ValueError(f"params.cross[{i}]: expected shape {want}, got {jnp.shape(w)}")
    want = (s, actions[controller], s)
    if tuple(jnp.shape(params.transition)) != want:
        raise ValueError(
            f"params.transition: expected [S, A_c, S] = {want} (controller {controller}), got "
            f"{jnp.shape(params.transition)}"
        )
    return s, tuple(actions)


def random_controlled_params(
    key: Array,
    *,
    num_states: int,
    num_actions: Sequence[int],
    controller: int = 0,
    scale: float | Array = 1.0,
) -> ControlledParams:
    """Parameters with i.i.d. ``Normal(0, scale^2)`` entries (one flat draw; the key is consumed).

    A larger ``scale`` gives nearly deterministic transitions and rewards near ``+-1``.

    Args:
      key: PRNG key.
      num_states: ``S >= 1`` (static).
      num_actions: ``(A_1, ..., A_n)`` (static).
      controller: the player who moves the state (static).
      scale: standard deviation of the entries; may be traced.

    Returns:
      A :class:`ControlledParams` of the default float dtype.
    """
    if isinstance(num_states, bool) or not isinstance(num_states, (int, np.integer)):
        raise ValueError(f"num_states: expected a Python int, got {num_states!r}")
    if num_states < 1:
        raise ValueError(f"num_states: must be >= 1, got {num_states}")
    actions = tuple(int(a) for a in num_actions)
    if not actions or min(actions) < 1:
        raise ValueError(f"num_actions: expected counts >= 1 per player, got {num_actions!r}")
    n = len(actions)
    controller = _check_controller(controller, n)
    shapes = [(num_states, actions[controller], num_states), (num_states,)]
    shapes += [(num_states, a) for a in actions]
    shapes += [(num_states, *(1 if j == i else a for j, a in enumerate(actions))) for i in range(n)]
    sizes = [math.prod(shape) for shape in shapes]
    dtype = jnp.zeros(()).dtype
    flat = jnp.asarray(scale, dtype) * jax.random.normal(key, (sum(sizes),), dtype)
    parts = [p.reshape(shape) for p, shape in zip(jnp.split(flat, np.cumsum(sizes)[:-1]), shapes)]
    return ControlledParams(parts[0], tuple(parts[2 : 2 + n]), tuple(parts[2 + n :]), parts[1])


def controlled_game(
    params: ControlledParams,
    *,
    discount: float | Array,
    own_weight: float | Array = 0.5,
    controller: int = 0,
) -> ControlledDominantGame:
    """The game of ``params`` and its dominant expert (module docstring).

    Differentiable in ``params`` (the expert is held fixed: ``lax.stop_gradient``); jit- and
    vmap-able (``controller`` is static, ``discount`` and ``own_weight`` may be traced).

    Args:
      params: a :class:`ControlledParams` (``n`` players, ``S`` states).
      discount: ``gamma`` in ``[0, 1)``.
      own_weight: ``w`` in ``[0, 1]``, the non-controllers' own-action share of the reward.
      controller: the player who moves the state, a static int in ``[0, n)``.

    Returns:
      ``ControlledDominantGame(game, expert, converged)``: ``game`` with transition
      ``[S, A_1..A_n, S]`` and reward ``[n, S, A_1..A_n]``; ``expert`` ``n`` one-hot arrays
      ``[S, A_i]``; ``converged`` whether policy iteration on the controller's MDP converged.

    Raises:
      ValueError: inconsistent parameter shapes (naming the array and both shapes), a bad
        ``controller``, or concrete ``discount``/``own_weight`` out of range.
    """
    s, actions = _check_params(params, controller)
    n = len(actions)
    for name, value, high in (("discount", discount, 1.0), ("own_weight", own_weight, 1.0)):
        try:
            v = float(np.asarray(value))
        except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
            continue  # traced: trusted
        ok = 0.0 <= v < high if name == "discount" else 0.0 <= v <= high
        if not ok:
            bracket = ")" if name == "discount" else "]"
            raise ValueError(f"{name}: must lie in [0, 1{bracket}, got {v}")
    dtype = params.initial.dtype
    discount = jnp.asarray(discount, dtype)
    weight = jnp.asarray(own_weight, dtype)
    local = jax.nn.softmax(params.transition, axis=-1)  # [S, A_c, S]
    axes = (s,) + tuple(actions[controller] if j == controller else 1 for j in range(n))
    transition = jnp.broadcast_to(local.reshape(axes + (s,)), (s, *actions, s))
    rewards, expert = [], []
    u_c = jnp.tanh(params.own[controller])  # [S, A_c]
    sol = solve_mdp(lax.stop_gradient(local), lax.stop_gradient(u_c), discount)
    for i in range(n):
        shape = (s,) + tuple(actions[i] if j == i else 1 for j in range(n))
        if i == controller:
            r = jnp.broadcast_to(u_c.reshape(shape), (s, *actions))
            best = sol.actions
        else:
            own = weight * jnp.tanh(params.own[i]).reshape(shape)
            r = own + (1.0 - weight) * jnp.tanh(params.cross[i])
            best = jnp.argmax(lax.stop_gradient(params.own[i]), axis=-1)
        rewards.append(jnp.broadcast_to(r, (s, *actions)))
        expert.append(jax.nn.one_hot(best, actions[i], dtype=dtype))
    game = MarkovGame(
        transition=transition,
        reward=jnp.stack(rewards),
        initial=jax.nn.softmax(params.initial),
        discount=discount,
    )
    return ControlledDominantGame(game, tuple(expert), sol.converged)


def family_bound(bc_error: Array, discount: Array, *, reward_bound: Array = 1.0) -> Array:
    """The single-controller family's bound ``NashGap <= r_max eps_BC / (1 - gamma)^2``.

    Lemma 3's bound divided by ``2n - 1``; proof in the module docstring. It needs every
    expert to be dominant AND only one player to move the state. Arguments broadcast.

    Example:
      >>> from jaxmail.games import dominant
      >>> round(float(dominant.family_bound(0.01, 0.9)), 4)   # 0.01 / 0.1**2
      1.0
    """
    return jnp.asarray(reward_bound) * jnp.asarray(bc_error) / (1.0 - jnp.asarray(discount)) ** 2
