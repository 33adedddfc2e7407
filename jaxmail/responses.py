"""Induced MDPs, MDP solvers, best responses and the Nash gap.

Shapes: ``n`` players, ``S`` states, ``A_i`` actions of player ``i``.

Player ``i``'s best response to ``pi_-i`` is an optimal policy of the small induced MDP

    P_i(s, a_i, s') = sum_{a_-i} pi_-i(a_-i|s) P(s, a_i, a_-i, s'),   [S, A_i, S]
    r_i(s, a_i)     = sum_{a_-i} pi_-i(a_-i|s) R_i(s, a_i, a_-i),      [S, A_i]

(docs/design.md §2.2): the joint tensor is contracted once (twice in all for every player, sharing
partial contractions) and never iterated on. The MDP is solved by exact policy iteration by
default (a few linear solves of size ``S``), warm-started from the greedy policy of the Q-values
that the joint evaluation already gives, or by value iteration. Both run under
``lax.while_loop`` with a tolerance and a cap and report whether they converged.

Best-response gain ``g_i(pi) = V_i^{*, pi_-i}(mu0) - V_i^pi(mu0) >= 0``;
NashGap ``= max_i g_i`` (the paper's exploitability); NashConv ``= sum_i g_i`` (OpenSpiel's).

Rewards far from zero compared with their spread are centred per player before solving
(``evaluation.reward_offsets``): best responses and gains do not change, and values are shifted
back. :func:`nash_gap` is differentiable (both modes) with the best responses held fixed
(envelope theorem; see its docstring).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmail import _contract, _linalg
from jaxmail._api import kernel
from jaxmail.evaluation import policy_matrices, reward_offsets
from jaxmail.game import MarkovGame
from jaxmail.policy import check_player, check_policy
from jaxmail.tolerances import best_response_set_tol, policy_improvement_tol

Array = jax.Array

METHODS = ("policy_iteration", "value_iteration")

_WARM_SWEEPS = 5  # chosen by measurement: max PI steps over a batch of 64 went from 2-3 to 1


# ----------------------------------------------------------------------------------------------
# Records.
# ----------------------------------------------------------------------------------------------


class InducedMDP(NamedTuple):
    """Player ``i``'s MDP against fixed opponents.

    Attributes:
      transition: ``[S, A_i, S]``.
      reward: ``[S, A_i]``.
    """

    transition: Array
    reward: Array


class MDPSolution(NamedTuple):
    """An (approximately) optimal deterministic policy of an MDP.

    Attributes:
      actions: ``[S]`` int32 greedy actions.
      values: ``[S]``: for policy iteration the exact values of ``actions``; for value
        iteration the last iterate (within ``tol`` of the optimal values).
      q_values: ``[S, A]`` ``r + gamma P values``.
      converged: ``[]`` bool: policy iteration found a policy no action improves by more than
        ``tol``; value iteration's last step moved the values by at most its threshold.
      iterations: ``[]`` int32 steps taken.
    """

    actions: Array
    values: Array
    q_values: Array
    converged: Array
    iterations: Array


class BestResponse(NamedTuple):
    """A best response of one player.

    Attributes:
      policy: ``[S, A_i]`` one-hot best-response policy.
      values: ``[S]`` player ``i``'s best-response values ``V_i^{*, pi_-i}``.
      q_values: ``[S, A_i]`` optimal Q-values of the induced MDP.
      converged: ``[]`` bool.
      iterations: ``[]`` int32 solver steps.
    """

    policy: Array
    values: Array
    q_values: Array
    converged: Array
    iterations: Array


class NashGap(NamedTuple):
    """How far a joint policy is from a Nash equilibrium.

    Attributes:
      gains: ``[n]`` best-response gains ``g_i = V_i^{*, pi_-i}(mu0) - V_i^pi(mu0)``. Reported
        as computed (not clipped): tiny negative values are rounding.
      nash_gap: ``[]`` ``max_i g_i`` (the paper's exploitability).
      nash_conv: ``[]`` ``sum_i g_i`` (OpenSpiel's NashConv).
      policy_values: ``[n]`` ``V_i^pi(mu0)``, the joint policy's values at ``mu0`` (the
        ``expected_values`` of :class:`~jaxmail.Evaluation`; ``Evaluation.values`` is ``[n, S]``).
      best_response_values: ``[n]`` ``V_i^{*, pi_-i}(mu0)``.
      converged: ``[n]`` bool, per player's best-response solve.
    """

    gains: Array
    nash_gap: Array
    nash_conv: Array
    policy_values: Array
    best_response_values: Array
    converged: Array


# ----------------------------------------------------------------------------------------------
# Induced MDPs.
# ----------------------------------------------------------------------------------------------


@kernel(static=("player",))
def induced_mdp(game: MarkovGame, policy: Sequence[Array], player: int) -> InducedMDP:
    """Player ``player``'s MDP against the others' policies (one pass over the tensors).

    Args:
      game: one game.
      policy: ``n`` arrays ``[S, A_i]`` (``policy[player]`` is ignored but must have its shape).
      player: static int in ``[0, n)``.

    Returns:
      ``InducedMDP(transition [S, A_i, S], reward [S, A_i])``.
    """
    policy = check_policy(game, policy)
    player = check_player(game, player)
    players = list(range(game.num_players))
    others = [p for p in players if p != player]
    transition = _contract.contract(game.transition, policy, players, others, trailing=1)
    reward = _contract.contract(game.reward[player], policy, players, others, trailing=0)
    return InducedMDP(transition, reward)


@kernel(static=())
def induced_mdps(game: MarkovGame, policy: Sequence[Array]) -> tuple[InducedMDP, ...]:
    """Every player's induced MDP, sharing partial contractions (two reads of ``P``)."""
    policy = check_policy(game, policy)
    transitions = _contract.induced_tensors(game.transition, policy, trailing=1)
    rewards = _contract.induced_tensors(jnp.moveaxis(game.reward, 0, -1), policy, trailing=1)
    return tuple(InducedMDP(t, r[..., i]) for i, (t, r) in enumerate(zip(transitions, rewards)))


# ----------------------------------------------------------------------------------------------
# MDP solvers.
# ----------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------
# Action padding and masking: players' action axes padded to A = max_i A_i, so that per-player
# computations batch into one call (one batched LU, no two LAPACK calls side by side).
# ----------------------------------------------------------------------------------------------

MASKED_FRACTION = 0.5  # masked actions get finfo.min * this: finite, so no inf - inf NaNs


def masked(q: Array, mask: Array | None) -> Array:
    """``q`` with the entries where ``mask`` is false set to ``finfo.min * MASKED_FRACTION``.

    A very negative but finite value (Q-values or logits of actions that do not exist): it
    never wins a max or an argmax, gets probability 0 under a softmax, and differences with it
    stay finite. ``mask=None`` returns ``q``.
    """
    if mask is None:
        return q
    return jnp.where(mask, q, jnp.finfo(q.dtype).min * MASKED_FRACTION)


def pad_axis(x: Array, axis: int, width: int) -> Array:
    """``x`` zero-padded at the end of ``axis`` to size ``width``."""
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, width - x.shape[axis])
    return jnp.pad(x, widths)


