"""Small array helpers shared by the package's modules (their one home).

Private module: the names are the package's internal interface, not the public API.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x: Any) -> bool:
    """Whether ``x`` holds values now (not a tracer inside ``jit``/``vmap``/``grad``)."""
    return not isinstance(x, jax.core.Tracer)


def default_float_dtype() -> Any:
    """JAX's default float: float32, or float64 under ``jax_enable_x64``."""
    return jnp.result_type(float)


def host_array(x: Any) -> np.ndarray:
    """``x`` as a NumPy array NumPy's reductions handle (bfloat16 widened exactly to float32)."""
    x = np.asarray(x)
    if x.dtype.kind == "V" and jnp.issubdtype(x.dtype, jnp.floating):
        return x.astype(np.float32)
    return x
