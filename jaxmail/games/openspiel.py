"""Import OpenSpiel games as dense Markov games, and move policies between the two libraries.

Needs the optional extra: ``pip install "jaxmail[openspiel]"`` (``pyspiel`` is imported only
when a function here is called). Shapes: ``n`` players, ``S`` states, ``A_i`` actions of player
``i``.

How an OpenSpiel game becomes a :class:`~jaxmail.MarkovGame`
-------------------------------------------------------------

:func:`from_openspiel` enumerates the game breadth-first from its initial state, following every
legal joint action and every chance outcome.

* **States** are OpenSpiel's decision nodes (simultaneous nodes, and turn-based nodes), plus one
  absorbing **sink** (the last index) that stands for every terminal node. Chance nodes are not
  states: they are folded into the transition that leads to them (and into ``initial`` when the
  game starts with chance), so ``P[s, a, s']`` is the probability that joint action ``a`` in
  ``s`` leads, through whatever chance events follow, to decision node ``s'`` (or to a terminal
  node, ``s'`` = sink). Decision nodes with equal keys (``state_key``) are one state.
* **Rewards**: ``R[i, s, a] = E[returns_i(s') - returns_i(s)]``, the expected increase of
  OpenSpiel's cumulative ``state.returns()`` from ``s`` to the next decision or terminal node
  ``s'`` (over the chance that follows ``a``). The sink self-loops with reward 0 under every
  action. Returns are used rather than ``state.rewards()`` because the meaning of ``rewards()``
  differs between games: ``laser_tag`` reports one tag's reward at three consecutive nodes
  (until its next chance event), so summing ``rewards()`` along a path counts it three times
  (OpenSpiel documents ``rewards()`` as "obtained since the last time the player acted"),
  while returns are cumulative by definition and are what OpenSpiel's own evaluators
  (``exploitability``, ``expected_game_score``) read at terminal nodes. Along every path the
  rewards therefore add up to OpenSpiel's terminal returns exactly. For
  ``RewardModel.TERMINAL`` games the returns are 0 until the end, so the payoff is paid on the
  transition into the sink.
* **Actions**: player ``i`` has ``A_i = 1 +`` the largest action id legal for it anywhere in the
  enumeration, and our action ``a`` is OpenSpiel's action id ``a`` (a 2x3 matrix game becomes
  ``(2, 3)``, not ``(3, 3)`` as ``num_distinct_actions`` would say). Where an action is not
  legal (``illegal_actions="first_legal"``, the default), it behaves exactly as the player's
  first legal action there (the smallest legal id): same transition row, same rewards. A
  duplicate never changes a best-response value, so values, best responses and Nash gaps are
  those of the game restricted to legal actions; a policy's mass on illegal actions counts as
  mass on the first legal one (:func:`policy_to_openspiel` folds it so). Turn-based games work
  the same way: at a node where player ``j`` moves, every other player's actions are all the
  same no-op. ``illegal_actions="raise"`` instead raises ``ValueError`` unless every player has
  every action legal at every decision state (so no turn-based game passes).
* **One-shot games** (matrix / normal-form: one decision node at the root, no chance, every
  joint action ends the game), with ``repeat_one_shot=True`` (default), become ONE state that
  loops to itself: the stage game repeated forever, as ``jaxmail``'s own matrix games are.
  Then ``V_i^pi = u_i(pi) / (1 - gamma)`` and every gain is OpenSpiel's divided by
  ``1 - gamma``; with ``discount=0`` (a single shot) they are equal. ``repeat_one_shot=False``
  gives the general conversion (root and sink), whose values equal OpenSpiel's at any discount;
  so does ``preserve_returns=True``, which asks for OpenSpiel's returns.

Discounting versus OpenSpiel's returns
--------------------------------------

An OpenSpiel game is finite-horizon and undiscounted: a policy's value is the expected return
``E[sum_{t<T} r_t]`` up to the (random) end ``T <= H``, ``H`` the most decision steps of a
play (``metadata.depth.max() + 1``). The
converted game has discount ``gamma < 1`` (``gamma = 1`` would make ``I - gamma P`` singular on
the sink), and the sink adds nothing after ``T``, so its value from ``mu0`` is
``E[sum_{t<T} gamma^t r_t]``, with ``t`` counting decision steps (chance does not take time).

* ``preserve_returns=False`` (default): the rewards are OpenSpiel's own. Every value differs
  from OpenSpiel's by at most ``sum_{t<H} (1 - gamma^t) max|r| <= (H-1)(1 - gamma^(H-1)) max|r|``,
  so a gain (a difference of a maximum and a value) by at most twice that and NashConv by
  ``2 n`` times it; take ``gamma`` close to 1 (``0.99``, ``0.999``) to approximate OpenSpiel's
  numbers, or read the converted game as the discounted game it is.
* ``preserve_returns=True``: the rewards of every transition out of a state at depth ``t``
  (``metadata.depth``) are multiplied by ``gamma^-t`` (``metadata.reward_scale``). Then for EVERY
  policy, Markov or not, ``V_i^pi(mu0)`` equals OpenSpiel's expected return exactly, so the
  best-response values, the gains, NashGap and NashConv agree exactly at any ``0 < gamma < 1``.
  Values at later states are their returns-to-go scaled by ``gamma^-t``. It needs every state
  to have one depth (always so with ``state_key="history"``; checked) and rewards grow up to
  ``gamma^-(H-1)`` times, so the paper's ``[-1, 1]`` reward bounds no longer hold.

State keys and when the comparison with OpenSpiel is exact
----------------------------------------------------------

``state_key="history"`` (default) keys decision nodes by their action history: the converted
game is OpenSpiel's game tree, exact for every game, and grows exponentially with the horizon.
``state_key="string"`` keys them by ``(state.move_number(), str(state))``, merging nodes that
print alike at the same move; it is exact when that pair determines the future of the game
(true for the games tested here). The move number matters: OpenSpiel's strings often omit the
clock (``oshi_zumo`` prints ``"Coins: 4 4, Field: #.W.#"`` both at the start and after two bids
of 0, with one round fewer to go). A callable ``state -> hashable`` is used as given.

OpenSpiel's ``exploitability.nash_conv`` computes best responses per *information state*, ours
per state. The two agree when each player's information state determines our state (perfect
information games: matrix, repeated, ``oshi_zumo``, ``goofspiel(imp_info=False)``, ``nim``...;
merged states are then harmless, since against Markov opponents a history-dependent best
response gains nothing over a Markov one). Under imperfect information (``kuhn_poker``) our
best responses see the hidden state, and our gains are at least OpenSpiel's.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmail._args import check_choice
from jaxmail.game import MarkovGame, check_distributions, probability_atol
from jaxmail.games.generators import DEFAULT_MAX_BYTES, check_memory

Array = jax.Array

INSTALL_HINT = 'OpenSpiel is not installed; install it with: pip install "jaxmail[openspiel]"'
STATE_KEYS = ("history", "string")
ILLEGAL_ACTIONS = ("first_legal", "raise")

_TERMINAL = -4  # pyspiel.PlayerId.TERMINAL


def _pyspiel():
    try:
        import pyspiel
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    return pyspiel


def _history_key(state) -> Hashable:
    return tuple(state.history())


def _string_key(state) -> Hashable:
    return (state.move_number(), str(state))


@dataclasses.dataclass(frozen=True, eq=False)
class OpenSpielMetadata:
    """How the indices of a converted game map to OpenSpiel.

    Attributes:
      game: the ``pyspiel.Game`` that was converted.
      states: ``[S]`` a representative ``pyspiel.State`` per state (the first one found,
        breadth-first); ``None`` for the sink.
      state_strings: ``[S]`` ``str`` of each representative; ``"<terminal>"`` for the sink.
      histories: ``[S]`` the representative's action history (``state.history()``); ``()`` for
        the sink.
      current_player: ``[S]`` int, OpenSpiel's ``current_player()`` of each state: ``-2`` at
        simultaneous nodes, the mover at turn-based ones, ``-4`` for the sink.
      legal_actions: ``n`` bool arrays ``[S, A_i]``: the actions OpenSpiel allows player ``i``
        in ``s`` (all false where ``i`` does not move, and at the sink).
      depth: ``[S]`` int, decision steps from the start to the state (the first path found;
        ``-1`` for the sink). ``depth_unique`` says whether every path agrees.
      depth_unique: whether each state is reached at one depth only.
      reward_scale: ``[S]`` the factor the rewards of ``s`` were multiplied by (``gamma^-depth``
        with ``preserve_returns``, else 1).
      sink: index of the absorbing terminal state, or ``None`` for a repeated one-shot game.
      one_shot: whether the game was one-shot and became one self-looping state.
      discount: the discount of the converted game.
      preserve_returns: see the module docstring.
      state_key: the function from an OpenSpiel state to its key.
      index: ``{key: state index}``.
    """

    game: Any
    states: tuple[Any, ...]
    state_strings: tuple[str, ...]
    histories: tuple[tuple[int, ...], ...]
    current_player: np.ndarray
    legal_actions: tuple[np.ndarray, ...]
    depth: np.ndarray
    depth_unique: bool
    reward_scale: np.ndarray
    sink: int | None
    one_shot: bool
    discount: float
    preserve_returns: bool
    state_key: Callable[[Any], Hashable]
    index: dict

    @property
    def num_states(self) -> int:
        return len(self.states)

    @property
    def num_actions(self) -> tuple[int, ...]:
        return tuple(m.shape[1] for m in self.legal_actions)

    def state_index(self, state) -> int:
        """Our index of an OpenSpiel decision node (a terminal node maps to the sink)."""
        if state.is_terminal() and self.sink is not None:
            return self.sink
        key = self.state_key(state)
        try:
            return self.index[key]
        except KeyError:
            raise KeyError(
                f"state: OpenSpiel state {str(state)!r} (history {state.history()}) is not a "
                "state of the converted game"
            ) from None


# ----------------------------------------------------------------------------------------------
# Enumeration.
# ----------------------------------------------------------------------------------------------


def _follow_chance(state):
    """Yields ``(prob, node)``: the decision or terminal nodes that ``state``'s chance reaches."""
    stack = [(1.0, state)]
    while stack:
        prob, node = stack.pop()
        if node.is_chance_node():
            for action, p in node.chance_outcomes():
                stack.append((prob * p, node.child(action)))
        else:
            yield prob, node