def padded(arrays: Sequence[Array], axis: int, width: int) -> Array:
    """One array per player, each zero-padded on ``axis`` to ``width``, stacked: ``[n, ...]``."""
    return jnp.stack([pad_axis(x, axis, width) for x in arrays])


def padded_action_mask(game: MarkovGame) -> Array:
    """``[n, S, A]`` bool, ``A = max_i A_i``: true for the actions player ``i`` has."""
    a_max, s = max(game.num_actions), game.num_states
    return jnp.stack(
        [jnp.broadcast_to(jnp.arange(a_max) < a, (s, a_max)) for a in game.num_actions]
    )


def _greedy(q, mask):
    return jnp.argmax(masked(q, mask), axis=-1).astype(jnp.int32)


def _policy_values(transition, reward, discount, actions):
    s = jnp.arange(transition.shape[0])
    p = transition[s, actions]  # [S, S]
    r = reward[s, actions]  # [S]
    v, _ = _linalg.solve(_linalg.factorize(p, discount), r)
    return v


@kernel(static=("method", "max_iters"))
def solve_mdp(
    transition: Array,
    reward: Array,
    discount: Array,
    *,
    method: str = "policy_iteration",
    init_actions: Array | None = None,
    init_values: Array | None = None,
    action_mask: Array | None = None,
    tol: float | Array | None = None,
    max_iters: int | None = None,
) -> MDPSolution:
    """Solves a finite discounted MDP.

    Policy iteration (Howard): evaluate the current deterministic policy exactly (one LU solve of
    size ``S``), then switch each state to its greedy action where that improves the Q-value by
    more than ``tol``; stop when nothing switches (then ``V* - V <= tol / (1 - gamma)``).

    Value iteration: ``V <- max_a (r + gamma P V)`` until the sup-norm step is at most
    ``tol (1 - gamma) / (2 gamma)``, so that the greedy policy is ``tol``-optimal.

    Args:
      transition: ``[S, A, S]``.
      reward: ``[S, A]``.
      discount: ``[]``.
      method: ``"policy_iteration"`` (default) or ``"value_iteration"``.
      init_actions: ``[S]`` int policy iteration's start (default: greedy on ``reward``).
      init_values: ``[S]`` value iteration's start (default zeros); a lower bound on the optimal
        values (such as the values of any policy) makes the iterates increase monotonically.
      action_mask: optional ``[S, A]`` bool, false for actions that do not exist (padding).
      tol: see above; default :func:`jaxmail.tolerances.policy_improvement_tol`.
      max_iters: cap on iterations (default 1000 for policy iteration, 100000 for value
        iteration).

    Returns:
      An :class:`MDPSolution`.
    """
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    if transition.ndim != 3 or transition.shape[0] != transition.shape[2]:
        raise ValueError(f"transition: expected shape [S, A, S], got {transition.shape}")
    if reward.shape != transition.shape[:2]:
        raise ValueError(
            f"reward: expected shape [S, A] = {transition.shape[:2]}, got {reward.shape}"
        )
    dtype = transition.dtype
    discount = jnp.asarray(discount, dtype)
    if tol is None:
        tol = policy_improvement_tol(dtype, discount, jnp.max(jnp.abs(reward)))
    tol = jnp.asarray(tol, dtype)

    def q_of(v):
        return reward + discount * (transition @ v)

    if method == "policy_iteration":
        max_iters = 1000 if max_iters is None else max_iters
        actions = _greedy(reward, action_mask) if init_actions is None else init_actions
        actions = actions.astype(jnp.int32)

        def cond(carry):
            _, _, _, changed, k = carry
            return changed & (k < max_iters)

        def body(carry):
            actions, v, _, _, k = carry
            actions = _linalg.after(actions.astype(dtype), v).astype(jnp.int32)  # serialise
            v = _policy_values(transition, reward, discount, actions)
            q = masked(q_of(v), action_mask)
            best = jnp.argmax(q, axis=-1).astype(jnp.int32)
            current = jnp.take_along_axis(q, actions[:, None], axis=-1)[:, 0]
            switch = jnp.max(q, axis=-1) > current + tol
            new = jnp.where(switch, best, actions)
            return new, v, q, jnp.any(switch), k + 1

        s, a = reward.shape
        init = (
            actions,
            jnp.zeros((s,), dtype),
            jnp.zeros((s, a), dtype),
            jnp.asarray(True),
            jnp.asarray(0, jnp.int32),
        )
        actions, v, q, changed, k = lax.while_loop(cond, body, init)
        return MDPSolution(actions, v, q, ~changed, k)

    max_iters = 100_000 if max_iters is None else max_iters
    threshold = tol * (1.0 - discount) / jnp.maximum(2.0 * discount, jnp.finfo(dtype).tiny)
    v0 = jnp.zeros(reward.shape[:1], dtype) if init_values is None else init_values

    def vi_cond(carry):
        _, delta, k = carry
        return (delta > threshold) & (k < max_iters)

    def vi_body(carry):
        v, _, k = carry
        new = jnp.max(masked(q_of(v), action_mask), axis=-1)
        return new, jnp.max(jnp.abs(new - v)), k + 1

    v, delta, k = lax.while_loop(
        vi_cond, vi_body, (v0.astype(dtype), jnp.asarray(jnp.inf, dtype), jnp.asarray(0, jnp.int32))
    )
    q = masked(q_of(v), action_mask)
    return MDPSolution(jnp.argmax(q, axis=-1).astype(jnp.int32), v, q, delta <= threshold, k)


