"""The paper's counterexample games (docs/theory.md §4), each with its expert and a bad learner.

Shapes: 2 players, ``S`` states, ``P[s, a_1, a_2, s']``, ``R[i, s, a_1, a_2]``. The paper
numbers players 1 and 2; here they are players 0 and 1 (``policy[0]``, ``policy[1]``).

Every function returns ``Counterexample(game, expert, learner)``: the
:class:`~jaxmail.MarkovGame` and two policies (tuples of ``[S, A_i]`` arrays in the game's
dtype). The tensors are fixed small tables built with NumPy; only ``discount`` is a value that
may be traced in :func:`lemma1_game` and :func:`theorem2_game` (:func:`lemma2_game` derives its
number of states from ``discount``, which must therefore be concrete). Where the construction
leaves a detail open (what off-path actions do, whether ``s_exp`` absorbs), the choice is a
keyword argument here.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmail._args import check_choice
from jaxmail._arrays import default_float_dtype, is_concrete
from jaxmail.game import MarkovGame
from jaxmail.games.generators import DEFAULT_MAX_BYTES, check_memory

Array = jax.Array

LEMMA1_OFF_PATH = ("stay", "advance", "restart")
LEMMA2_EXP_STATE = ("absorbing", "restart")


class Counterexample(NamedTuple):
    """A counterexample game with its expert and learner.

    Attributes:
      game: the :class:`~jaxmail.MarkovGame`.
      expert: ``n`` arrays ``[S, A_i]``, the expert's policy.
      learner: ``n`` arrays ``[S, A_i]``, the imitator's policy that the result is about.
    """

    game: MarkovGame
    expert: tuple[Array, ...]
    learner: tuple[Array, ...]


def _policy(actions: list[list[int]], num_actions: int) -> tuple[Array, ...]:
    """One-hot policies from per-player lists of per-state actions."""
    dtype = default_float_dtype()
    return tuple(jnp.asarray(np.eye(num_actions)[a], dtype=dtype) for a in actions)


def _game(transition, reward, initial, discount) -> MarkovGame:
    return MarkovGame(transition=transition, reward=reward, initial=initial, discount=discount)


def lemma1_game(discount: float | Array = 0.9, *, off_path: str = "stay") -> Counterexample:
    """Lemma 1: matching state occupancies is not enough, even with full support.

    States ``s0, s1, s2``; two actions each; common payoff; ``mu0`` uniform. The joint action
    (0, 0) moves ``s -> s + 1 (mod 3)`` and pays ``1/3, 2/3, 1`` at ``s0, s1, s2`` to both
    players; every other joint action pays -1 to both and, by ``off_path``:

    * ``"stay"`` *(default, the paper's)*: stays in place;
    * ``"advance"``: moves ``s -> s + 1`` like (0, 0) (transitions then ignore actions);
    * ``"restart"``: jumps to ``mu0`` (uniform).

    Expert: both players always play 0. Learner: player 1 always plays 1.

    In all three variants: ``d_expert = d_learner = uniform`` (the cycle keeps the uniform
    distribution uniform; the learner stays, cycles or restarts uniformly); the expert is an
    exact (strict) equilibrium; and ``NashGap(learner) = (5/3) / (1 - gamma)``: the learner earns
    -1 forever, player 1's best response is the expert's action 0, which earns the expert's
    ``V(mu0) = (2/3) / (1 - gamma)`` (mean reward 2/3 under a uniform state at every step); player
    0 cannot leave -1 while player 1 plays 1 (gain 0).

    Args:
      discount: ``gamma`` in ``[0, 1)``; may be traced.
      off_path: what every joint action other than (0, 0) does to the state.

    Returns:
      ``Counterexample(game, expert, learner)`` with ``S = 3``, ``A = (2, 2)``.
    """
    check_choice("off_path", off_path, LEMMA1_OFF_PATH)
    num_states = 3
    advance = np.roll(np.eye(num_states), 1, axis=1)  # advance[s, s + 1 mod 3] = 1
    off = {
        "stay": np.eye(num_states),
        "advance": advance,
        "restart": np.full((num_states, num_states), 1.0 / num_states),
    }[off_path]
    transition = np.broadcast_to(off[:, None, None, :], (num_states, 2, 2, num_states)).copy()
    transition[:, 0, 0, :] = advance
    common = np.full((num_states, 2, 2), -1.0)
    common[:, 0, 0] = [1 / 3, 2 / 3, 1.0]
    reward = np.stack([common, common])
    initial = np.full(num_states, 1.0 / num_states)
    game = _game(transition, reward, initial, discount)
    expert = _policy([[0, 0, 0], [0, 0, 0]], 2)
    learner = _policy([[0, 0, 0], [1, 1, 1]], 2)
    return Counterexample(game, expert, learner)


def theorem2_game(
    discount: float | Array = 0.9,
    *,
    exact_expert: bool = False,
    chain_length: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Counterexample:
    """Theorem 2: matching state-action occupancies fails without full expert support.

    Three actions each; common payoff; rewards depend on the state only; ``mu0 = s0``.

    Absorbing version (``chain_length=None``), states ``[s0, s1, T, B]``:

    * rewards ``r(s0) = 0``, ``r(s1) = 1`` (``0`` with ``exact_expert=True``), ``r(T) = 1``,
      ``r(B) = 0``;
    * from ``s0`` the joint action (1, 0) goes to ``s1``, anything else to ``B``; from ``s1``,
      (1, 0) goes to ``T``, anything else to ``B``; ``T`` and ``B`` are absorbing.

    Expert: (0, 0) at ``s0``, (2, 2) at ``s1``, (0, 0) elsewhere. Learner: (0, 0) everywhere.
    Both go ``s0 -> B`` and play (0, 0) at both states, so ``rho_learner = rho_expert`` exactly;
    ``s1`` is never visited. Player 0 can steer through ``s1`` to ``T`` against the learner's
    player 1 (who plays 0 at ``s1``) but not against the expert's (who plays 2 there):

    * ``exact_expert=False`` (the paper's statement): expert gains ``(gamma, 0)`` (player 0
      detours through ``s1`` for the reward ``gamma``), so the expert is a ``gamma``-equilibrium;
      ``NashGap(learner) = gamma + gamma^2 / (1 - gamma) = gamma / (1 - gamma)``.
    * ``exact_expert=True``: ``r(s1) = 0``, the expert is exact (gains 0) and
      ``NashGap(learner) = gamma^2 / (1 - gamma)``.

    Finite version (``chain_length=K >= 1``), states ``[s0, s1, T_1, ..., T_K, B]`` (``K + 3``):
    ``T`` is replaced by a chain ``T_1 -> T_2 -> ... -> T_K -> B`` of ``K`` reward-1 states that
    every joint action advances; ``s1``'s (1, 0) goes to ``T_1``. ``B`` stays the absorbing
    reward-0 state and doubles as the terminal state (reaching it ends all rewards), so every
    value is a finite sum and any horizon ``H >= K + 2`` sees the whole game. Players play
    (0, 0) on the chain in both policies. Then ``NashGap(learner) = sum_{t=1}^{K+1} gamma^t =
    gamma (1 - gamma^{K+1}) / (1 - gamma)``, or ``sum_{t=2}^{K+1} gamma^t =
    gamma^2 (1 - gamma^K) / (1 - gamma)`` with ``exact_expert``; the expert's gains are as above.

    Args:
      discount: ``gamma`` in ``[0, 1)``; may be traced.
      exact_expert: ``r(s1) = 0`` instead of 1, making the expert an exact equilibrium.
      chain_length: ``None`` (absorbing ``T``) or ``K >= 1``.
      max_bytes: memory budget for the transition tensor (see :mod:`~jaxmail.games.generators`).

    Returns:
      ``Counterexample(game, expert, learner)`` with ``A = (3, 3)``.
    """
    if chain_length is None:
        num_chain = 1
    else:
        if isinstance(chain_length, bool) or not isinstance(chain_length, (int, np.integer)):
            raise ValueError(f"chain_length: expected None or an int >= 1, got {chain_length!r}")
        if chain_length < 1:
            raise ValueError(f"chain_length: must be >= 1, got {chain_length}")
        num_chain = int(chain_length)
    num_states = num_chain + 3
    check_memory(num_states, (3, 3), max_bytes=max_bytes)
    s0, s1, first, bad = 0, 1, 2, num_states - 1  # T_1..T_K are states 2..K+1
    transition = np.zeros((num_states, 3, 3, num_states))
    transition[s0, :, :, bad] = 1.0
    transition[s0, 1, 0, :] = np.eye(num_states)[s1]
    transition[s1, :, :, bad] = 1.0
    transition[s1, 1, 0, :] = np.eye(num_states)[first]
    for t in range(first, bad):  # the chain (or T itself)
        nxt = t + 1 if chain_length is not None else t  # absorbing T loops to itself
        transition[t, :, :, nxt] = 1.0
    transition[bad, :, :, bad] = 1.0
    state_reward = np.zeros(num_states)
    state_reward[s1] = 0.0 if exact_expert else 1.0
    state_reward[first:bad] = 1.0
    common = np.broadcast_to(state_reward[:, None, None], (num_states, 3, 3))
    reward = np.stack([common, common])
    initial = np.eye(num_states)[s0]
    game = _game(transition, reward, initial, discount)
    expert_actions = [0] * num_states
    expert_actions[s1] = 2
    expert = _policy([expert_actions, expert_actions], 3)
    learner = _policy([[0] * num_states, [0] * num_states], 3)
    return Counterexample(game, expert, learner)


def lemma2_chain_length(epsilon: float, discount: float) -> int:
    """``k = ceil(log((eps/2)(1 - gamma)) / log gamma)``, at least 1.

    Computed as the smallest ``k >= 1`` with ``gamma^k <= (eps/2)(1 - gamma)`` (the same number,
    without the rounding risk of ``ceil`` at an exact integer).
    """
    target = 0.5 * epsilon * (1.0 - discount)
    k = max(1, math.ceil(math.log(target) / math.log(discount)))
    while discount**k > target:
        k += 1
    while k > 1 and discount ** (k - 1) <= target:
        k -= 1
    return k


def _concrete_float(name: str, value) -> float:
    if not is_concrete(value):
        raise ValueError(
            f"{name}: must be concrete (it sets the number of states), got a traced value"
        )
    arr = np.asarray(value)
    if arr.ndim != 0:
        raise ValueError(f"{name}: expected a scalar, got shape {arr.shape}")
    return float(arr)


def lemma2_game(
    epsilon: float = 0.05,
    discount: float = 0.9,
    *,
    exp_state: str = "absorbing",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Counterexample:
    """Lemma 2: a tiny BC error can move a best response by the maximal L1 distance 2.

    States ``[s0, c_1, ..., c_k, s_exp]`` (``S = k + 2``) with
    ``k = ceil(log((eps/2)(1 - gamma)) / log gamma)`` (:func:`lemma2_chain_length`); ``mu0 = s0``;
    two actions each. Only player 0 moves the state: at ``s0`` action 0 enters the chain
    (``c_1``) and action 1 goes straight to ``s_exp``; ``c_j -> c_{j+1}``, ``c_k -> s_exp`` for
    every joint action. ``s_exp`` is absorbing *(default, ``exp_state="absorbing"``)* or
    returns to ``s0`` (``exp_state="restart"``). Rewards only at ``s_exp``, depending on player
    1's action ``c``: ``r_0 = +1`` if ``c = 0``, ``-1`` if ``c = 1``; ``r_1 = +1`` if ``c = 1``,
    else 0.

    Expert: player 0 plays 0, player 1 plays 1, everywhere (an exact equilibrium: player 1's 1
    is strictly best at ``s_exp``; player 0 pays -1 per visit of ``s_exp`` and the chain
    postpones and thins those visits). Learner: the expert, except that player 1 plays 0 at
    ``s_exp``.

    Absorbing variant: ``d_expert(s_exp) = gamma^{k+1}``, so
    ``eps_BC = 2 gamma^{k+1} <= eps gamma (1 - gamma) <= eps``; against the learner player 0's
    best response is action 1 at ``s0`` and (all actions tie) anything elsewhere, so its BR
    shift is 2; ``NashGap(learner) = (gamma - gamma^{k+1}) / (1 - gamma)`` (player 0 moves
    from ``gamma^{k+1}/(1-gamma)`` to ``gamma/(1-gamma)``; player 1 gains only
    ``gamma^{k+1}/(1-gamma)``).

    Args:
      epsilon: the target BC error ``eps > 0`` (concrete).
      discount: ``gamma`` in ``(0, 1)`` (concrete: it sets ``k``).
      exp_state: ``"absorbing"`` *(default)* or ``"restart"``.
      max_bytes: memory budget for the transition tensor.

    Returns:
      ``Counterexample(game, expert, learner)`` with ``S = k + 2``, ``A = (2, 2)``.
    """
    check_choice("exp_state", exp_state, LEMMA2_EXP_STATE)
    eps = _concrete_float("epsilon", epsilon)
    gamma = _concrete_float("discount", discount)
    if not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"epsilon: must be > 0, got {eps}")
    if not (np.isfinite(gamma) and 0.0 < gamma < 1.0):
        raise ValueError(f"discount: must lie in (0, 1) for the Lemma 2 game, got {gamma}")
    k = lemma2_chain_length(eps, gamma)
    num_states = k + 2
    check_memory(num_states, (2, 2), max_bytes=max_bytes)
    s0, exp = 0, num_states - 1
    transition = np.zeros((num_states, 2, 2, num_states))
    transition[s0, 0, :, 1] = 1.0  # enter the chain
    transition[s0, 1, :, exp] = 1.0  # straight to s_exp
    chain = np.arange(1, exp)
    transition[chain, :, :, chain + 1] = 1.0
    transition[exp, :, :, exp if exp_state == "absorbing" else s0] = 1.0
    reward = np.zeros((2, num_states, 2, 2))
    reward[0, exp, :, 0] = 1.0
    reward[0, exp, :, 1] = -1.0
    reward[1, exp, :, 1] = 1.0
    initial = np.eye(num_states)[s0]
    game = _game(transition, reward, initial, discount)
    expert = _policy([[0] * num_states, [1] * num_states], 2)
    learner_1 = [1] * num_states
    learner_1[exp] = 0
    learner = _policy([[0] * num_states, learner_1], 2)
    return Counterexample(game, expert, learner)
