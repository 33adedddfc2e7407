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

When JAX had already started its backend (a JAX computation ran before ``import jaxmail``),
the flag can no longer take effect, and jaxmail cannot chain what a user composes (two
``jax.grad`` of jaxmail kernels in one ``jit`` hold independent backward solves). Rather than
risk a silent hang, the first trace of a jaxmail linear solve on the CPU then raises
:class:`SchedulerError` saying what to set (:func:`check`, called by ``_linalg.factorize``).
"""

from __future__ import annotations

import os
import warnings

FLAG = "xla_cpu_enable_concurrency_optimized_scheduler"
_KNOWN_JAXLIB = ((0, 10),)

_status: str | None = None  # what install() did, once it has run


class SchedulerError(RuntimeError):
    """jaxmail ran on a CPU backend that may hang (jaxlib 0.10, the scheduler flag not set)."""


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
        or ``"too-late"`` (JAX's backend had already started; a warning says how to fix it, and
        :func:`check` will refuse to trace solves on the CPU).
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if FLAG in flags:
        return _record("user")
    if _jaxlib_version() not in _KNOWN_JAXLIB:
        return _record("unknown-jaxlib")
    if _backend_started():
        warnings.warn(
            "jaxmail was imported after JAX started its backend, so it could not set "
            f"XLA_FLAGS=--{FLAG}=false. On a CPU, programs that hold two independent linear "
            "solves may then hang (jaxlib 0.10), so jaxmail's solves will raise SchedulerError "
            "on the CPU. Import jaxmail before running any JAX computation, or set the flag in "
            "XLA_FLAGS yourself before Python starts.",
            RuntimeWarning,
            stacklevel=3,
        )
        return _record("too-late")
    os.environ["XLA_FLAGS"] = f"{flags} --{FLAG}=false".strip()
    return _record("set")


def _record(status: str) -> str:
    global _status
    _status = status
    return status


def check() -> None:
    """Raises :class:`SchedulerError` if jaxmail may hang here; called when a solve is traced.

    That is: :func:`install` found JAX's backend already started (so the flag is not in
    effect), on a jaxlib known to have the scheduler, and JAX computes on the CPU. Costs one
    comparison per trace, nothing per call of a compiled function.

    Raises:
      SchedulerError: saying which flag to set, and where.
    """
    if _status != "too-late":
        return
    import jax

    if jax.default_backend() != "cpu":
        return
    raise SchedulerError(
        "JAX started its CPU backend before `import jaxmail`, so jaxmail could not set "
        f"XLA_FLAGS=--{FLAG}=false. With jaxlib 0.10 on a CPU, a compiled program holding two "
        "independent linear solves (for example two jax.grad of jaxmail kernels in one jit) "
        "can hang forever, so jaxmail refuses to run. Fix: set the environment variable "
        f"XLA_FLAGS=--{FLAG}=false before Python starts, or import jaxmail before running any "
        f"JAX computation. (XLA_FLAGS=--{FLAG}=true keeps the scheduler and accepts the risk.)"
    )