# ----------------------------------------------------------------------------------------------
# Best responses.
# ----------------------------------------------------------------------------------------------


def _centred(game: MarkovGame) -> tuple[MarkovGame, Array]:
    """``(game with rewards R_i - c_i, c [n])``; ``c`` from ``evaluation.reward_offsets``.

    Best responses, gains and best-response sets are the same in both games (every policy's
    value moves by ``c_i / (1 - gamma)``); the centred one keeps float32 precision when the
    rewards carry a large offset. The game is rebuilt from its leaves (no re-validation, no
    dtype change).
    """
    c = reward_offsets(game.reward, axis=tuple(range(1, game.reward.ndim)))
    leaves, treedef = jax.tree_util.tree_flatten(game)
    leaves = [game.reward - c if x is game.reward else x for x in leaves]
    return jax.tree_util.tree_unflatten(treedef, leaves), c.reshape(-1)


def _shift(game: MarkovGame, c: Array) -> Array:
    """``[n]`` ``c_i / (1 - gamma)``: what centring took off every value of player ``i``."""
    return c / (1.0 - game.discount)


def _joint_values(game, mdp0, policy0):
    """``V^pi [n, S]`` from player 0's induced tensors (``P_pi = sum_a pi_0 P_0``)."""
    p_pi = _contract.marginalise(mdp0[0], policy0)
    r_pi = _contract.marginalise(mdp0[1], policy0)  # [S, n]
    v, _ = _linalg.solve(_linalg.factorize(p_pi, game.discount), r_pi)
    return v.T


