"""How tight is Lemma 3? A certified check and an adversarial search for its worst case.

Shapes: ``n`` players, ``S`` states, ``A_i`` actions of player ``i``, ``T`` search steps.

Lemma 3: if every expert strategy ``E_i`` is dominant (a best response to every policy of the
others), then every joint policy ``pi`` has

    NashGap(pi) <= (2n - 1) r_max eps_BC(pi) / (1 - gamma)^2,

``eps_BC = max_i E_{s ~ d^E} ||pi_i(.|s) - E_i(.|s)||_1`` and ``|r| <= r_max``
(:func:`jaxmail.theory.lemma3_bound`). The ratio ``NashGap / bound`` (the *tightness*) is at
most 1 when the premise holds.

* :func:`lemma3_check`: eps_BC, NashGap (exact best responses by policy iteration, which do not
  assume the expert is dominant, so a non-dominant expert can break the bound), the bound with
  the game's own ``r_max`` and the tightness, for one game, expert and policy.
* :func:`lemma3_search`: gradient ascent of the tightness over the games of the
  single-controller dominant family (:func:`jaxmail.games.dominant.controlled_game`) and over
  the policies near the expert (:func:`near_expert_policy`), from one random start. The
  objective uses the dominance of the expert: player ``i``'s best response to ``pi_-i`` IS
  ``E_i``, so ``g_i(pi) = V_i^{E_i, pi_-i}(mu0) - V_i^pi(mu0)`` with the best responses fixed,
  a smooth function of the game and the policy (exact values by linear solves, differentiated
  implicitly). The found game and policy should be re-checked with :func:`lemma3_check`.

In the single-controller family the tightness cannot exceed ``1 / (2n - 1)``
(:func:`jaxmail.games.dominant.family_bound`), and it approaches that value (a controller that
with a small probability leaves a rewarding absorbing state for a punishing one); in games with
action-independent transitions it cannot exceed ``c (1 - gamma) / (2n - 1)``, ``c`` the weight
of the own-action reward (:func:`jaxmail.games.dominant_strategy_game`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from jaxmail import _linalg, theory
from jaxmail.evaluation import expected_values
from jaxmail.game import MarkovGame
from jaxmail.games.dominant import ControlledParams, controlled_game, random_controlled_params
from jaxmail.games.generators import ControlledDominantGame
from jaxmail.metrics import bc_error
from jaxmail.policy import check_policy
from jaxmail.responses import nash_gap

Array = jax.Array
Policy = tuple[Array, ...]

__all__ = [
    "Lemma3Check",
    "Lemma3Search",
    "lemma3_check",
    "lemma3_search",
    "near_expert_policy",
]


class Lemma3Check(NamedTuple):
    """Lemma 3 measured on one game, expert and policy (every field ``[]``).

    Attributes:
      bc_error: ``eps_BC`` of the policy against the expert.
      nash_gap: the policy's NashGap, with exact best responses.
      reward_bound: ``r_max = max |R|`` of the game.
      bound: ``(2n - 1) r_max eps_BC / (1 - gamma)^2``.
      tightness: ``nash_gap / bound``; NaN where the bound is 0.
      converged: every best-response solve converged.
    """

    bc_error: Array
    nash_gap: Array
    reward_bound: Array
    bound: Array
    tightness: Array
    converged: Array


class Lemma3Search(NamedTuple):
    """The best point of one :func:`lemma3_search` run.

    Attributes:
      params: the game's :class:`~jaxmail.games.dominant.ControlledParams`.
      game: ``controlled_game(params, ...)``: the game, its dominant expert and whether the
        controller's policy iteration converged.
      policy: ``n`` arrays ``[S, A_i]``, the learner.
      objective: ``[]`` the tightness at the best point, as the search computed it (best
        responses fixed to the expert).
      history: ``[T]`` the objective at every step.
    """

    params: ControlledParams
    game: ControlledDominantGame
    policy: Policy
    objective: Array
    history: Array


def lemma3_check(
    game: MarkovGame,
    expert: Sequence[Array],
    policy: Sequence[Array],
    *,
    constant: str = "proof",
) -> Lemma3Check:
    """eps_BC, NashGap, Lemma 3's bound (scaled by the game's ``r_max``) and their ratio.

    The NashGap comes from exact best responses (:func:`jaxmail.nash_gap`, policy iteration), not
    from the expert, so the check can fail when the expert is not dominant (the Lemma 2 game's
    expert, an equilibrium that is not dominant, breaks it). Traceable; one game (vmap for
    batches).

    Args:
      game: one game.
      expert: ``n`` arrays ``[S, A_i]``.
      policy: ``n`` arrays ``[S, A_i]``.
      constant: ``"proof"`` (``2n - 1``, default) or ``"statement"`` (``2n``).

    Returns:
      A :class:`Lemma3Check`.
    """
    policy = check_policy(game, policy)
    expert = check_policy(game, expert, name="expert")
    eps = bc_error(game, policy, expert=expert)
    gap = nash_gap(game, tuple(_linalg.after(p, eps) for p in policy))
    r_max = theory.reward_bound(game)
    bound = theory.lemma3_bound(
        eps, game.num_players, game.discount, constant=constant, reward_bound=r_max
    )
    safe = jnp.where(bound > 0, bound, 1.0)
    tightness = jnp.where(bound > 0, gap.nash_gap / safe, jnp.nan)
    return Lemma3Check(eps, gap.nash_gap, r_max, bound, tightness, jnp.all(gap.converged))


def near_expert_policy(
    expert: Sequence[Array],
    weights: Sequence[Array],
    directions: Sequence[Array],
    *,
    radius: float | Array,
) -> Policy:
    """Policies within L1 distance ``radius`` of the expert at every state, from free logits.

    ``pi_i(.|s) = E_i(.|s) + m_i(s) (softmax(directions_i[s]) - E_i(.|s))`` with the mixing
    weight ``m_i(s) = (radius / 2) sigmoid(weights_i[s])``, so that
    ``||pi_i(.|s) - E_i(.|s)||_1 <= 2 m_i(s) < radius`` and ``eps_BC < radius``.

    Args:
      expert: ``n`` arrays ``[S, A_i]``.
      weights: ``n`` arrays ``[S]`` (logits of the mixing weights).
      directions: ``n`` arrays ``[S, A_i]`` (logits of the deviation).
      radius: in ``[0, 2]``; may be traced.

    Returns:
      ``n`` arrays ``[S, A_i]``, rows on the simplex.
    """
    if not len(expert) == len(weights) == len(directions):
        raise ValueError(
            f"weights, directions: expected one array per player ({len(expert)}), got "
            f"{len(weights)} and {len(directions)}"
        )
    out = []
    for i, (e, w, z) in enumerate(zip(expert, weights, directions)):
        if jnp.shape(w) != jnp.shape(e)[:1] or jnp.shape(z) != jnp.shape(e):
            raise ValueError(
                f"player {i}: expert {jnp.shape(e)} needs weights [S] and directions [S, A_i], "
                f"got {jnp.shape(w)} and {jnp.shape(z)}"
            )
        m = 0.5 * jnp.asarray(radius, e.dtype) * jax.nn.sigmoid(w)
        out.append(e + m[:, None] * (jax.nn.softmax(z, axis=-1) - e))
    return tuple(out)


def _gains_and_bound(game: MarkovGame, expert: Policy, policy: Policy):
    """``(g [n], bound [])``: ``g_i = V_i^{E_i, pi_-i}(mu0) - V_i^pi(mu0)`` and Lemma 3's bound.

    The ``n + 1`` evaluations are ONE batched solve (``pi``, then ``pi`` with ``E_i`` for each
    ``i``); eps_BC's solve waits for it (``_linalg.after``).
    """
    n = game.num_players
    joints = [policy] + [
        tuple(expert[j] if j == i else policy[j] for j in range(n)) for i in range(n)
    ]
    stacked = tuple(jnp.stack([joint[j] for joint in joints]) for j in range(n))
    v = jax.vmap(lambda p: expected_values(game, p))(stacked)  # [n + 1, n]
    gains = jnp.diagonal(v[1:]) - v[0]
    eps = bc_error(game, tuple(_linalg.after(p, v) for p in policy), expert=expert)
    bound = theory.lemma3_bound(eps, n, game.discount, reward_bound=theory.reward_bound(game))
    return gains, bound


def lemma3_search(
    key: Array,
    *,
    num_states: int,
    num_actions: Sequence[int],
    discount: float | Array,
    radius: float | Array,
    own_weight: float | Array = 0.5,
    controller: int = 0,
    steps: int = 200,
    learning_rate: float | Array = 0.1,
    init_scale: float | Array = 2.0,
) -> Lemma3Search:
    """Gradient ascent of Lemma 3's tightness over dominant games and near-expert policies.

    Maximises ``J = max_i g_i(pi) / bound(pi)`` (module docstring) over the game's parameters
    (:class:`~jaxmail.games.dominant.ControlledParams`: transitions, rewards, start) and the
    learner's logits (:func:`near_expert_policy` with the given ``radius``), by Adam
    (``optax.adam(learning_rate)``) for ``steps`` steps from a random start
    (:func:`~jaxmail.games.dominant.random_controlled_params` with ``init_scale``; uniform
    mixing-weight logits 0; direction logits ``Normal(0, 1)``). The expert is recomputed at
    every step and held fixed inside the gradient. Returns the best point seen (a local
    search: a LOWER estimate of the family's worst case, ``1 / (2n - 1)``).

    ``J`` is the tightness only while the expert is dominant, which the family guarantees; the
    returned point should be certified with :func:`lemma3_check` (exact best responses) and
    :func:`jaxmail.equilibria.dominance_violation`.

    Args:
      key: PRNG key (consumed).
      num_states: ``S`` and ``(A_1, ..., A_n)`` (static).
      num_actions: ``S`` and ``(A_1, ..., A_n)`` (static).
      discount: ``gamma``; may be traced.
      radius: the learner's per-state L1 distance bound, in ``(0, 2]``; may be traced.
      own_weight: as :func:`~jaxmail.games.dominant.controlled_game`.
      controller: as :func:`~jaxmail.games.dominant.controlled_game`.
      steps: number of Adam steps (static, ``>= 1``).
      learning_rate: Adam's step size and the start's scale; may be traced.
      init_scale: Adam's step size and the start's scale; may be traced.

    Returns:
      A :class:`Lemma3Search`.

    Example:
      >>> found = lemma3_search(jax.random.key(0), num_states=3, num_actions=(2, 2),
      ...                       discount=0.9, radius=0.05, steps=100)
      >>> check = lemma3_check(found.game.game, found.game.expert, found.policy)
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps: expected a Python int >= 1, got {steps!r}")
    try:
        r = float(np.asarray(radius))
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        r = None  # traced: trusted
    if r is not None and not 0.0 < r <= 2.0:
        raise ValueError(f"radius: must lie in (0, 2], got {r}")
    actions = tuple(int(a) for a in num_actions)
    k_game, k_dir = jax.random.split(key)
    params = random_controlled_params(
        k_game,
        num_states=num_states,
        num_actions=actions,
        controller=controller,
        scale=init_scale,
    )
    dtype = params.initial.dtype
    directions = tuple(
        jax.random.normal(k, (num_states, a), dtype)
        for k, a in zip(jax.random.split(k_dir, len(actions)), actions)
    )
    weights = tuple(jnp.zeros((num_states,), dtype) for _ in actions)
    x0 = (params, weights, directions)

    def objective(x):
        p, w, z = x
        dse = controlled_game(p, discount=discount, own_weight=own_weight, controller=controller)
        expert = tuple(lax.stop_gradient(e) for e in dse.expert)
        policy = near_expert_policy(expert, w, z, radius=radius)
        gains, bound = _gains_and_bound(dse.game, expert, policy)
        point = (dse._replace(expert=expert), tuple(lax.stop_gradient(q) for q in policy))
        return jnp.max(gains) / bound, point

    optimiser = optax.adam(learning_rate)

    def step(carry, _):
        x, state, best = carry
        (j, point), grad = jax.value_and_grad(objective, has_aux=True)(x)
        grad = jax.tree_util.tree_map(lambda g: -jnp.nan_to_num(g), grad)  # ascent
        # the first point is always taken; a NaN best is replaced by the next point
        better = (j > best[0]) | ~(best[0] > -jnp.inf)
        best = jax.tree_util.tree_map(lambda a, b: jnp.where(better, a, b), (j, x[0], point), best)
        updates, state = optimiser.update(grad, state, x)
        return (optax.apply_updates(x, updates), state, best), j

    # The first step always replaces this placeholder (zeros of the right shapes).
    shapes = jax.eval_shape(objective, x0)[1]
    point0 = jax.tree_util.tree_map(lambda a: jnp.zeros(a.shape, a.dtype), shapes)
    init = (x0, optimiser.init(x0), (jnp.asarray(-jnp.inf, dtype), params, point0))
    (_, _, (best_j, best_params, (game, policy))), history = lax.scan(
        step, init, None, length=steps
    )
    return Lemma3Search(best_params, game, policy, best_j, history)
