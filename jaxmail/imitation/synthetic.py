"""Synthetic imitators: the expert perturbed at every state (the paper's Appendix E).

The paper's "BC policies" are not learned: each is the expert with noise of level ``eta`` at
every state. Two kinds:

- ``"dirichlet"`` (the paper's default): ``pi_i(.|s) = (1 - eta) piE_i(.|s) + eta u_i(s)`` with
  ``u_i(s) ~ Dirichlet(concentration)`` drawn independently per player and state; ``eta`` in
  ``[0, 1]``. Then ``||pi_i(.|s) - piE_i(.|s)||_1 = eta ||u_i(s) - piE_i(.|s)||_1 <= 2 eta``.
- ``"logit"``: ``pi_i(.|s) = softmax(log piE_i(.|s) + eta z_i(s))`` with ``z ~ N(0, I)``; ``eta``
  is the noise scale on the logits (zero-probability expert actions stay at probability ~0).

``eta`` may be traced: ``jax.vmap(perturb_policy, in_axes=(None, None, 0))(key, expert, etas)``
gives a whole noise sweep (with common random numbers) in one call.

Shapes: ``n`` players, ``S`` states, ``A_i`` actions of player ``i``.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxmail._arrays import is_concrete

Array = jax.Array
Policy = tuple[Array, ...]

_KINDS = ("dirichlet", "logit")


def perturb_policy(
    key: Array,
    policy: Sequence[Array],
    noise_level: float | Array,
    *,
    kind: str = "dirichlet",
    concentration: float | Array = 1.0,
) -> Policy:
    """The policy perturbed at every state with noise of level ``noise_level`` (``eta``).

    Args:
      key: PRNG key (consumed).
      policy: ``n`` arrays ``[S, A_i]``, usually the expert.
      noise_level: ``eta``: the mixture weight (``"dirichlet"``, in ``[0, 1]``) or the logit-noise
        scale (``"logit"``, ``>= 0``). May be an array traced under ``vmap``.
      kind: ``"dirichlet"`` or ``"logit"`` (module docstring).
      concentration: Dirichlet concentration of the noise (``"dirichlet"`` only).

    Returns:
      ``n`` arrays ``[S, A_i]``, rows on the simplex.

    Raises:
      ValueError: unknown ``kind``; a concrete ``noise_level`` outside its range.
    """
    if kind not in _KINDS:
        raise ValueError(f"kind: expected one of {_KINDS}, got {kind!r}")
    if is_concrete(noise_level):
        eta = np.asarray(noise_level)
        upper = 1.0 if kind == "dirichlet" else np.inf
        if np.any(eta < 0) or np.any(eta > upper):
            raise ValueError(
                f"noise_level: expected values in [0, {upper}] for kind={kind!r}, got {noise_level}"
            )
    keys = jax.random.split(key, len(policy))
    out = []
    for k, p in zip(keys, policy):
        p = jnp.asarray(p)
        eta = jnp.asarray(noise_level, p.dtype)
        if kind == "dirichlet":
            if isinstance(concentration, (int, float)) and concentration == 1.0:
                # Dirichlet(1) = normalised Exponential(1) draws; far cheaper to compile.
                draws = jax.random.exponential(k, p.shape, p.dtype)
                noise = draws / jnp.sum(draws, axis=-1, keepdims=True)
            else:
                alpha = jnp.broadcast_to(jnp.asarray(concentration, p.dtype), p.shape)
                noise = jax.random.dirichlet(k, alpha).astype(p.dtype)
            out.append((1.0 - eta) * p + eta * noise)
        else:
            logits = jnp.log(jnp.clip(p, jnp.finfo(p.dtype).tiny))
            z = jax.random.normal(k, p.shape, p.dtype)
            out.append(jax.nn.softmax(logits + eta * z, axis=-1))
    return tuple(out)