def _check_method(method):
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")


def _solve_players(game, transitions, rewards, v_pi, *, method, tol, max_iters):
    """Solves every player's induced MDP in ONE batched loop (one batched LU per step).

    Action axes are padded to ``max_i A_i`` and masked, so that the ``n`` solves share each
    factorisation call: there are never two independent LAPACK calls side by side.
    """
    a_max = max(game.num_actions)
    dtype = game.dtype
    p = padded(transitions, 1, a_max)  # [n, S, Amax, S]
    r = padded(rewards, 1, a_max)  # [n, S, Amax]
    mask = padded_action_mask(game)
    discount = game.discount
    if tol is None:
        tol = policy_improvement_tol(dtype, discount, jnp.max(jnp.abs(game.reward)))
    # Warm start: greedy on Q_i^pi = r_i + gamma P_i V_i^pi (one improvement step for free).
    q_pi = r + discount * jnp.einsum("nsat,nt->nsa", p, v_pi)
    # A few Bellman optimality sweeps from V^pi (cheap: S^2 A flops each, against S^3 / 3 for
    # a factorisation) make the greedy start of policy iteration right in more states, so that
    # fewer games of a batch need extra policy-iteration steps.
    v = v_pi
    for _ in range(_WARM_SWEEPS):
        v = jnp.max(masked(r + discount * jnp.einsum("nsat,nt->nsa", p, v), mask), axis=-1)
    init_actions = _greedy(r + discount * jnp.einsum("nsat,nt->nsa", p, v), mask)

    def one(p_i, r_i, mask_i, a0, v0):
        return solve_mdp(
            p_i,
            r_i,
            discount,
            method=method,
            init_actions=a0,
            init_values=v0,
            action_mask=mask_i,
            tol=tol,
            max_iters=max_iters,
        )

    sol = jax.vmap(one)(p, r, mask, init_actions, v_pi)
    return sol, q_pi


