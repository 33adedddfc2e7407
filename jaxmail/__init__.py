"""jaxmail: how exploitable is what multi-agent imitation learned?

Batched JAX kernels for n-player general-sum Markov games stored as dense tensors: exact
evaluation, occupancy measures, best responses, Nash gaps and the imitation error metrics.
"""

from jaxmail import _xla_guard

_xla_guard.install()  # before JAX starts its CPU backend; see jaxmail/_xla_guard.py

from jaxmail import data, equilibria, games, gradients, imitation, theory  # noqa: E402  (jm.games.tag())
from jaxmail.checking import checked  # noqa: E402
from jaxmail.evaluation import (  # noqa: E402
    Evaluation,
    evaluate,
    expected_values,
    joint_q_values,
    joint_state_action_occupancy,
    policy_matrices,
    q_values,
    state_action_occupancy,
    state_occupancy,
    values,
)
from jaxmail.game import MarkovGame, load_game, save_game  # noqa: E402
from jaxmail.metrics import (  # noqa: E402
    bc_error,
    occupancy_error,
    state_occupancy_error,
    value_gap,
)
from jaxmail.policy import (  # noqa: E402
    check_policy,
    deterministic_policy,
    joint_policy,
    policy_distance,
    random_policy,
    sample_actions,
    softmax_policy,
    uniform_policy,
)
from jaxmail.responses import (  # noqa: E402
    BestResponse,
    InducedMDP,
    MDPSolution,
    NashGap,
    best_response,
    best_response_set,
    best_response_shift,
    best_responses,
    farthest_best_response,
    induced_mdp,
    induced_mdps,
    nash_gap,
    solve_mdp,
)

__version__ = "0.1.0"

__all__ = [
    "BestResponse",
    "Evaluation",
    "InducedMDP",
    "MDPSolution",
    "MarkovGame",
    "NashGap",
    "bc_error",
    "data",
    "equilibria",
    "imitation",
    "theory",
    "games",
    "gradients",
    "best_response",
    "best_response_set",
    "best_response_shift",
    "best_responses",
    "check_policy",
    "checked",
    "deterministic_policy",
    "evaluate",
    "expected_values",
    "farthest_best_response",
    "induced_mdp",
    "induced_mdps",
    "joint_policy",
    "joint_q_values",
    "joint_state_action_occupancy",
    "load_game",
    "nash_gap",
    "occupancy_error",
    "policy_distance",
    "policy_matrices",
    "q_values",
    "random_policy",
    "sample_actions",
    "save_game",
    "softmax_policy",
    "solve_mdp",
    "state_action_occupancy",
    "state_occupancy",
    "state_occupancy_error",
    "uniform_policy",
    "value_gap",
    "values",
]
