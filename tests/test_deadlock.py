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
        jax.jit(jax.vmap(lambda g, p, e: jm.value_gap(g, p, expert=e))),
        jax.jit(jax.vmap(lambda g, p, e: jm.metrics.imitation_report(g, p, expert=e))),
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


_JAX_FIRST = textwrap.dedent(
    """
    import warnings
    import jax, jax.numpy as jnp, numpy as np
    jax.block_until_ready(jnp.ones(2) + 1)  # JAX's CPU backend starts before jaxmail is imported
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the import-time warning
        import jaxmail as jm
    jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(0)
    S, A = 4, (2, 2)
    P = rng.dirichlet(np.ones(S), size=(S, *A))
    R = rng.uniform(-1, 1, size=(2, S, *A))
    game = jm.MarkovGame(transition=P, reward=R, initial=np.full(S, 1 / S), discount=0.9)
    logits = tuple(jnp.asarray(rng.normal(size=(S, a))) for a in A)

    def value(lg, g):
        return jm.expected_values(g, jm.softmax_policy(lg))[0]

    @jax.jit
    def two_gradients(lg, g1, g2):  # two independent backward solves in one program
        return jax.grad(value)(lg, g1), jax.grad(value)(lg, g2)

    other = game.replace(discount=0.5)
    for _ in range(50):
        jax.block_until_ready(two_gradients(logits, game, other))
    print("done")
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="the deadlock was seen on Linux CPUs")
def test_jax_before_jaxmail_raises_a_clear_error_instead_of_hanging():
    # The composition that hung for 240 s in a client (issue: two jax.grad of a kernel in one
    # jit, JAX started before jaxmail so the XLA flag could not be set). It must finish or raise
    # the clear error, never hang: the subprocess timeout turns a hang into a failure.
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["JAX_PLATFORMS"] = "cpu"
    out = subprocess.run(
        [sys.executable, "-c", _JAX_FIRST], env=env, capture_output=True, text=True, timeout=120
    )
    if _xla_guard._jaxlib_version() in _xla_guard._KNOWN_JAXLIB:
        assert out.returncode != 0 and "done" not in out.stdout
        assert "SchedulerError" in out.stderr, out.stderr[-2000:]
        # ... and it says what to set.
        assert f"XLA_FLAGS=--{_xla_guard.FLAG}=false" in out.stderr
    else:  # no such scheduler: nothing to guard, it simply runs
        assert out.returncode == 0 and "done" in out.stdout, out.stderr[-2000:]
    # Following the advice (the flag set before Python starts) makes the same program run.
    env["XLA_FLAGS"] = f"--{_xla_guard.FLAG}=false"
    out = subprocess.run(
        [sys.executable, "-c", _JAX_FIRST], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and "done" in out.stdout, out.stderr[-2000:]