def solve_best_response(
    game: MarkovGame,
    policy: Sequence[Array],
    player: int,
    *,
    method: str = "policy_iteration",
    tol: Array | None = None,
    max_iters: int | None = None,
) -> tuple[BestResponse, Array]:
    """The step every best response shares: player ``i``'s response and its values under ``pi``.

    Builds the induced MDP ``(P_i, r_i)`` against ``pi_-i``, evaluates ``pi_i`` in it
    (``V_i^pi = (I - gamma P_pi)^-1 r_pi`` with ``P_pi = sum_a pi_i P_i``: the joint chain, one
    LU solve), and solves the MDP with :func:`solve_mdp` warm-started from the greedy actions
    of ``Q_i^pi = r_i + gamma P_i V_i^pi`` and, for value iteration, from ``V_i^pi`` (a lower
    bound on ``V_i^*``). The two solves are sequential by data dependency.

    No argument checks and no reward centring: the game is solved as given. Callers:
    :func:`best_response` (which checks and centres) and
    :func:`jaxmail.equilibria.dominance_violation` (which vmaps it over opponents).

    Args:
      game: one game.
      policy: ``n`` arrays ``[S, A_i]`` (checked by the caller).
      player: static int in ``[0, n)``.
      method: the MDP solver's method (:func:`solve_mdp`).
      tol: the MDP solver's tolerance (:func:`solve_mdp`).
      max_iters: the MDP solver's cap (:func:`solve_mdp`).

    Returns:
      ``(response, v_pi)``: a :class:`BestResponse` and ``V_i^pi [S]``, so that the gain at
      ``mu0`` is ``mu0 . (response.values - v_pi)``.
    """
    mdp = induced_mdp(game, policy, player)
    pi = policy[player]
    p_pi = _contract.marginalise(mdp.transition, pi)
    r_pi = _contract.marginalise(mdp.reward, pi)
    v_pi, _ = _linalg.solve(_linalg.factorize(p_pi, game.discount), r_pi)
    q_pi = mdp.reward + game.discount * (mdp.transition @ v_pi)
    sol = solve_mdp(
        mdp.transition,
        mdp.reward,
        game.discount,
        method=method,
        init_actions=_greedy(q_pi, None),
        init_values=v_pi,
        tol=tol,
        max_iters=max_iters,
    )
    onehot = jax.nn.one_hot(sol.actions, pi.shape[1], dtype=game.dtype)
    response = BestResponse(onehot, sol.values, sol.q_values, sol.converged, sol.iterations)
    return response, v_pi


@kernel(static=("player", "method", "max_iters"))
def best_response(
    game: MarkovGame,
    policy: Sequence[Array],
    player: int,
    *,
    method: str = "policy_iteration",
    tol: float | Array | None = None,
    max_iters: int | None = None,
) -> BestResponse:
    """A best response of ``player`` to the others' policies.

    Solved by :func:`solve_best_response` in the game with the player's rewards centred
    (``evaluation.reward_offsets``; the response is the same, and a large reward offset costs no
    precision); values and Q-values are shifted back by ``c_i / (1 - gamma)``.

    Args:
      game: one game.
      policy: ``n`` arrays ``[S, A_i]``; ``policy[player]`` only serves the warm start.
      player: static int in ``[0, n)``.
      method: ``"policy_iteration"`` (exact, default) or ``"value_iteration"``.
      tol: solver tolerance (see :func:`solve_mdp`; the default is taken on the centred
        rewards).
      max_iters: solver cap.

    Returns:
      A :class:`BestResponse`: one-hot ``policy [S, A_i]``, ``values [S]``,
      ``q_values [S, A_i]``, ``converged``, ``iterations``.
    """
    _check_method(method)
    policy = check_policy(game, policy)
    player = check_player(game, player)
    game_c, c = _centred(game)
    br, _ = solve_best_response(game_c, policy, player, method=method, tol=tol, max_iters=max_iters)
    shift = _shift(game, c)[player]
    return br._replace(values=br.values + shift, q_values=br.q_values + shift)


def _responses(game, policy, *, method, tol, max_iters):
    """``(MDPSolution batched over players [n, ...], V^pi [n, S])`` in the game as given."""
    transitions = _contract.induced_tensors(game.transition, policy, trailing=1)
    rewards_all = _contract.induced_tensors(jnp.moveaxis(game.reward, 0, -1), policy, trailing=1)
    v_pi = _joint_values(game, (transitions[0], rewards_all[0]), policy[0])
    rewards = [r[..., i] for i, r in enumerate(rewards_all)]
    sol, _ = _solve_players(
        game, transitions, rewards, v_pi, method=method, tol=tol, max_iters=max_iters
    )
    return sol, v_pi


def _records(game, sol, shift=None) -> tuple[BestResponse, ...]:
    out = []
    for i, a in enumerate(game.num_actions):
        s = 0.0 if shift is None else shift[i]
        out.append(
            BestResponse(
                jax.nn.one_hot(sol.actions[i], a, dtype=game.dtype),
                sol.values[i] + s,
                sol.q_values[i, :, :a] + s,
                sol.converged[i],
                sol.iterations[i],
            )
        )
    return tuple(out)