def _returns(state) -> np.ndarray:
    return np.asarray(state.returns(), dtype=np.float64)


def _legal_sets(state, num_players: int) -> list[list[int] | None]:
    """Each player's legal actions; ``None`` for a player who does not move here."""
    if state.is_simultaneous_node():
        sets = [list(state.legal_actions(i)) for i in range(num_players)]
        for i, s in enumerate(sets):
            if not s:
                raise ValueError(
                    f"game: player {i} has no legal action at simultaneous node {str(state)!r}"
                )
        return sets
    player = state.current_player()
    if not 0 <= player < num_players:
        raise ValueError(
            f"game: unsupported node (current player {player}) at {str(state)!r}; only "
            "simultaneous, turn-based, chance and terminal nodes can be converted"
        )
    sets: list[list[int] | None] = [None] * num_players
    sets[player] = list(state.legal_actions(player))
    if not sets[player]:
        raise ValueError(
            f"game: player {player} is to move but has no legal action at {str(state)!r}"
        )
    return sets


def _apply(state, legal, joint):
    if state.is_simultaneous_node():
        child = state.clone()
        child.apply_actions(list(joint))
        return child
    (action,) = (a for a, s in zip(joint, legal) if s is not None)
    return state.child(action)


def _resolve_state_key(state_key):
    if callable(state_key):
        return state_key
    if state_key == "history":
        return _history_key
    if state_key == "string":
        return _string_key
    raise ValueError(f"state_key: expected one of {STATE_KEYS} or a callable, got {state_key!r}")


