"""The game zoo: matrix games, random generators, dominant-strategy families and the paper's
counterexamples, all as :class:`~jaxmail.MarkovGame` tensors.

Shapes: ``n`` players, ``S`` states, ``A_i`` actions of player ``i``.

* :mod:`~jaxmail.games.matrix`: one-state games from payoff tables, and named classics.
* :mod:`~jaxmail.games.generators`: pure, key-first, ``vmap``-able random games (general-sum,
  zero-sum, common-payoff, dominant-strategy), with a memory budget.
* :mod:`~jaxmail.games.counterexamples`: the games of docs/theory.md §4, experts and learners.
* :mod:`~jaxmail.games.tag_game`: the Tag game of docs/theory.md §5 on any grid, 2 or more players.
* :mod:`~jaxmail.games.openspiel`: conversion from OpenSpiel games (optional extra
  ``jaxmail[openspiel]``; ``pyspiel`` is imported only when a conversion is asked for).
"""

from jaxmail.games import dominant
from jaxmail.games.counterexamples import (
    Counterexample,
    lemma1_game,
    lemma2_chain_length,
    lemma2_game,
    theorem2_game,
)
from jaxmail.games.generators import (
    DEFAULT_MAX_BYTES,
    ControlledDominantGame,
    DominantStrategyGame,
    check_memory,
    common_payoff_game,
    dominant_strategy_game,
    random_game,
    single_controller_dominant_game,
    zero_sum_game,
)
from jaxmail.games.matrix import (
    battle_of_the_sexes,
    coordination,
    matching_pennies,
    matrix_game,
    prisoners_dilemma,
    rock_paper_scissors,
    shapley_game,
)
from jaxmail.games.openspiel import (
    OpenSpielMetadata,
    from_openspiel,
    policy_from_openspiel,
    policy_to_openspiel,
)
from jaxmail.games.tag_game import MOVES, TagLayout, tag

__all__ = [
    "MOVES",
    "OpenSpielMetadata",
    "TagLayout",
    "from_openspiel",
    "policy_from_openspiel",
    "policy_to_openspiel",
    "tag",
    "DEFAULT_MAX_BYTES",
    "ControlledDominantGame",
    "Counterexample",
    "DominantStrategyGame",
    "dominant",
    "battle_of_the_sexes",
    "check_memory",
    "common_payoff_game",
    "coordination",
    "dominant_strategy_game",
    "lemma1_game",
    "lemma2_chain_length",
    "lemma2_game",
    "matching_pennies",
    "matrix_game",
    "prisoners_dilemma",
    "random_game",
    "rock_paper_scissors",
    "shapley_game",
    "single_controller_dominant_game",
    "theorem2_game",
    "zero_sum_game",
]
