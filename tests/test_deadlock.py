"""The jaxlib 0.10 CPU deadlock (two independent LAPACK calls in one program) cannot hit jaxmail.

Each check runs in a subprocess with a timeout, so a hang fails the test instead of stalling the
suite. Measured before the kernels were chained (jaxlib 0.10.2, 2 cores): a jitted function with
two independent triangular solves from one LU hung within 20 calls with the concurrency-optimised
scheduler on; so 300 calls of each kernel below with that scheduler forced ON is a real test of
the structural protection (jaxmail/_linalg.py::after), independent of the XLA_FLAGS guard.
"""

import os
import subprocess
import sys
import textwrap

import pytest

from jaxmail import _xla_guard

_SCRIPT = textwrap.dedent(
    """
    import jaxmail as jm
    PATCH
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(0)
    B, S, A = 16, 32, (3, 2)
    def game():
        P = rng.dirichlet(np.ones(S), size=(S, *A))
        R = rng.uniform(-1, 1, size=(2, S, *A))
        return jm.MarkovGame(transition=P, reward=R, initial=np.full(S, 1 / S), discount=0.95)
    stack = lambda xs: jax.tree_util.tree_map(lambda *a: jnp.stack(a), *xs)
    games = stack([game() for _ in range(B)])
    pi = tuple(jnp.asarray(rng.dirichlet(np.ones(a), size=(B, S))) for a in A)
    ex = tuple(p[::-1] for p in pi)
    kernels = [
        jax.jit(jax.vmap(jm.nash_gap)),
        jax.jit(jax.vmap(jm.evaluate)),
        jax.jit(jax.vmap(jm.best_response_shift)),
        jax.jit(jax.vmap(jm.occupancy_error)),
        jax.jit(jax.vmap(jm.value_gap)),
    ]
    for f in kernels:
        args = (games, pi) if f in kernels[:2] else (games, pi, ex)
        for _ in range(300):
            jax.block_until_ready(f(*args))
    print("done")
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="the deadlock was seen on Linux CPUs")
def test_kernels_never_hang_with_the_concurrent_scheduler_forced_on():
    env = dict(os.environ, XLA_FLAGS=f"--{_xla_guard.FLAG}=true", JAX_PLATFORMS="cpu")
    script = _SCRIPT.replace("PATCH", "")  # (a test of this test: "jm._linalg.after = lambda x,
    # d: x" in place of PATCH makes the script hang within 90 s on the 2-core development machine)
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "done" in out.stdout


def test_guard_sets_the_flag_and_respects_the_user():
    code = "import os, jaxmail; print(os.environ.get('XLA_FLAGS', ''))"
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    flags = out.stdout.strip()
    if _xla_guard._jaxlib_version() in _xla_guard._KNOWN_JAXLIB:
        assert f"--{_xla_guard.FLAG}=false" in flags
    else:
        assert _xla_guard.FLAG not in flags
    env["XLA_FLAGS"] = f"--{_xla_guard.FLAG}=true"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.stdout.strip() == f"--{_xla_guard.FLAG}=true"