@kernel(static=("method", "max_iters"))
def best_responses(
    game: MarkovGame,
    policy: Sequence[Array],
    *,
    method: str = "policy_iteration",
    tol: float | Array | None = None,
    max_iters: int | None = None,
) -> tuple[tuple[BestResponse, ...], Array]:
    """Every player's best response, solved together.

    Shares the partial contractions of ``P`` between players, evaluates ``pi`` once, and runs
    all ``n`` policy iterations in one batched loop. Rewards are centred per player as in
    :func:`best_response`.

    Returns:
      ``(responses, values)``: a tuple of ``n`` :class:`BestResponse` and the joint policy's
      values ``V^pi [n, S]``.
    """
    _check_method(method)
    policy = check_policy(game, policy)
    game_c, c = _centred(game)
    sol, v_pi = _responses(game_c, policy, method=method, tol=tol, max_iters=max_iters)
    shift = _shift(game, c)
    return _records(game, sol, shift), v_pi + shift[:, None]


# ----------------------------------------------------------------------------------------------
# The Nash gap, differentiable with the best responses held fixed.
# ----------------------------------------------------------------------------------------------


def _gap_forward(method, max_iters, game, policy, tol):
    sol, v_pi = _responses(game, policy, method=method, tol=tol, max_iters=max_iters)
    best = sol.values @ game.initial  # [n]
    values = v_pi @ game.initial  # [n]
    return (best, values, sol.converged), sol.actions


@functools.partial(jax.custom_jvp, nondiff_argnums=(0, 1))
def _gap(method, max_iters, game, policy, tol):
    """``(V_i^{b_i, pi_-i}(mu0) [n], V_i^pi(mu0) [n], converged [n])``; custom JVP below."""
    return _gap_forward(method, max_iters, game, policy, tol)[0]


def _fixed_response_values(game, policy, actions, dependency):
    """``(V_i^{b_i, pi_-i}(mu0) [n], V_i^pi(mu0) [n])`` with the responses ``b`` held fixed.

    Chain ``i``: player ``i`` plays ``b_i`` (``actions[i]``) against ``pi_-i``, with player
    ``i``'s rewards; the joint chain: ``pi`` with every player's rewards. Plain linear solves
    (``_linalg.solve``), so forward and reverse mode both go through them; the two
    factorisations are chained (``_linalg.after``).
    """
    transitions = _contract.induced_tensors(game.transition, policy, trailing=1)
    rewards = _contract.induced_tensors(jnp.moveaxis(game.reward, 0, -1), policy, trailing=1)
    s = jnp.arange(game.num_states)
    m = jnp.stack([t[s, actions[i]] for i, t in enumerate(transitions)])  # [n, S, S]
    r = jnp.stack([x[s, actions[i], i] for i, x in enumerate(rewards)])  # [n, S]
    m = _linalg.after(m, dependency)

    def one(m_i, r_i):
        return _linalg.solve(_linalg.factorize(m_i, game.discount), r_i)[0]

    v_b = jax.vmap(one)(m, r)  # [n, S]
    p_pi = _linalg.after(_contract.marginalise(transitions[0], policy[0]), v_b)
    r_pi = _contract.marginalise(rewards[0], policy[0])  # [S, n]
    v_pi, _ = _linalg.solve(_linalg.factorize(p_pi, game.discount), r_pi)
    return v_b @ game.initial, v_pi.T @ game.initial


@_gap.defjvp
def _gap_jvp(method, max_iters, primals, tangents):
    """Envelope theorem: the derivative of ``V_i^{*, pi_-i}`` is that of ``V_i^{b_i, pi_-i}``.

    The tangents are those of :func:`_fixed_response_values` at the solver's best responses
    (held fixed); for reverse mode JAX transposes them (the transposed solves reuse the
    factors).
    """
    game, policy, tol = primals
    d_game, d_policy, _ = tangents
    (best, values, converged), actions = _gap_forward(method, max_iters, game, policy, tol)
    actions = lax.stop_gradient(actions)
    dependency = lax.stop_gradient(best)
    _, (d_best, d_values) = jax.jvp(
        lambda g, p: _fixed_response_values(g, p, actions, dependency),
        (game, policy),
        (d_game, d_policy),
    )
    d_converged = np.zeros(converged.shape, dtype=jax.dtypes.float0)
    return (best, values, converged), (d_best, d_values, d_converged)


