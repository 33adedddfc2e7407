"""Independent NumPy oracle for jaxmail.

This module is the plain, float64, obviously-correct reference that the JAX kernels are tested
against. It deliberately does NOT import jax or jaxmail, and it is written as loops
(``itertools.product`` over joint actions, Python loops over states) so that each function can be
checked against its formula by reading it. Speed is irrelevant here, with one exception:
:func:`nash_gap_policy_iteration` is the vectorised NumPy baseline that benchmarks compare with.

Conventions (docs/design.md §1, docs/theory.md §2)
---------------------------------------
Legend: ``n`` players, ``S`` states, ``A_i`` actions of player ``i`` (may differ between
players), ``a = (a_1, ..., a_n)`` a joint action.

- ``P``: transition, ``[S, A_1, ..., A_n, S]``; ``P[s, a_1, ..., a_n, s']``, every row sums to 1.
- ``R``: reward, ``[n, S, A_1, ..., A_n]``; ``R[i, s, a]`` is player ``i``'s reward.
- ``mu0``: initial distribution ``[S]``; ``gamma``: discount in ``[0, 1)``.
- ``policy``: tuple of ``n`` arrays, ``policy[i]`` of shape ``[S, A_i]``, rows are distributions;
  the joint policy is the product ``pi(a|s) = prod_i policy[i][s, a_i]``.
- Values (unnormalised): ``V[i, s] = E[sum_t gamma^t R_i(s_t, a_t) | s_0 = s]``; the value at
  ``mu0`` is ``mu0 @ V[i]``.
- State occupancy (normalised, sums to 1):
  ``d(s) = (1 - gamma) sum_t gamma^t Pr(s_t = s | s_0 ~ mu0)``.
- Per-player state-action occupancy ``rho_i(s, a_i) = d(s) policy[i][s, a_i]``; joint
  ``rho(s, a) = d(s) pi(a|s)``, shape ``[S, A_1, ..., A_n]``.
- Induced MDP of player ``i`` against the others:
  ``P_i[s, a_i, s'] = sum_{a_-i} prod_{j != i} policy[j][s, a_j] P[s, a, s']`` (``[S, A_i, S]``),
  ``r_i[s, a_i]`` likewise from ``R[i]`` (``[S, A_i]``).
- ``Q_i(s, a_i) = r_i[s, a_i] + gamma sum_s' P_i[s, a_i, s'] V[i, s']`` (others marginalised);
  joint ``Q[i, s, a] = R[i, s, a] + gamma sum_s' P[s, a, s'] V[i, s']``.
- Best-response values ``V*_i``: optimal values of player ``i``'s induced MDP. Gain
  ``g_i = mu0 @ V*_i - mu0 @ V[i] >= 0``; ``NashGap = max_i g_i``; ``NashConv = sum_i g_i``.
- ``bc_error = max_i sum_s d_expert(s) sum_a |policy[i][s, a] - expert[i][s, a]|`` (L1 under the
  EXPERT's state occupancy); ``state_occupancy_error = ||d_pi - d_expert||_1``;
  ``occupancy_error = ||rho_pi - rho_expert||_1`` over states and JOINT actions;
  ``value_gap = max_i (V_i^expert(mu0) - V_i^pi(mu0))`` (signed).

Every function returns float64 NumPy arrays (or NumPy float64 scalars).
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Iterator, Sequence

import numpy as np

Policy = tuple[np.ndarray, ...]

# Brute-force limits (number of deterministic policies A_i ** S of one player).
BRUTE_FORCE_MAX = 200_000
BRUTE_FORCE_DEFAULT_MAX = 4096


# ---------------------------------------------------------------------------------------------
# Shapes and joint policies
# ---------------------------------------------------------------------------------------------


def _num_actions(P: np.ndarray) -> tuple[int, ...]:
    """Action counts ``(A_1, ..., A_n)`` read from ``P`` of shape ``[S, A_1, ..., A_n, S]``."""
    return tuple(int(k) for k in P.shape[1:-1])


def _as_policy(policy: Sequence[np.ndarray]) -> Policy:
    return tuple(np.asarray(p, dtype=np.float64) for p in policy)


def joint_actions(num_actions: Sequence[int]) -> list[tuple[int, ...]]:
    """All joint actions ``(a_1, ..., a_n)`` in ``itertools.product`` (row-major) order."""
    return list(itertools.product(*(range(int(k)) for k in num_actions)))


def _prob_of_joint_action(policy: Policy, s: int, a: tuple[int, ...], skip: int = -1) -> float:
    """``prod_{j != skip} policy[j][s, a_j]`` (all players when ``skip`` is -1)."""
    prob = 1.0
    for j, a_j in enumerate(a):
        if j != skip:
            prob *= policy[j][s, a_j]
    return prob


def joint_policy(policy: Sequence[np.ndarray]) -> np.ndarray:
    """Joint policy ``pi(a|s) = prod_i policy[i][s, a_i]``.

    Args:
        policy: tuple of ``n`` arrays ``[S, A_i]``.

    Returns:
        ``[S, A_1, ..., A_n]``.
    """
    policy = _as_policy(policy)
    num_states = policy[0].shape[0]
    num_actions = tuple(p.shape[1] for p in policy)
    pi = np.zeros((num_states, *num_actions))
    for s in range(num_states):
        for a in joint_actions(num_actions):
            pi[(s, *a)] = _prob_of_joint_action(policy, s, a)
    return pi


# ---------------------------------------------------------------------------------------------
# Joint evaluation
# ---------------------------------------------------------------------------------------------


def policy_transition(P: np.ndarray, policy: Sequence[np.ndarray]) -> np.ndarray:
    """State-to-state transition of the joint policy.

    ``P_pi[s, s'] = sum_a pi(a|s) P[s, a, s']``.

    Returns:
        ``[S, S]``.
    """
    P = np.asarray(P, dtype=np.float64)
    policy = _as_policy(policy)
    num_states = P.shape[0]
    P_pi = np.zeros((num_states, num_states))
    for s in range(num_states):
        for a in joint_actions(_num_actions(P)):
            P_pi[s] += _prob_of_joint_action(policy, s, a) * P[(s, *a)]
    return P_pi


def policy_reward(R: np.ndarray, policy: Sequence[np.ndarray]) -> np.ndarray:
    """Expected one-step reward of every player under the joint policy.

    ``r_pi[i, s] = sum_a pi(a|s) R[i, s, a]``.

    Returns:
        ``[n, S]``.
    """
    R = np.asarray(R, dtype=np.float64)
    policy = _as_policy(policy)
    num_players, num_states = R.shape[:2]
    r_pi = np.zeros((num_players, num_states))
    for i in range(num_players):
        for s in range(num_states):
            for a in joint_actions(R.shape[2:]):
                r_pi[i, s] += _prob_of_joint_action(policy, s, a) * R[(i, s, *a)]
    return r_pi


def values(P: np.ndarray, R: np.ndarray, gamma: float, policy: Sequence[np.ndarray]) -> np.ndarray:
    """Values of every player: ``V[i] = (I - gamma P_pi)^{-1} r_pi[i]``.

    Returns:
        ``[n, S]``.
    """
    P_pi = policy_transition(P, policy)
    r_pi = policy_reward(R, policy)
    num_states = P_pi.shape[0]
    return np.linalg.solve(np.eye(num_states) - gamma * P_pi, r_pi.T).T


def values_at(
    P: np.ndarray, R: np.ndarray, mu0: np.ndarray, gamma: float, policy: Sequence[np.ndarray]
) -> np.ndarray:
    """Values at the initial distribution, ``V_i(mu0) = mu0 @ V[i]``.

    Returns:
        ``[n]``.
    """
    return values(P, R, gamma, policy) @ np.asarray(mu0, dtype=np.float64)


def state_occupancy(
    P: np.ndarray, mu0: np.ndarray, gamma: float, policy: Sequence[np.ndarray]
) -> np.ndarray:
    """Normalised discounted state occupancy by the power series.

    ``d = (1 - gamma) sum_t gamma^t mu_t`` with ``mu_0 = mu0`` and ``mu_{t+1} = mu_t P_pi``,
    summed term by term until ``gamma^t < 1e-15`` (so the truncated mass is below 1e-15). This is
    deliberately independent of the linear solve used by :func:`values`.

    Returns:
        ``[S]``.
    """
    P_pi = policy_transition(P, policy)
    dist = np.asarray(mu0, dtype=np.float64).copy()
    occupancy = np.zeros_like(dist)
    weight = 1.0  # gamma ** t
    while weight >= 1e-15:
        occupancy += (1.0 - gamma) * weight * dist
        dist = dist @ P_pi
        weight *= gamma
    return occupancy


def state_action_occupancy(
    P: np.ndarray, mu0: np.ndarray, gamma: float, policy: Sequence[np.ndarray]
) -> Policy:
    """Per-player state-action occupancy ``rho_i(s, a_i) = d(s) policy[i][s, a_i]``.

    Returns:
        tuple of ``n`` arrays ``[S, A_i]``.
    """
    policy = _as_policy(policy)
    d = state_occupancy(P, mu0, gamma, policy)
    return tuple(d[:, None] * p for p in policy)


def joint_state_action_occupancy(
    P: np.ndarray, mu0: np.ndarray, gamma: float, policy: Sequence[np.ndarray]
) -> np.ndarray:
    """Joint state-action occupancy ``rho(s, a) = d(s) pi(a|s)``.

    Returns:
        ``[S, A_1, ..., A_n]``.
    """
    d = state_occupancy(P, mu0, gamma, policy)
    pi = joint_policy(policy)
    rho = np.zeros_like(pi)
    for s in range(pi.shape[0]):
        rho[s] = d[s] * pi[s]
    return rho


# ---------------------------------------------------------------------------------------------
# Induced MDPs and Q-values
# ---------------------------------------------------------------------------------------------


def induced_mdp(
    P: np.ndarray, R: np.ndarray, policy: Sequence[np.ndarray], player: int
) -> tuple[np.ndarray, np.ndarray]:
    """MDP faced by ``player`` when the others play ``policy``.

    ``P_i[s, a_i, s'] = sum_{a_-i} prod_{j != i} policy[j][s, a_j] P[s, a, s']`` and
    ``r_i[s, a_i] = sum_{a_-i} prod_{j != i} policy[j][s, a_j] R[i, s, a]``.

    Returns:
        ``(P_i [S, A_i, S], r_i [S, A_i])``.
    """
    P = np.asarray(P, dtype=np.float64)
    R = np.asarray(R, dtype=np.float64)
    policy = _as_policy(policy)
    num_actions = _num_actions(P)
    num_states = P.shape[0]
    P_i = np.zeros((num_states, num_actions[player], num_states))
    r_i = np.zeros((num_states, num_actions[player]))
    for s in range(num_states):
        for a in joint_actions(num_actions):
            weight = _prob_of_joint_action(policy, s, a, skip=player)
            P_i[s, a[player]] += weight * P[(s, *a)]
            r_i[s, a[player]] += weight * R[(player, s, *a)]
    return P_i, r_i


def q_values(P: np.ndarray, R: np.ndarray, gamma: float, policy: Sequence[np.ndarray]) -> Policy:
    """Per-player Q-values with the others marginalised.

    ``Q_i(s, a_i) = r_i[s, a_i] + gamma sum_s' P_i[s, a_i, s'] V[i, s']``.

    Returns:
        tuple of ``n`` arrays ``[S, A_i]``.
    """
    V = values(P, R, gamma, policy)
    out = []
    for i in range(V.shape[0]):
        P_i, r_i = induced_mdp(P, R, policy, i)
        out.append(r_i + gamma * P_i @ V[i])
    return tuple(out)


def joint_q_values(
    P: np.ndarray, R: np.ndarray, gamma: float, policy: Sequence[np.ndarray]
) -> np.ndarray:
    """Joint Q-values ``Q[i, s, a] = R[i, s, a] + gamma sum_s' P[s, a, s'] V[i, s']``.

    Returns:
        ``[n, S, A_1, ..., A_n]``.
    """
    P = np.asarray(P, dtype=np.float64)
    R = np.asarray(R, dtype=np.float64)
    V = values(P, R, gamma, policy)
    Q = np.zeros_like(R)
    for i in range(R.shape[0]):
        for s in range(R.shape[1]):
            for a in joint_actions(_num_actions(P)):
                Q[(i, s, *a)] = R[(i, s, *a)] + gamma * P[(s, *a)] @ V[i]
    return Q


# ---------------------------------------------------------------------------------------------
# Best responses
# ---------------------------------------------------------------------------------------------


def deterministic_policies(num_states: int, num_actions_i: int) -> Iterator[np.ndarray]:
    """All ``A_i ** S`` deterministic policies of one player, as one-hot ``[S, A_i]`` arrays.

    Order: ``itertools.product(range(A_i), repeat=S)`` of the chosen actions.
    """
    for choice in itertools.product(range(num_actions_i), repeat=num_states):
        one_hot = np.zeros((num_states, num_actions_i))
        one_hot[np.arange(num_states), list(choice)] = 1.0
        yield one_hot


def _evaluate_mdp_policy(
    P_i: np.ndarray, r_i: np.ndarray, gamma: float, policy_i: np.ndarray
) -> np.ndarray:
    """Exact values ``(I - gamma P_sigma)^{-1} r_sigma`` of a policy ``[S, A_i]`` of an MDP."""
    P_sigma = np.einsum("sa,sat->st", policy_i, P_i)
    r_sigma = np.einsum("sa,sa->s", policy_i, r_i)
    return np.linalg.solve(np.eye(P_i.shape[0]) - gamma * P_sigma, r_sigma)


def best_response_brute_force(
    P: np.ndarray, R: np.ndarray, gamma: float, policy: Sequence[np.ndarray], player: int
) -> tuple[np.ndarray, np.ndarray]:
    """Best response of ``player`` by enumerating all of its deterministic policies.

    The others' policies are held fixed; every deterministic policy of ``player`` is evaluated
    exactly (a linear solve in the induced MDP) and ``V_star`` is the elementwise maximum over
    them. A stationary deterministic policy that is optimal from every state exists, so one of
    the enumerated policies attains the elementwise maximum (checked to 1e-9) and is returned.

    Returns:
        ``(V_star [S], best_policy [S, A_i] one-hot)``.

    Raises:
        ValueError: if ``A_i ** S > 200_000``.
    """
    P = np.asarray(P, dtype=np.float64)
    num_states = P.shape[0]
    num_actions_i = _num_actions(P)[player]
    count = num_actions_i**num_states
    if count > BRUTE_FORCE_MAX:
        raise ValueError(
            f"best_response_brute_force: player {player} has {num_actions_i}**{num_states} = "
            f"{count} deterministic policies, more than {BRUTE_FORCE_MAX}"
        )
    P_i, r_i = induced_mdp(P, R, policy, player)
    candidates = list(deterministic_policies(num_states, num_actions_i))
    all_values = np.stack([_evaluate_mdp_policy(P_i, r_i, gamma, c) for c in candidates])
    V_star = all_values.max(axis=0)
    attains = np.all(all_values >= V_star - 1e-9, axis=1)
    if not attains.any():
        raise AssertionError(
            "best_response_brute_force: no deterministic policy attains the elementwise maximum"
        )
    return V_star, candidates[int(np.argmax(attains))]


def optimal_values(
    P_i: np.ndarray,
    r_i: np.ndarray,
    gamma: float,
    tol: float = 1e-12,
    max_iters: int = 1_000_000,
) -> np.ndarray:
    """Optimal values of an MDP by plain value iteration.

    ``V <- max_a (r_i[s, a] + gamma sum_s' P_i[s, a, s'] V[s'])`` from ``V = 0``, stopped when
    ``gamma * ||V_new - V||_inf <= tol * (1 - gamma)``, which bounds ``||V_new - V*||_inf`` by
    ``tol``. That threshold is floored at the float64 resolution of the iterates (16 ulps of
    ``max(1, |V|)``), below which successive iterates cannot usefully shrink.

    Args:
        P_i: ``[S, A, S]``.
        r_i: ``[S, A]``.

    Returns:
        ``V* [S]``.

    Raises:
        RuntimeError: if ``max_iters`` sweeps do not meet the tolerance.
    """
    P_i = np.asarray(P_i, dtype=np.float64)
    r_i = np.asarray(r_i, dtype=np.float64)
    V = np.zeros(P_i.shape[0])
    eps = np.finfo(np.float64).eps
    for _ in range(max_iters):
        V_new = (r_i + gamma * P_i @ V).max(axis=1)
        change = np.max(np.abs(V_new - V))
        V = V_new
        floor = 16.0 * eps * max(1.0, float(np.max(np.abs(V))))
        if gamma * change <= tol * (1.0 - gamma) or change <= floor:
            return V
    raise RuntimeError(f"optimal_values: value iteration did not converge in {max_iters} sweeps")


def best_response_values(
    P: np.ndarray, R: np.ndarray, gamma: float, policy: Sequence[np.ndarray], player: int
) -> np.ndarray:
    """``V*_i [S]``: brute force when ``A_i ** S <= 4096``, else value iteration."""
    num_states = np.shape(P)[0]
    num_actions_i = _num_actions(np.asarray(P))[player]
    if num_actions_i**num_states <= BRUTE_FORCE_DEFAULT_MAX:
        return best_response_brute_force(P, R, gamma, policy, player)[0]
    P_i, r_i = induced_mdp(P, R, policy, player)
    return optimal_values(P_i, r_i, gamma)


def nash_gap(
    P: np.ndarray, R: np.ndarray, mu0: np.ndarray, gamma: float, policy: Sequence[np.ndarray]
) -> dict:
    """Best-response gains and their aggregates.

    ``g_i = mu0 @ V*_i - mu0 @ V[i]``; ``nash_gap = max_i g_i``; ``nash_conv = sum_i g_i``.

    Returns:
        ``dict(gains=[n], nash_gap=float64, nash_conv=float64)``.
    """
    mu0 = np.asarray(mu0, dtype=np.float64)
    V_at = values_at(P, R, mu0, gamma, policy)
    gains = np.array(
        [mu0 @ best_response_values(P, R, gamma, policy, i) - V_at[i] for i in range(len(V_at))]
    )
    return dict(gains=gains, nash_gap=np.float64(gains.max()), nash_conv=np.float64(gains.sum()))


def best_response_set(
    P: np.ndarray,
    R: np.ndarray,
    gamma: float,
    policy: Sequence[np.ndarray],
    player: int,
    tol: float,
) -> np.ndarray:
    """Near-optimal actions of ``player`` against the others.

    ``Q*_i(s, a) = r_i[s, a] + gamma sum_s' P_i[s, a, s'] V*_i(s')``; the set is
    ``{(s, a) : Q*_i(s, a) >= V*_i(s) - tol}``.

    Returns:
        bool ``[S, A_i]``.
    """
    V_star = best_response_values(P, R, gamma, policy, player)
    P_i, r_i = induced_mdp(P, R, policy, player)
    Q_star = r_i + gamma * P_i @ V_star
    return Q_star >= V_star[:, None] - tol


# ---------------------------------------------------------------------------------------------
# Imitation metrics
# ---------------------------------------------------------------------------------------------


def bc_error(
    P: np.ndarray,
    R: np.ndarray,
    mu0: np.ndarray,
    gamma: float,
    policy: Sequence[np.ndarray],
    expert: Sequence[np.ndarray],
    per_player: bool = False,
):
    """Behavioural-cloning error under the EXPERT's state occupancy.

    ``e_i = sum_s d_expert(s) sum_a |policy[i][s, a] - expert[i][s, a]|``; returns
    ``max_i e_i``, or the vector ``e [n]`` when ``per_player``. ``R`` is not used (it is in the
    signature for uniformity with the other metrics).
    """
    del R
    policy = _as_policy(policy)
    expert = _as_policy(expert)
    d_expert = state_occupancy(P, mu0, gamma, expert)
    errors = np.zeros(len(policy))
    for i in range(len(policy)):
        for s in range(d_expert.shape[0]):
            errors[i] += d_expert[s] * np.sum(np.abs(policy[i][s] - expert[i][s]))
    return errors if per_player else np.float64(errors.max())


def state_occupancy_error(
    P: np.ndarray,
    mu0: np.ndarray,
    gamma: float,
    policy: Sequence[np.ndarray],
    expert: Sequence[np.ndarray],
) -> np.float64:
    """``sum_s |d_pi(s) - d_expert(s)|``."""
    d_pi = state_occupancy(P, mu0, gamma, policy)
    d_expert = state_occupancy(P, mu0, gamma, expert)
    return np.float64(np.sum(np.abs(d_pi - d_expert)))


def occupancy_error(
    P: np.ndarray,
    mu0: np.ndarray,
    gamma: float,
    policy: Sequence[np.ndarray],
    expert: Sequence[np.ndarray],
) -> np.float64:
    """``sum_{s, a} |rho_pi(s, a) - rho_expert(s, a)|`` over states and JOINT actions."""
    rho_pi = joint_state_action_occupancy(P, mu0, gamma, policy)
    rho_expert = joint_state_action_occupancy(P, mu0, gamma, expert)
    return np.float64(np.sum(np.abs(rho_pi - rho_expert)))


def value_gap(
    P: np.ndarray,
    R: np.ndarray,
    mu0: np.ndarray,
    gamma: float,
    policy: Sequence[np.ndarray],
    expert: Sequence[np.ndarray],
) -> np.float64:
    """``max_i (V_i^expert(mu0) - V_i^pi(mu0))``, signed (no absolute value)."""
    diff = values_at(P, R, mu0, gamma, expert) - values_at(P, R, mu0, gamma, policy)
    return np.float64(diff.max())


# ---------------------------------------------------------------------------------------------
# Random instances
# ---------------------------------------------------------------------------------------------


def random_game(
    rng: np.random.Generator, num_states: int, num_actions: Sequence[int], gamma: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random game: every row of ``P`` ~ Dirichlet(1), ``R`` ~ U[-1, 1], ``mu0`` ~ Dirichlet(1).

    Draws, in this order: ``P`` ``[S, A_1..A_n, S]``, ``R`` ``[n, S, A_1..A_n]``, ``mu0`` ``[S]``.
    ``gamma`` is only checked to lie in ``[0, 1)``; it does not affect the draws.

    Returns:
        ``(P, R, mu0)``.
    """
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"random_game: gamma must lie in [0, 1), got {gamma}")
    num_actions = tuple(int(k) for k in num_actions)
    P = rng.dirichlet(np.ones(num_states), size=(num_states, *num_actions))
    R = rng.uniform(-1.0, 1.0, size=(len(num_actions), num_states, *num_actions))
    mu0 = rng.dirichlet(np.ones(num_states))
    return P, R, mu0


def random_policy(rng: np.random.Generator, num_states: int, num_actions: Sequence[int]) -> Policy:
    """A random policy: every row of every ``policy[i] [S, A_i]`` ~ Dirichlet(1)."""
    return tuple(rng.dirichlet(np.ones(int(k)), size=num_states) for k in num_actions)


# ---------------------------------------------------------------------------------------------
# Vectorised baseline (what benchmarks compare with)
# ---------------------------------------------------------------------------------------------


def _induced_mdps_vectorised(
    P: np.ndarray, R: np.ndarray, policy: Policy
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every player's induced MDP by one ``np.einsum`` contraction each (no joint-action loop)."""
    num_players = len(policy)
    letters = [c for c in string.ascii_letters if c not in "st"][:num_players]
    joint = "".join(letters)
    out = []
    for i in range(num_players):
        others = [f"s{letters[j]}" for j in range(num_players) if j != i]
        others_ops = [policy[j] for j in range(num_players) if j != i]
        P_i = np.einsum(
            ",".join([f"s{joint}t", *others]) + f"->s{letters[i]}t", P, *others_ops, optimize=True
        )
        r_i = np.einsum(
            ",".join([f"s{joint}", *others]) + f"->s{letters[i]}", R[i], *others_ops, optimize=True
        )
        out.append((P_i, r_i))
    return out


def nash_gap_policy_iteration(
    P: np.ndarray,
    R: np.ndarray,
    mu0: np.ndarray,
    gamma: float,
    policy: Sequence[np.ndarray],
    tol: float = 1e-10,
    max_iters: int = 1000,
) -> dict:
    """Nash gap by exact (Howard) policy iteration: the vectorised NumPy benchmark baseline.

    Same algorithm as the library: contract ``P`` and ``R`` with the policies (``np.einsum``)
    into each player's induced MDP; the joint ``P_pi = sum_a P_0[s, a, :] policy[0][s, a]`` and
    ``r_pi[i] = sum_a r_i[s, a] policy[i][s, a]`` follow from those; one solve of
    ``(I - gamma P_pi) V = r_pi`` gives every player's values; each player's policy iteration
    starts from the greedy policy of ``Q_i^pi = r_i + gamma P_i V[i]``, then alternates exact
    evaluation (``np.linalg.solve``) and greedy improvement, switching an action only where the
    improvement exceeds ``tol``, until no action changes.

    Returns:
        ``dict(gains=[n], nash_gap=float64, nash_conv=float64)`` as :func:`nash_gap`.

    Raises:
        RuntimeError: if a player's policy iteration does not stop within ``max_iters``.
    """
    P = np.asarray(P, dtype=np.float64)
    R = np.asarray(R, dtype=np.float64)
    mu0 = np.asarray(mu0, dtype=np.float64)
    policy = _as_policy(policy)
    num_states = P.shape[0]
    num_players = len(policy)
    states = np.arange(num_states)
    eye = np.eye(num_states)

    mdps = _induced_mdps_vectorised(P, R, policy)
    P_pi = np.einsum("sat,sa->st", mdps[0][0], policy[0])
    r_pi = np.stack([np.einsum("sa,sa->s", r_i, policy[i]) for i, (_, r_i) in enumerate(mdps)])
    V = np.linalg.solve(eye - gamma * P_pi, r_pi.T).T  # [n, S]

    gains = np.zeros(num_players)
    for i, (P_i, r_i) in enumerate(mdps):
        sigma = np.argmax(r_i + gamma * P_i @ V[i], axis=1)
        for _ in range(max_iters):
            V_sigma = np.linalg.solve(eye - gamma * P_i[states, sigma], r_i[states, sigma])
            Q = r_i + gamma * P_i @ V_sigma
            greedy = np.argmax(Q, axis=1)
            improve = Q[states, greedy] > Q[states, sigma] + tol
            if not improve.any():
                break
            sigma = np.where(improve, greedy, sigma)
        else:
            raise RuntimeError(
                f"nash_gap_policy_iteration: player {i} did not converge in {max_iters} iterations"
            )
        gains[i] = mu0 @ V_sigma - mu0 @ V[i]
    return dict(gains=gains, nash_gap=np.float64(gains.max()), nash_conv=np.float64(gains.sum()))