def from_openspiel(
    game_or_name,
    *,
    discount: float,
    state_key: str | Callable[[Any], Hashable] = "history",
    preserve_returns: bool = False,
    repeat_one_shot: bool = True,
    illegal_actions: str = "first_legal",
    max_states: int = 10_000,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[MarkovGame, OpenSpielMetadata]:
    """Converts an OpenSpiel game into a dense :class:`~jaxmail.MarkovGame` by enumeration.

    The mapping (states, sink, chance, rewards, actions, discounting) is the module docstring's.

    Args:
      game_or_name: a ``pyspiel.Game`` (for instance from ``pyspiel.create_matrix_game``) or a
        name for ``pyspiel.load_game`` (``"matrix_pd"``,
        ``"repeated_game(stage_game=matrix_pd(),num_repetitions=2)"``).
      discount: ``gamma`` in ``[0, 1)`` of the converted game (``(0, 1)`` with
        ``preserve_returns``).
      state_key: ``"history"`` (the game tree, default), ``"string"`` (merge nodes with equal
        ``(move_number(), str(state))``) or a callable ``state -> hashable``.
      preserve_returns: scale rewards by ``gamma^-depth`` so that values from ``mu0`` equal
        OpenSpiel's undiscounted expected returns exactly.
      repeat_one_shot: a one-shot game becomes one self-looping state (default) instead of a
        root and a sink (ignored with ``preserve_returns``).
      illegal_actions: ``"first_legal"`` (an illegal action acts as the first legal one) or
        ``"raise"``.
      max_states: the enumeration stops with ``ValueError`` beyond this many decision states.
      max_bytes: ``ValueError`` before allocating a transition tensor
        (``S^2 prod_i A_i`` numbers of the default float dtype) larger than this; the budget of
        :func:`jaxmail.games.check_memory`.

    Returns:
      ``(game, metadata)``: the game (float32, or float64 under ``jax_enable_x64``) with
      ``transition [S, A_1..A_n, S]``, ``reward [n, S, A_1..A_n]``, ``initial [S]``; and an
      :class:`OpenSpielMetadata`.

    Raises:
      ImportError: OpenSpiel is not installed.
      ValueError: bad arguments, an unsupported game (mean-field nodes, a player without legal
        actions), a game larger than ``max_states`` or ``max_bytes``, illegal actions under
        ``illegal_actions="raise"``, or ``preserve_returns`` with states of several depths.

    Example:
      >>> import jaxmail as jm
      >>> from jaxmail.games.openspiel import from_openspiel
      >>> game, meta = from_openspiel("matrix_rps", discount=0.0)
      >>> game.num_states, game.num_actions
      (1, (3, 3))
      >>> float(jm.nash_gap(game, jm.uniform_policy(game)).nash_conv)
      0.0
    """
    pyspiel = _pyspiel()
    check_choice("illegal_actions", illegal_actions, ILLEGAL_ACTIONS)
    key_fn = _resolve_state_key(state_key)
    discount = float(discount)
    if not 0.0 <= discount < 1.0:
        raise ValueError(f"discount: must lie in [0, 1), got {discount}")
    if preserve_returns and discount == 0.0:
        raise ValueError("discount: preserve_returns scales rewards by discount**-depth; need > 0")
    if isinstance(max_states, bool) or not isinstance(max_states, int) or max_states < 1:
        raise ValueError(f"max_states: expected a positive int, got {max_states!r}")

    game = pyspiel.load_game(game_or_name) if isinstance(game_or_name, str) else game_or_name
    dynamics = game.get_type().dynamics
    if dynamics not in (
        pyspiel.GameType.Dynamics.SIMULTANEOUS,
        pyspiel.GameType.Dynamics.SEQUENTIAL,
    ):
        raise ValueError(
            f"game: {game} has dynamics {dynamics}; expected simultaneous or sequential"
        )
    n = game.num_players()

    # Breadth-first enumeration of the decision nodes.
    index: dict[Hashable, int] = {}
    nodes: list[Any] = []
    depths: list[int] = []
    depth_unique = True
    queue: collections.deque[int] = collections.deque()
    sink = -1  # placeholder index of the sink until S is known

    def visit(node, depth: int) -> int:
        nonlocal depth_unique
        if node.is_terminal():
            return sink
        key = key_fn(node)
        i = index.get(key)
        if i is None:
            if len(nodes) >= max_states:
                raise ValueError(
                    f"game: more than max_states={max_states} decision states; raise "
                    "max_states or convert a smaller game"
                )
            i = index[key] = len(nodes)
            nodes.append(node)
            depths.append(depth)
            queue.append(i)
        elif depths[i] != depth:
            depth_unique = False
        return i

    root = game.new_initial_state()
    initial: dict[int, float] = collections.defaultdict(float)
    for prob, node in _follow_chance(root):
        if np.any(_returns(node) != 0):
            raise ValueError(
                f"game: returns {_returns(node)} before the first decision; no transition can "
                "carry them"
            )
        initial[visit(node, 0)] += prob

    # Per state: legal sets and {joint legal action: ({next: prob}, reward [n])}.
    expanded: list[tuple[list, dict]] = []
    while queue:
        s = queue.popleft()
        node = nodes[s]
        before = _returns(node)
        legal = _legal_sets(node, n)
        outcomes = {}
        for joint in itertools.product(*[ls if ls is not None else [None] for ls in legal]):
            child = _apply(node, legal, joint)
            nexts: dict[int, float] = collections.defaultdict(float)
            expected = np.zeros(n)
            for prob, leaf in _follow_chance(child):
                nexts[visit(leaf, depths[s] + 1)] += prob
                expected += prob * (_returns(leaf) - before)
            outcomes[joint] = (dict(nexts), expected)
        expanded.append((legal, outcomes))

    num_actions = tuple(
        1 + max((max(legal[i]) for legal, _ in expanded if legal[i]), default=0) for i in range(n)
    )
    one_shot = (
        repeat_one_shot
        and not preserve_returns
        and len(nodes) == 1
        and not root.is_chance_node()
        and all(set(nexts) == {sink} for nexts, _ in expanded[0][1].values())
    )
    S = 1 if one_shot else len(nodes) + 1
    sink_index = None if one_shot else S - 1
    check_memory(S, num_actions, max_bytes=max_bytes)
    depth = np.asarray(depths + ([] if one_shot else [-1]), dtype=int)
    scale = np.ones(S)
    if preserve_returns:
        if not depth_unique:
            raise ValueError(
                "preserve_returns: some state is reached after different numbers of steps, so "
                "no per-state reward scale preserves returns; use state_key='history'"
            )
        scale = np.where(depth >= 0, discount ** -np.maximum(depth, 0).astype(float), 1.0)

    dtype = np.dtype(jnp.result_type(float))  # built in the game's dtype: no second copy
    transition = np.zeros((S, *num_actions, S), dtype=dtype)
    reward = np.zeros((n, S, *num_actions), dtype=dtype)
    legal_masks = tuple(np.zeros((S, a), dtype=bool) for a in num_actions)
    for s, (legal, outcomes) in enumerate(expanded):
        sizes = tuple(len(ls) if ls is not None else 1 for ls in legal)
        p_s = np.zeros((*sizes, S))
        r_s = np.zeros((*sizes, n))
        for joint, (nexts, rew) in outcomes.items():
            pos = tuple(0 if ls is None else ls.index(a) for a, ls in zip(joint, legal))
            for nxt, prob in nexts.items():
                p_s[pos + (0 if one_shot else (sink_index if nxt == sink else nxt),)] += prob
            r_s[pos] = rew
        maps = []
        for i, (ls, a_i) in enumerate(zip(legal, num_actions)):
            m = np.zeros(a_i, dtype=int)  # illegal -> position 0 = the first legal action
            if ls is not None:
                legal_masks[i][s, ls] = True
                m[ls] = np.arange(len(ls))
            if illegal_actions == "raise" and (ls is None or len(ls) != a_i):
                raise ValueError(
                    f"game: player {i} has legal actions {ls} of {a_i} at state {s} "
                    f"({str(nodes[s])!r}); illegal_actions='raise' needs every action legal "
                    "everywhere (use 'first_legal')"
                )
            maps.append(m)
        grid = np.ix_(*maps)
        transition[s] = p_s[grid]
        reward[:, s] = np.moveaxis(r_s[grid], -1, 0) * scale[s]
    if sink_index is not None:
        transition[(sink_index, ..., sink_index)] = 1.0

    mu0 = np.zeros(S)
    for s, p in initial.items():
        mu0[s] += p  # s = -1 (a play that ends before any decision) is the sink, index S - 1

    markov_game = MarkovGame(
        transition=transition, reward=reward, initial=mu0, discount=np.asarray(discount)
    )
    meta = OpenSpielMetadata(
        game=game,
        states=tuple(nodes) + (() if one_shot else (None,)),
        state_strings=tuple(str(x) for x in nodes) + (() if one_shot else ("<terminal>",)),
        histories=tuple(tuple(x.history()) for x in nodes) + (() if one_shot else ((),)),
        current_player=np.asarray(
            [x.current_player() for x in nodes] + ([] if one_shot else [_TERMINAL]), dtype=int
        ),
        legal_actions=legal_masks,
        depth=depth,
        depth_unique=depth_unique,
        reward_scale=scale,
        sink=sink_index,
        one_shot=bool(one_shot),
        discount=discount,
        preserve_returns=bool(preserve_returns),
        state_key=key_fn,
        index=dict(index),
    )
    return markov_game, meta


# ----------------------------------------------------------------------------------------------
# Policies.
# ----------------------------------------------------------------------------------------------


def _check_policy(policy: Sequence[Any], metadata: OpenSpielMetadata) -> tuple:
    n = len(metadata.legal_actions)
    if isinstance(policy, (np.ndarray, jax.Array)) or len(policy) != n:
        raise ValueError(f"policy: expected a tuple of {n} arrays [S, A_i]")
    out = []
    for i, (p, mask) in enumerate(zip(policy, metadata.legal_actions)):
        dtype = getattr(p, "dtype", np.float64)
        p = np.asarray(p, dtype=np.float64)
        if p.shape != mask.shape:
            raise ValueError(
                f"policy[{i}]: expected shape [S, A_{i}] = {mask.shape}, got {p.shape}"
            )
        check_distributions(f"policy[{i}]", p, atol=probability_atol(dtype), index_names="s")
        out.append(p)
    return tuple(out)


def _openspiel_policy_class():
    from open_spiel.python import policy as policy_lib

    class MarkovPolicy(policy_lib.Policy):
        """A jaxmail policy seen from OpenSpiel: rows looked up by the converted state."""

        def __init__(self, metadata: OpenSpielMetadata, rows: tuple[np.ndarray, ...]):
            super().__init__(metadata.game, list(range(len(rows))))
            self.metadata = metadata
            self.rows = rows

        def action_probabilities(self, state, player_id=None):
            if player_id is None:
                if state.is_simultaneous_node():
                    raise ValueError("player_id is required at a simultaneous node")
                player_id = state.current_player()
            legal = state.legal_actions(player_id)
            if not legal:
                return {0: 1.0}
            row = self.rows[player_id][self.metadata.state_index(state)]
            probs = {a: float(row[a]) for a in legal}
            illegal = np.ones(row.shape[0], dtype=bool)
            illegal[legal] = False
            probs[legal[0]] += float(row[illegal].sum())  # as in the conversion
            return probs

    return MarkovPolicy


def policy_to_openspiel(policy: Sequence[Array], metadata: OpenSpielMetadata):
    """A jaxmail policy as an OpenSpiel ``open_spiel.python.policy.Policy``.

    At an OpenSpiel node it returns the row of the node's converted state (found with
    ``metadata.state_key``): ``{a: pi_i[s, a]}`` over the legal actions, with the mass on
    illegal actions added to the first legal one, which is how the conversion plays them. The
    result works with ``open_spiel.python.algorithms.exploitability.nash_conv`` (simultaneous
    and turn-based nodes) and ``expected_game_score.policy_value``. Prefer it to
    ``.to_tabular()``: OpenSpiel's ``TabularPolicy`` keeps one row per information-state string
    for all players together, so where two players' strings coincide (``oshi_zumo``,
    ``goofspiel(imp_info=False)``: both players see everything) the second player gets no rows
    of its own.

    Args:
      policy: ``n`` arrays ``[S, A_i]`` for the game that ``metadata`` describes.
      metadata: from :func:`from_openspiel`.

    Returns:
      An OpenSpiel policy for all players of ``metadata.game``.
    """
    _pyspiel()
    return _openspiel_policy_class()(metadata, _check_policy(policy, metadata))


def policy_from_openspiel(openspiel_policy, metadata: OpenSpielMetadata) -> tuple[Array, ...]:
    """An OpenSpiel policy as a jaxmail policy, read at each state's representative node.

    Exact when the OpenSpiel policy is the same at every node merged into one state (always with
    ``state_key="history"``). Players who do not move in a state (turn-based nodes, the sink)
    get uniform rows, which are all equivalent there.

    Args:
      openspiel_policy: anything with ``action_probabilities(state, player_id)``.
      metadata: from :func:`from_openspiel`.

    Returns:
      ``n`` arrays ``[S, A_i]`` in the default float dtype.
    """
    rows = []
    for i, mask in enumerate(metadata.legal_actions):
        p = np.full(mask.shape, 1.0 / mask.shape[1])
        for s, node in enumerate(metadata.states):
            if node is None or not mask[s].any():
                continue
            p[s] = 0.0
            for a, prob in openspiel_policy.action_probabilities(node, i).items():
                if not mask[s, a]:
                    raise ValueError(
                        f"openspiel_policy: player {i} gives probability {prob} to action {a}, "
                        f"not legal at state {s} ({metadata.state_strings[s]!r})"
                    )
                p[s, a] += prob
            if abs(p[s].sum() - 1.0) > 1e-6:
                raise ValueError(
                    f"openspiel_policy: player {i}'s probabilities at state {s} "
                    f"({metadata.state_strings[s]!r}) sum to {p[s].sum():.6g}, not 1"
                )
        rows.append(jnp.asarray(p, dtype=jnp.result_type(float)))
    return tuple(rows)
