"""Traced per-seed programs kept on disk (jaxmail/_program_cache.py).

A second process must read the program back instead of tracing it and get the same bytes; a key
that sees a changed source, shape or static argument must miss; a damaged file must be replaced;
and what cannot be exported (a custom pytree in the output, a function outside the package)
must run as before.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmail as jm
from jaxmail import _program_cache
from jaxmail.experiments import runner, sharding
from jaxmail.imitation import synthetic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POLICY = (jnp.full((3, 2), 0.5), jnp.asarray([[0.2, 0.3, 0.5]] * 3))


@pytest.fixture
def programs(tmp_path):
    """A fresh program directory for this process; restores the previous one after."""
    before = _program_cache.directory()
    _program_cache._loaded.clear()
    _program_cache.set_directory(str(tmp_path))
    yield tmp_path / "jaxmail-programs"
    _program_cache._loaded.clear()
    _program_cache._directory = before


def _perturbed(num_seeds, level=0.3, kind="dirichlet"):
    keys = runner.seed_keys(0, np.arange(num_seeds))
    return sharding.map_seeds(synthetic.perturb_policy, keys, POLICY, level, kind=kind)


def _files(path):
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def test_written_once_and_same_numbers(programs):
    out = _perturbed(4)
    written = _files(programs)
    assert len(written) == 1 and written[0].endswith(".jaxexport")
    # The plain compiled program (no export) gives the same bytes.
    keys = runner.seed_keys(0, np.arange(4))
    plain = sharding._compiled(
        synthetic.perturb_policy, (("kind", "dirichlet"),), 2, str(jax.random.key_impl(keys))
    )(np.asarray(jax.random.key_data(keys)), POLICY, np.asarray(0.3, np.float32))
    for a, b in zip(out, plain):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
    # Another static argument, another shape: other programs; the same call: none new.
    _perturbed(4, kind="logit")
    _perturbed(5)
    _perturbed(4)
    assert len(_files(programs)) == 3


def test_read_back_without_tracing(programs, monkeypatch):
    first = _perturbed(3)
    assert len(_files(programs)) == 1
    _program_cache._loaded.clear()  # as a new process: only the file is left

    traced = []
    real = _program_cache._export
    monkeypatch.setattr(_program_cache, "_export", lambda *a: traced.append(1) or real(*a))
    again = _perturbed(3)
    assert traced == []  # read back from the file, not traced again
    for a, b in zip(first, again):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def test_source_change_misses(programs, monkeypatch):
    _perturbed(2)
    assert len(_files(programs)) == 1
    _program_cache._loaded.clear()
    monkeypatch.setattr(_program_cache, "source_digest", lambda: "edited")
    _perturbed(2)
    assert len(_files(programs)) == 2


def test_damaged_file_is_replaced(programs):
    first = _perturbed(2)
    (path,) = [programs / name for name in _files(programs)]
    path.write_bytes(b"not an export")
    _program_cache._loaded.clear()
    again = _perturbed(2)
    assert path.read_bytes() != b"not an export"
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)


def test_not_exported_runs_as_before(programs):
    # A custom pytree (MarkovGame) in the output: jax.export cannot serialise its tree.
    keys = runner.seed_keys(0, np.arange(2))
    games = sharding.map_seeds(
        jm.games.random_game, keys, num_states=3, num_actions=(2, 2), discount=0.9
    )
    assert games.reward.shape[0] == 2 and _files(programs) == []
    # A function outside the package is never exported.
    out = sharding.map_seeds(lambda key: jax.random.normal(key, (2,)), keys)
    assert out.shape == (2, 2) and _files(programs) == []


@pytest.mark.slow  # two child processes; quick: test_read_back_without_tracing (in-process)
def test_second_process_reads_it_back(tmp_path):
    """Two processes: the second traces nothing of the per-seed program and gets the same
    bytes."""
    child = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {ROOT!r})
        import numpy as np, jax, jax.numpy as jnp
        import jaxmail
        from jaxmail import _program_cache
        from jaxmail.experiments import runner, sharding
        from jaxmail.imitation import synthetic

        traced = []
        real = synthetic.perturb_policy
        def spy(*args, **kwargs):
            traced.append(1)
            return real(*args, **kwargs)
        spy.__module__, spy.__qualname__ = real.__module__, real.__qualname__
        _program_cache.set_directory(sys.argv[1])
        policy = (jnp.full((3, 2), 0.5), jnp.asarray([[0.2, 0.3, 0.5]] * 3))
        out = sharding.map_seeds(spy, runner.seed_keys(0, np.arange(3)), policy, 0.3)
        np.savez(sys.argv[2], *out)
        print("traced", len(traced))
        """
    )
    script = tmp_path / "child.py"
    script.write_text(child)
    runs = []
    for name in ("cold", "warm"):
        proc = subprocess.run(
            [sys.executable, str(script), str(tmp_path / "cache"), str(tmp_path / f"{name}.npz")],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        runs.append(proc.stdout.split()[-1])
    assert runs == ["1", "0"]  # traced once (vmap traces the function once), then read back
    cold, warm = np.load(tmp_path / "cold.npz"), np.load(tmp_path / "warm.npz")
    for name in cold.files:
        assert cold[name].tobytes() == warm[name].tobytes()