@kernel(static=("method", "max_iters"))
def nash_gap(
    game: MarkovGame,
    policy: Sequence[Array],
    *,
    method: str = "policy_iteration",
    tol: float | Array | None = None,
    max_iters: int | None = None,
) -> NashGap:
    """Best-response gains of every player, their max (NashGap) and sum (NashConv).

    ``g_i = V_i^{*, pi_-i}(mu0) - V_i^pi(mu0)``. Cost: two reads of the transition tensor
    (shared partial contractions), one factorisation for ``V^pi``, then one batched
    factorisation per policy-iteration step for all players together.

    Precision: computed with each player's rewards centred (``R_i - c_i``, ``c_i`` the
    midrange of ``R_i`` when the rewards are far from zero compared with their spread, else 0:
    ``evaluation.reward_offsets``). Gains do not depend on ``c``, and ``policy_values`` and
    ``best_response_values`` are shifted back by ``c_i / (1 - gamma)`` (exact for a stochastic
    ``P``, which a validated game is up to rounding); so gains keep their precision when rewards
    carry a large offset (float32 ``R + 1e6``).

    Derivatives (``jax.grad``, ``jax.vjp``, ``jax.jvp``; a custom JVP that JAX transposes for
    reverse mode): with respect to the policy and every leaf of the game (``transition``,
    ``reward``, ``initial``, ``discount``), by the envelope theorem (Danskin):
    ``V_i^{*, pi_-i} = max_b V_i^{b, pi_-i}`` over deterministic ``b``, so where player ``i``'s
    best response ``b_i`` is unique its derivative is that of ``V_i^{b_i, pi_-i}`` with ``b_i``
    held fixed. The gradient of ``nash_gap = max_i g_i`` then follows the argmax player (ties
    share it, as ``jnp.max`` does). Where a best response is not unique the gap is not
    differentiable and this is one of its one-sided derivatives. Differentiating costs one
    batched factorisation of the ``n`` fixed-response chains and one of the joint chain, on top
    of the forward pass; ``converged`` has no derivative. With ``c = 0`` (the usual case) the
    derivatives are those of the formulas above in every direction. With ``c != 0`` they are
    the same along every direction that keeps the rows of ``P`` and of the policy summing to
    1; in other directions (raw, unprojected steps on ``P`` or ``pi``) they differ by terms
    proportional to ``c_i``.

    Args:
      game: one game.
      policy: ``n`` arrays ``[S, A_i]``.
      method: the best-response solver's method (see :func:`solve_mdp`).
      tol: the best-response solver's tolerance (see :func:`solve_mdp`); the default is taken
        on the centred rewards.
      max_iters: the best-response solver's cap on steps (see :func:`solve_mdp`).

    Returns:
      A :class:`NashGap` record (``gains [n]``, ``nash_gap``, ``nash_conv``,
      ``policy_values [n]``, ``best_response_values [n]``, ``converged [n]``).

    Example:
      >>> gap = jm.nash_gap(game, jm.uniform_policy(game))   # matching pennies
      >>> float(gap.nash_gap)
      0.0
      >>> gaps = jax.vmap(jm.nash_gap)(games, policies)      # a batch, one compiled call
      >>> grads = jax.grad(lambda pi: jm.nash_gap(game, pi).nash_gap)(policy)
    """
    _check_method(method)
    policy = check_policy(game, policy)
    game_c, c = _centred(game)
    if tol is not None:
        tol = jnp.asarray(tol, game.dtype)
    best, values, converged = _gap(method, max_iters, game_c, policy, tol)
    gains = best - values
    shift = _shift(game, c)
    return NashGap(gains, jnp.max(gains), jnp.sum(gains), values + shift, best + shift, converged)


# ----------------------------------------------------------------------------------------------
# Best-response sets and the BR shift.
# ----------------------------------------------------------------------------------------------


def _near_optimal(q_values, tol):
    return q_values >= jnp.max(q_values, axis=-1, keepdims=True) - tol


def _farthest(mask, reference, dtype):
    mass = jnp.where(mask, reference, jnp.inf)
    return jax.nn.one_hot(jnp.argmin(mass, axis=-1), reference.shape[-1], dtype=dtype)


def _set_tol(game, tol):
    if tol is None:
        return best_response_set_tol(game.dtype, game.discount, jnp.max(jnp.abs(game.reward)))
    return tol


