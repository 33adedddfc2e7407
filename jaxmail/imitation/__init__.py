"""Imitation learners and their errors.

- :func:`behavior_cloning`: tabular BC, closed form (counting with smoothing) or by gradient
  (optax on logits with entropy, L2 and label-smoothing regularisers).
- :func:`measure_matching`: the product policy whose exact occupancy measure (state, joint
  state-action or per-player) is closest to a target in a chosen divergence, entropy-regularised.
- :func:`ma_gail`: tabular MA-GAIL with centralised, decentralised or zero-sum discriminators and
  exact policy gradients through the known model.
- :func:`perturb_policy`: synthetic imitators, the expert with noise at every state (the paper's
  Appendix E).
- :func:`estimate_bc_error`: eps_BC from expert demonstrations with a bootstrap interval.

Every learner takes one game and one dataset and is traceable: ``jax.vmap`` it over keys, dataset
sizes (:meth:`jaxmail.data.Dataset.truncate`) and regularisation strengths.
"""

from jaxmail.imitation.bc import DEFAULT_OPTIMIZER, bc_loss, behavior_cloning
from jaxmail.imitation.errors import BCErrorEstimate, estimate_bc_error
from jaxmail.imitation.gail import discriminator_loss, ma_gail
from jaxmail.imitation.matching import divergence, measure_matching
from jaxmail.imitation.synthetic import perturb_policy

__all__ = [
    "DEFAULT_OPTIMIZER",
    "BCErrorEstimate",
    "bc_loss",
    "behavior_cloning",
    "discriminator_loss",
    "divergence",
    "estimate_bc_error",
    "ma_gail",
    "measure_matching",
    "perturb_policy",
]
