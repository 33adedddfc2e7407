"""The paper's error metrics between a policy and an expert (docs/theory.md §2).

Shapes: ``n`` players, ``S`` states, ``A_i`` actions of player ``i``. Every metric takes one
game and two policies; batch with ``jax.vmap``. All are differentiable in the policies (the L1
norms have subgradients at ties).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jaxmail import _linalg
from jaxmail._api import kernel
from jaxmail.evaluation import evaluate_chain, policy_matrices
from jaxmail.game import MarkovGame
from jaxmail.policy import check_policy, joint_policy, policy_distance

Array = jax.Array


def _evaluations(game, policy, expert, *, want_values, want_occupancy):
    """Values and occupancies of two policies, chained (never two solves side by side)."""
    out = []
    dep = None
    for pi in (policy, expert):
        p_pi, r_pi = policy_matrices(game, pi)
        if dep is not None:
            p_pi = _linalg.after(p_pi, dep)
        v, d, _ = evaluate_chain(
            game,
            p_pi,
            r_pi,
            want_values=want_values,
            want_occupancy=want_occupancy,
            solver="lu",
            tol=None,
            max_iters=0,
        )
        dep = d if d is not None else v
        out.append((v, d))
    return out


@kernel(static=(), policies=("policy", "expert"))
def value_gap(game: MarkovGame, policy: Sequence[Array], expert: Sequence[Array]) -> Array:
    """``max_i (V_i^expert(mu0) - V_i^pi(mu0))``, signed (negative when every player gains)."""
    policy = check_policy(game, policy)
    expert = check_policy(game, expert, name="expert")
    (v, _), (v_e, _) = _evaluations(game, policy, expert, want_values=True, want_occupancy=False)
    return jnp.max((v_e - v) @ game.initial)


@kernel(static=("per_player",), policies=("policy", "expert"))
def bc_error(
    game: MarkovGame,
    policy: Sequence[Array],
    expert: Sequence[Array],
    *,
    per_player: bool = False,
) -> Array:
    """eps_BC: ``max_i E_{s ~ d^expert} ||pi_i(.|s) - expert_i(.|s)||_1`` (L1 = 2 TV).

    Measured under the EXPERT's state occupancy. With ``per_player=True`` returns the ``[n]``
    vector before the max.
    """
    policy = check_policy(game, policy)
    expert = check_policy(game, expert, name="expert")
    p_e, r_e = policy_matrices(game, expert)
    _, d_e, _ = evaluate_chain(
        game,
        p_e,
        r_e,
        want_values=False,
        want_occupancy=True,
        solver="lu",
        tol=None,
        max_iters=0,
    )
    errors = policy_distance(policy, expert) @ d_e
    return errors if per_player else jnp.max(errors)


@kernel(static=(), policies=("policy", "expert"))
def state_occupancy_error(
    game: MarkovGame, policy: Sequence[Array], expert: Sequence[Array]
) -> Array:
    """eps_mu: ``||d^pi - d^expert||_1`` over states."""
    policy = check_policy(game, policy)
    expert = check_policy(game, expert, name="expert")
    (_, d), (_, d_e) = _evaluations(game, policy, expert, want_values=False, want_occupancy=True)
    return jnp.sum(jnp.abs(d - d_e))


@kernel(static=(), policies=("policy", "expert"))
def occupancy_error(game: MarkovGame, policy: Sequence[Array], expert: Sequence[Array]) -> Array:
    """eps_rho: ``||rho^pi - rho^expert||_1`` over states and JOINT actions.

    Forms the joint measures ``[S, A_1, ..., A_n]`` (size ``S prod_i A_i``).
    """
    policy = check_policy(game, policy)
    expert = check_policy(game, expert, name="expert")
    (_, d), (_, d_e) = _evaluations(game, policy, expert, want_values=False, want_occupancy=True)
    jp, je = joint_policy(policy), joint_policy(expert)
    shape = (-1,) + (1,) * (jp.ndim - 1)
    return jnp.sum(jnp.abs(d.reshape(shape) * jp - d_e.reshape(shape) * je))