def _check_reference(game: MarkovGame, reference: Array, player: int) -> Array:
    shape = tuple(np.shape(reference))
    want = (game.num_states, game.num_actions[player])
    if shape != want:
        raise ValueError(
            f"reference: expected shape [S, A_{player}] = {want} (a policy of player {player}), "
            f"got {shape}"
        )
    return jnp.asarray(reference, game.dtype)


def _response_set(game_c, policy, player, tol, method):
    """``(near-optimal mask [S, A_i], tol)`` in the centred game ``game_c``."""
    br, _ = solve_best_response(game_c, policy, player, method=method)
    tol = _set_tol(game_c, tol)
    return _near_optimal(br.q_values, tol)


@kernel(static=("player", "method"))
def best_response_set(
    game: MarkovGame,
    policy: Sequence[Array],
    player: int,
    *,
    tol: float | Array | None = None,
    method: str = "policy_iteration",
) -> Array:
    """The near-optimal actions of ``player`` against ``pi_-i``, state by state.

    ``mask[s, a] = Q_i^*(s, a) >= V_i^*(s) - tol``. A policy is a best response (from every
    state, up to ``tol / (1 - gamma)``) exactly when it only plays actions in the mask.
    Computed with the player's rewards centred (the mask does not depend on a constant).

    Args:
      tol: default :func:`jaxmail.tolerances.best_response_set_tol` (of the centred rewards).

    Returns:
      ``[S, A_i]`` bool; every row has at least one true entry.
    """
    _check_method(method)
    policy = check_policy(game, policy)
    player = check_player(game, player)
    game_c, _ = _centred(game)
    return _response_set(game_c, policy, player, tol, method)


@kernel(static=("player", "method"))
def farthest_best_response(
    game: MarkovGame,
    policy: Sequence[Array],
    player: int,
    reference: Array,
    *,
    tol: float | Array | None = None,
    method: str = "policy_iteration",
) -> Array:
    """The best response farthest from ``reference`` in every state.

    Among the near-optimal actions (:func:`best_response_set`) of each state, picks the one
    with the least ``reference`` mass: ``||e_a - p||_1 = 2 (1 - p(a))`` is then largest.

    Args:
      reference: ``[S, A_i]`` policy of ``player`` (typically the expert's).

    Returns:
      ``[S, A_i]`` one-hot policy.

    Raises:
      ValueError: ``reference`` is not ``[S, A_i]``.
    """
    _check_method(method)
    policy = check_policy(game, policy)
    player = check_player(game, player)
    reference = _check_reference(game, reference, player)
    game_c, _ = _centred(game)
    mask = _response_set(game_c, policy, player, tol, method)
    return _farthest(mask, reference, game.dtype)


@kernel(static=("method",), policies=("policy", "expert"))
def best_response_shift(
    game: MarkovGame,
    policy: Sequence[Array],
    expert: Sequence[Array],
    *,
    tol: float | Array | None = None,
    method: str = "policy_iteration",
) -> Array:
    """Every player's BR shift (docs/theory.md §2), ``[n]``.

    ``shift_i = max over best responses pi*_i to pi_-i of E_{s ~ d^expert} ||pi*_i - expert_i||_1``
    computed state by state with :func:`farthest_best_response` (``tol`` decides ties; rewards
    centred as there).
    """
    _check_method(method)
    policy = check_policy(game, policy)
    expert = check_policy(game, expert, name="expert")
    game_c, _ = _centred(game)
    sol, _ = _responses(game_c, policy, method=method, tol=None, max_iters=None)
    # The expert's occupancy solve starts only after the best responses (see _linalg.after).
    p_e, _ = policy_matrices(game, expert)
    p_e = _linalg.after(p_e, sol.values)
    d, _ = _linalg.solve(
        _linalg.factorize(p_e, game.discount),
        (1.0 - game.discount) * game.initial,
        transpose=True,
    )
    tol = _set_tol(game_c, tol)
    shifts = []
    for i, br in enumerate(_records(game, sol)):
        far = _farthest(_near_optimal(br.q_values, tol), expert[i], game.dtype)
        shifts.append(d @ jnp.sum(jnp.abs(far - expert[i]), axis=-1))
    return jnp.stack(shifts)
