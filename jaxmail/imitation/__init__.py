"""Imitation learners and their errors.

- :class:`Fit`: what every learner returns, the policy and its training curve.
- :func:`behavior_cloning`: tabular BC in closed form (counting with smoothing and a prior).
- :func:`gradient_behavior_cloning`: tabular BC by optax on logits (entropy, L2 and
  label-smoothing regularisers).
- :func:`measure_matching`: the product policy whose exact occupancy measure (state, joint
  state-action or per-player) is closest to a target in a chosen divergence, entropy-regularised.
- :func:`ma_gail`: tabular MA-GAIL with centralised, decentralised or zero-sum discriminators and
  exact policy gradients through the known model.
- :func:`perturb_policy`: synthetic imitators, the expert with noise at every state (the paper's
  Appendix E).
- :func:`estimate_bc_error`: eps_BC from expert demonstrations with a bootstrap interval.

Every learner takes one game and one dataset (or expert policy), returns a :class:`Fit` and is
traceable: ``jax.vmap`` it over keys, dataset sizes (:meth:`jaxmail.data.Dataset.truncate`) and
regularisation strengths.
"""

from jaxmail.imitation.base import Fit
from jaxmail.imitation.bc import (
    DEFAULT_OPTIMIZER,
    bc_loss,
    behavior_cloning,
    gradient_behavior_cloning,
)
from jaxmail.imitation.errors import BCErrorEstimate, estimate_bc_error
from jaxmail.imitation.gail import discriminator_loss, ma_gail
from jaxmail.imitation.matching import divergence, measure_matching
from jaxmail.imitation.synthetic import perturb_policy

__all__ = [
    "DEFAULT_OPTIMIZER",
    "BCErrorEstimate",
    "Fit",
    "bc_loss",
    "behavior_cloning",
    "discriminator_loss",
    "divergence",
    "estimate_bc_error",
    "gradient_behavior_cloning",
    "ma_gail",
    "measure_matching",
    "perturb_policy",
]
