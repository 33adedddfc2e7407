"""Imitation learners and their errors.

- :func:`behavior_cloning`: tabular BC, closed form (counting with smoothing) or by gradient
  (optax on logits with entropy, L2 and label-smoothing regularisers).
- :func:`perturb_policy`: synthetic imitators, the expert with noise at every state (the paper's
  Appendix E).
- :func:`estimate_bc_error`: eps_BC from expert demonstrations with a bootstrap interval.

Every learner takes one game and one dataset and is traceable: ``jax.vmap`` it over keys, dataset
sizes (:meth:`jaxmail.data.Dataset.truncate`) and regularisation strengths.
"""

from jaxmail.imitation.bc import DEFAULT_OPTIMIZER, bc_loss, behavior_cloning
from jaxmail.imitation.errors import BCErrorEstimate, estimate_bc_error
from jaxmail.imitation.synthetic import perturb_policy

__all__ = [
    "DEFAULT_OPTIMIZER",
    "BCErrorEstimate",
    "bc_loss",
    "behavior_cloning",
    "estimate_bc_error",
    "perturb_policy",
]
