"""Tabular MA-GAIL (Song, Ren, Sadigh & Ermon 2018) with exact measures and exact policy gradients.

MA-GAIL alternates a discriminator, trained to tell expert (state, action) pairs from the
learner's, and a policy step in which each player ascends its value under a reward read off the
discriminator. Here everything is exact: the discriminators are logit tables, the learner's
measures come from its exact occupancy (no sampling noise), and the policy step is the exact
policy gradient through the known model. Discriminator priors (``discriminator=``; ``sigma`` the
logistic function, ``D = sigma(omega)``):

* ``"centralised"``: one ``omega [S, A_1, ..., A_n]`` over the JOINT action; every player gets
  the same reward ``r_i(s, a) = omega(s, a)``. Loss, with the expert's joint measure ``rhoE`` as
  positives and the learner's ``rho^pi`` as negatives:
  ``-E_{rhoE}[log sigma(omega)] - E_{rho^pi}[log sigma(-omega)]``.
* ``"decentralised"``: one ``omega_i [S, A_i]`` per player on its own marginals
  ``rhoE_i(s, a_i)`` vs ``rho_i^pi(s, a_i) = d^pi(s) pi_i(a_i|s)``; player ``i``'s reward
  ``r_i(s, a) = omega_i(s, a_i)`` depends on its own action only (broadcast to the joint shape).
  The reported loss is the mean of the ``n`` logistic losses.
* ``"zero_sum"`` (2 players): MA-GAIL's zero-sum prior ``r_1 = -r_2`` (Song et al. 2018, §4.1
  and Fig. 1; the authors' code ``ermongroup/multiagent-gail``, ``irl/mack/com_gail.py`` and
  ``com_discriminator.py``, mode ``"competitive_single"``). The argument:
  with ``v(pi_1, pi_2)`` player 1's expected reward and the expert at a saddle point,
  ``v(piE_1, pi_2) >= v(piE_1, piE_2) >= v(pi_1, piE_2)``, so one discriminator over joint actions
  assigns HIGH reward to play of the form ``(piE_1, pi_2)`` and LOW reward to ``(pi_1, piE_2)``.
  Those pairs are formed at the EXPERT's states (Fig. 1: in zero-sum mode "expert and policy
  trajectories are paired together" and the discriminator data need no environment
  interaction; the code takes demonstration states and replaces one player's action by the
  learner's, labels 1 for ``(expert_1, learner_2)`` and 0 for ``(learner_1, expert_2)``). Exactly:
  positives ``P(s, a) = rhoE_1(s, a_1) pi_2(a_2|s)``, negatives
  ``N(s, a) = pi_1(a_1|s) rhoE_2(s, a_2)`` (``rhoE_i`` the expert's per-player marginals, so a
  dataset works too), loss ``-E_P[log sigma(omega)] - E_N[log sigma(-omega)]``; rewards
  ``r_1 = omega``, ``r_2 = -omega``. (The authors' code also trains on expert pairs with
  label 1/2 and pays the bounded reward ``2 D - 1``; both refinements are left out here.)
  Players are numbered 0 and 1: the paper's agent 1 is ``policy[0]``.

Reward: the logit ``r = omega = log D - log(1 - D)`` (for ``"zero_sum"``, ``+-omega``). Against
the optimal discriminator ``omega* = log(rhoE / rho^pi)``, so the learner's expected reward is
``-KL(rho^pi || rhoE)``: the policy step descends the reverse KL of the measures. (GAIL's
other common reward, ``-log(1 - D)``, gives ``E_{rho^pi}[log(1 + rhoE / rho^pi)]`` instead.)

Policy step: each player ``i`` ascends its OWN entropy-regularised value
``V_i^tau(mu0) = E[sum_t gamma^t (r_i(s_t, a_t) + tau H(pi_i(.|s_t)))]`` with respect to its own
logits, the others held fixed, by the exact policy gradient: one evaluation (one LU of
``I - gamma P_pi``, shared with the discriminator's occupancy) gives ``d^pi`` and ``V^tau``, then

    Q_i(s, a_i) = sum_{a_-i} pi_-i(a_-i|s) [r_i(s, a) + gamma sum_s' P(s'|s, a) V_i^tau(s')],
    J(theta) = sum_i sum_s sg(d(s)) [sum_{a_i} pi_i(a_i|s) sg(Q_i(s, a_i)) + tau H(pi_i(.|s))]
               / (1 - gamma),

whose gradient in ``theta_i`` is exactly ``grad_{theta_i} V_i^tau(mu0)`` (policy gradient
theorem; :func:`jaxmail.gradients.surrogate_losses`; ``sg`` = stop-gradient). Both updates are optax
steps; the whole alternating loop is one ``lax.scan``.

Shapes: ``n`` players, ``S`` states, ``A_i`` actions of player ``i``, ``T`` steps.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from jaxmail import _linalg, gradients
from jaxmail._args import check_nonnegative
from jaxmail.data import (
    Dataset,
    check_dataset,
    empirical_joint_state_action_occupancy,
    empirical_state_action_occupancy,
)
from jaxmail.evaluation import policy_matrices, state_occupancy
from jaxmail.game import MarkovGame
from jaxmail.imitation.base import Fit, check_optimizer, check_steps, initial_logits
from jaxmail.policy import check_policy, joint_policy

Array = jax.Array

DISCRIMINATORS = ("centralised", "decentralised", "zero_sum")

# Created once, so that repeated calls with the defaults hit the jit cache.
DEFAULT_POLICY_OPTIMIZER = optax.adam(0.05)
DEFAULT_DISCRIMINATOR_OPTIMIZER = optax.adam(0.05)

DISCRIMINATOR_INIT_SCALE = 0.01  # std of the random initial discriminator logits


def discriminator_loss(logits: Array, positives: Array, negatives: Array) -> Array:
    """The logistic (GAIL) loss of a tabular discriminator ``D = sigma(logits)``.

    ``-sum positives * log sigma(logits) - sum negatives * log sigma(-logits)``, i.e.
    ``-E_pos[log D] - E_neg[log(1 - D)]`` for normalised measures (``log_sigmoid``: no NaN).

    Args:
      logits: any shape (``[S, A_1..A_n]`` or ``[S, A_i]``).
      positives: the expert-side measure, same shape.
      negatives: the learner-side measure, same shape.

    Returns:
      ``[]`` the loss (``2 log 2`` at ``logits = 0`` for normalised measures).
    """
    return -jnp.sum(positives * jax.nn.log_sigmoid(logits)) - jnp.sum(
        negatives * jax.nn.log_sigmoid(-logits)
    )


def _broadcast_own(x: Array, player: int, num_players: int) -> Array:
    """``[S, A_i]`` -> ``[S, 1, .., A_i, .., 1]`` (player ``i``'s axis), broadcastable to joint."""
    shape = (x.shape[0],) + tuple(x.shape[1] if j == player else 1 for j in range(num_players))
    return jnp.reshape(x, shape)


def _rewards(kind: str, omega, joint_shape: tuple[int, ...], n: int) -> Array:
    """``[n, S, A_1..A_n]`` the players' rewards read off the discriminator logits."""
    if kind == "centralised":
        return jnp.broadcast_to(omega, (n, *joint_shape))
    if kind == "decentralised":
        return jnp.stack(
            [jnp.broadcast_to(_broadcast_own(w, i, n), joint_shape) for i, w in enumerate(omega)]
        )
    return jnp.stack([omega, -omega])  # zero-sum: r_1 = omega, r_2 = -omega


def _sample_measures(kind: str, expert, occupancy: Array, policy: Sequence[Array]):
    """``(positives, negatives)`` of the discriminator loss (module docstring), per prior."""
    n = len(policy)
    if kind == "centralised":
        jp = joint_policy(policy)
        return expert, jp * occupancy.reshape((-1,) + (1,) * n)
    if kind == "decentralised":
        return expert, tuple(occupancy[:, None] * p for p in policy)
    rho_1, rho_2 = expert  # zero-sum: expert marginals paired with the learner's other player
    positives = rho_1[:, :, None] * policy[1][:, None, :]
    negatives = policy[0][:, :, None] * rho_2[:, None, :]
    return positives, negatives


def _total_discriminator_loss(kind: str, omega, positives, negatives) -> Array:
    if kind == "decentralised":
        losses = [discriminator_loss(w, p, q) for w, p, q in zip(omega, positives, negatives)]
        return sum(losses) / len(losses)
    return discriminator_loss(omega, positives, negatives)


def _policy_losses(game, logits, rewards, entropy, factors, occupancy):
    """``[n]`` :func:`jaxmail.gradients.surrogate_losses` under ``rewards``, given the factors
    of ``I - gamma P_pi`` and ``d^pi`` (the values' solve reuses the factors)."""
    game = game.replace(reward=rewards)
    policy = tuple(jax.nn.softmax(x, axis=-1) for x in logits)
    _, r_pi = policy_matrices(game, lax.stop_gradient(policy))  # [n, S]
    bonus = jnp.stack([gradients.logit_entropy(x) for x in logits])  # [n, S]
    # Data-dependent on the occupancy solve: the two solves never run side by side.
    r = _linalg.after(lax.stop_gradient(r_pi + entropy * bonus), occupancy)
    v, _ = _linalg.solve(factors, r.T)  # [S, n]
    return gradients.surrogate_losses(
        game, logits, values=v.T, occupancy=occupancy, entropy=entropy
    )


def _factorize_and_occupancy(game, policy):
    p_pi, _ = policy_matrices(game, policy)
    factors = _linalg.factorize(lax.stop_gradient(p_pi), game.discount)
    rhs = (1.0 - game.discount) * game.initial
    occupancy, _ = _linalg.solve(factors, rhs, transpose=True)
    return factors, lax.stop_gradient(occupancy)


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: expected a positive int (static), got {value!r}")
    return int(value)


def ma_gail(
    key: Array,
    game: MarkovGame,
    target: Dataset | Sequence[Array],
    *,
    discriminator: str = "centralised",
    steps: int = 1000,
    policy_optimizer: optax.GradientTransformation | None = None,
    discriminator_optimizer: optax.GradientTransformation | None = None,
    entropy: float | Array = 0.01,
    discriminator_steps: int = 10,
    init: Sequence[Array] | None = None,
) -> Fit:
    """Tabular MA-GAIL: alternating discriminator and exact policy-gradient steps.

    Each of the ``steps`` iterations (one ``lax.scan``): factorise ``I - gamma P_pi`` once and
    solve for the learner's occupancy ``d^pi``; take ``discriminator_steps`` optax steps on the
    discriminator loss of the chosen prior (module docstring) against the learner's EXACT
    current measure; then one optax step of every player on its own entropy-regularised value
    under the discriminator reward (exact policy gradient, same factorisation).

    ``entropy`` is an array leaf (``jax.vmap`` over it compiles once); ``discriminator``,
    ``steps``, ``discriminator_steps`` and the optimizers are static: reuse the optimizer
    objects across calls to hit the jit cache.

    Args:
      key: PRNG key, consumed: it draws the discriminator's initial logits,
        ``N(0, 0.01^2)`` per entry (kept for sampled variants too).
      game: one game (its dynamics; its rewards are never used).
      target: a :class:`~jaxmail.data.Dataset` of demonstrations (empirical measures) or an
        expert policy, ``n`` arrays ``[S, A_i]`` (exact measures).
      discriminator: ``"centralised"``, ``"decentralised"`` or ``"zero_sum"`` (2 players).
      steps: number of alternating iterations ``T`` (static).
      policy_optimizer: optax transformation for the policy logits (minimising ``-J``);
        default ``optax.adam(0.05)``.
      discriminator_optimizer: optax transformation for the discriminator logits; default
        ``optax.adam(0.05)``.
      entropy: ``tau >= 0``, weight of each player's own policy entropy in its reward.
      discriminator_steps: discriminator updates per iteration (static, ``>= 1``). With one,
        the simultaneous gradient play cycles instead of converging (seen on a 3-state random
        game: eps_rho 0.81 at the uniform start, 1.25 after 1000 iterations); the default 10
        keeps the discriminator near its optimum ``log(rhoE / rho^pi)``, where the policy step
        descends ``KL(rho^pi || rhoE)`` (eps_rho 0.005 after 200 iterations on that game).
      init: the starting policy (``n`` arrays ``[S, A_i]``); default uniform.

    Returns:
      :class:`~jaxmail.imitation.Fit` with ``policy`` the learned policy, ``n`` arrays
      ``[S, A_i]``; ``losses`` ``[T]`` the policy loss of each iteration, the mean over players
      of ``-V_i^tau(mu0)`` under the updated discriminator's rewards (before the policy update);
      and ``discriminator_losses`` ``[T]``, the discriminator loss of each iteration (just
      before its last discriminator update).

    Raises:
      ValueError: an unknown ``discriminator``, ``"zero_sum"`` with ``n != 2``, bad ``steps`` /
        ``discriminator_steps``, a negative ``entropy`` (when concrete), a target or ``init``
        that does not fit the game.
      TypeError: an optimizer that is not an optax transformation, or a non-Dataset target
        that is not a policy.

    Example:
      >>> game = jm.games.random_game(jax.random.key(0), num_states=3, num_actions=(2, 2),
      ...                             discount=0.9)
      >>> expert = jm.random_policy(jax.random.key(1), game)
      >>> fit = ma_gail(jax.random.key(2), game, expert, steps=300)
      >>> fit.losses.shape, fit.discriminator_losses.shape
      ((300,), (300,))
    """
    if not isinstance(discriminator, str) or discriminator not in DISCRIMINATORS:
        raise ValueError(f"discriminator: expected one of {DISCRIMINATORS}, got {discriminator!r}")
    if discriminator == "zero_sum" and game.num_players != 2:
        raise ValueError(
            f"discriminator: 'zero_sum' needs a 2-player game (r_1 = -r_2), the game has "
            f"{game.num_players} players"
        )
    steps = check_steps(steps)
    discriminator_steps = _check_positive_int("discriminator_steps", discriminator_steps)
    policy_optimizer = check_optimizer(
        DEFAULT_POLICY_OPTIMIZER if policy_optimizer is None else policy_optimizer
    )
    discriminator_optimizer = check_optimizer(
        DEFAULT_DISCRIMINATOR_OPTIMIZER
        if discriminator_optimizer is None
        else discriminator_optimizer
    )
    if isinstance(target, Dataset):
        target = check_dataset(game, target, name="target")
    else:
        target = check_policy(game, target, name="target")
    logits = initial_logits(game, init)
    return _ma_gail(
        key,
        game,
        target,
        logits,
        check_nonnegative("entropy", entropy, game.dtype),
        discriminator,
        steps,
        discriminator_steps,
        policy_optimizer,
        discriminator_optimizer,
    )


def _expert_measures(kind: str, game: MarkovGame, target):
    """The expert side: joint ``[S, A..]`` (centralised) or per-player ``[S, A_i]`` marginals."""
    if isinstance(target, Dataset):
        if kind == "centralised":
            return empirical_joint_state_action_occupancy(game, target)
        return empirical_state_action_occupancy(game, target)
    d = state_occupancy(game, target)
    if kind == "centralised":
        jp = joint_policy(target)
        return jp * d.reshape((-1,) + (1,) * game.num_players)
    return tuple(d[:, None] * p for p in target)


def _initial_discriminator(key, kind: str, game: MarkovGame):
    shape = (game.num_states, *game.num_actions)
    if kind == "decentralised":
        keys = jax.random.split(key, game.num_players)
        return tuple(
            DISCRIMINATOR_INIT_SCALE * jax.random.normal(k, (game.num_states, a), dtype=game.dtype)
            for k, a in zip(keys, game.num_actions)
        )
    return DISCRIMINATOR_INIT_SCALE * jax.random.normal(key, shape, dtype=game.dtype)


@functools.partial(
    jax.jit,
    static_argnames=(
        "kind",
        "steps",
        "discriminator_steps",
        "policy_optimizer",
        "discriminator_optimizer",
    ),
)
def _ma_gail(
    key,
    game,
    target,
    logits,
    entropy,
    kind,
    steps,
    discriminator_steps,
    policy_optimizer,
    discriminator_optimizer,
):
    n = game.num_players
    joint_shape = (game.num_states, *game.num_actions)
    expert = _expert_measures(kind, game, target)
    # The expert's occupancy solve must finish before the loop's first factorisation (jaxlib 0.10
    # CPU deadlock, see jaxmail._linalg): make the initial logits depend on it.
    first = jax.tree_util.tree_leaves(expert)[0]
    logits = tuple(_linalg.after(x, first) for x in logits)
    omega = _initial_discriminator(key, kind, game)

    def iteration(carry, _):
        theta, omega, p_state, d_state = carry
        policy = tuple(jax.nn.softmax(x, axis=-1) for x in theta)
        factors, d = _factorize_and_occupancy(game, policy)
        positives, negatives = _sample_measures(kind, expert, d, lax.stop_gradient(policy))

        def discriminator_update(inner, _):
            omega, d_state = inner
            loss, grads = jax.value_and_grad(
                lambda w: _total_discriminator_loss(kind, w, positives, negatives)
            )(omega)
            updates, d_state = discriminator_optimizer.update(grads, d_state, omega)
            return (optax.apply_updates(omega, updates), d_state), loss

        (omega, d_state), d_losses = lax.scan(
            discriminator_update, (omega, d_state), None, length=discriminator_steps
        )
        rewards = lax.stop_gradient(_rewards(kind, omega, joint_shape, n))
        total, grads = jax.value_and_grad(
            lambda th: jnp.sum(_policy_losses(game, th, rewards, entropy, factors, d))
        )(theta)  # descent directions: every player ascends its own value
        policy_loss = total / n  # the mean of -V_i^tau(mu0)
        updates, p_state = policy_optimizer.update(grads, p_state, theta)
        theta = optax.apply_updates(theta, updates)
        return (theta, omega, p_state, d_state), (policy_loss, d_losses[-1])

    init = (logits, omega, policy_optimizer.init(logits), discriminator_optimizer.init(omega))
    (logits, _, _, _), (losses, d_losses) = lax.scan(iteration, init, None, length=steps)
    return Fit(tuple(jax.nn.softmax(x, axis=-1) for x in logits), losses, d_losses)
