"""Guard against a CPU scheduling deadlock in jaxlib 0.10.

On a small CPU (seen on 2 cores), jaxlib 0.10's concurrency-optimised scheduler can run two
independent LAPACK-backed linear-algebra calls of one compiled program at the same time, and the
two XLA worker threads then wait on each other forever. jaxmail's own kernels chain every
factorisation and solve through a data dependency so that they never run side by side, but a
user's program may hold two jaxmail calls at once (``jax.jit(lambda: (f(a), g(b)))``). So, when
jaxmail is imported before JAX has started its CPU backend, it turns that scheduler off through
``XLA_FLAGS`` unless the user has set the flag themselves (either value is respected).

The flag is only known to exist in jaxlib 0.10.x; for other versions nothing is changed (an
unknown flag in ``XLA_FLAGS`` aborts XLA), and the structural chaining is the protection.
"""

from __future__ import annotations

import os
import warnings

FLAG = "xla_cpu_enable_concurrency_optimized_scheduler"
_KNOWN_JAXLIB = ((0, 10),)


def _jaxlib_version() -> tuple[int, ...] | None:
    try:
        from importlib.metadata import version

        parts = version("jaxlib").split(".")[:2]
        return tuple(int(p) for p in parts)
    except Exception:  # pragma: no cover - metadata missing
        return None


def _backend_started() -> bool:
    try:
        from jax._src import xla_bridge

        return bool(getattr(xla_bridge, "_backends", {}))
    except Exception:  # pragma: no cover - private API moved
        return False


def install() -> str:
    """Adds ``--xla_cpu_enable_concurrency_optimized_scheduler=false`` where it is safe.

    Returns:
        What was done: ``"set"``, ``"user"`` (the user already chose a value), ``"unknown-jaxlib"``
        or ``"too-late"`` (JAX's backend had already started; a warning says how to fix it).
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if FLAG in flags:
        return "user"
    if _jaxlib_version() not in _KNOWN_JAXLIB:
        return "unknown-jaxlib"
    if _backend_started():
        warnings.warn(
            "jaxmail was imported after JAX started its backend, so it could not set "
            f"XLA_FLAGS=--{FLAG}=false. On a CPU, programs that hold two independent linear "
            "solves may then hang (jaxlib 0.10). Import jaxmail before running any JAX "
            "computation, or set the flag in XLA_FLAGS yourself.",
            RuntimeWarning,
            stacklevel=3,
        )
        return "too-late"
    os.environ["XLA_FLAGS"] = f"{flags} --{FLAG}=false".strip()
    return "set"
