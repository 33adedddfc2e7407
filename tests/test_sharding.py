"""Seeds over devices: the results do not depend on the device count.

The CPU pretends to have 4 devices with ``XLA_FLAGS=--xla_force_host_platform_device_count=4``,
which must be set before JAX starts its backend, hence a subprocess (which keeps the XLA flags of
this process, jaxmail's deadlock guard included). There the runner hands 4 chunks to each call
and each device runs one chunk; here one device runs them one after the other. Every device runs
the same single-device program, so the numbers agree exactly: the tests ask for byte-identical
``results.csv`` files.

The slow test is the one that an SPMD program (``jit`` with the seed axis sharded over a mesh,
the previous design, or ``shard_map``) fails: state-only measure matching in ``counterexamples``
drifts along a flat set of optima, driven by rounding, so any change in the compiled code shows;
with 20 adam steps seed 0's learner NashGap was 14.211544 on one device and 14.211604 from the
4-partition program.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmail  # noqa: F401  (before any JAX computation: the XLA guard)
from jaxmail.experiments import results, runner, sharding

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


def _draw(key, scale, *, width):
    """A toy per-seed function: random draws, a reduction and an int."""
    x = scale * jax.random.normal(key, (width,))
    return {"x": x, "total": jnp.sum(jnp.sin(x)), "argmax": jnp.argmax(x)}


def _toy(num_seeds):
    keys = runner.seed_keys(0, np.arange(num_seeds))
    return sharding.map_seeds(_draw, keys, 1.5, width=3)


def test_map_seeds_shapes_and_cache():
    out = _toy(5)
    assert out["x"].shape == (5, 3) and out["total"].shape == (5,)
    assert isinstance(out["x"], np.ndarray)
    before = sharding._compiled.cache_info().hits
    again = _toy(5)
    assert sharding._compiled.cache_info().hits == before + 1  # no new compilation
    np.testing.assert_array_equal(again["x"], out["x"])
    # each seed is computed from its own key alone
    single = sharding.map_seeds(_draw, runner.seed_keys(0, np.array([3])), 1.5, width=3)
    np.testing.assert_array_equal(single["x"][0], out["x"][3])
    mesh = sharding.seed_mesh()
    assert mesh.axis_names == ("seeds",) and mesh.devices.size == jax.device_count()
    with pytest.raises(ValueError, match="at least one key"):
        sharding.map_seeds(_draw, runner.seed_keys(0, np.arange(0)), 1.5, width=3)


_CHILD = textwrap.dedent(
    """
    import sys
    sys.path[:0] = [{root!r}, {tests!r}]  # this checkout's jaxmail, not an installed one
    import jaxmail  # before any JAX work
    import jax
    import numpy as np
    import test_sharding as t
    from jaxmail.cli import main

    assert jax.device_count() == 4, jax.devices()
    out = t._toy(5)  # blocks of 2 seeds, padded to 8: 2 seeds per device
    np.savez(sys.argv[1], **out)
    for argv in sys.argv[2:]:
        code = main(["run", *argv.split(), "--no-progress"])
        if code:
            sys.exit(code)
    """
)

# dse-bound --quick with one player count: one compilation.
DSE_ARGV = ["dse-bound", "--quick", "--set", "players=[2]"]
# 4 chunks of 4 seeds: one chunk per device.
MATCHING_ARGV = [
    "counterexamples",
    "--quick",
    "--seeds",
    "16",
    "--set",
    "chunk_size=4",
    "--set",
    "learners=state-matching",
    "--set",
    "matching_steps=20",
]


def _four_devices(tmp, runs):
    script = tmp / "child.py"
    script.write_text(_CHILD.format(tests=TESTS_DIR, root=os.path.dirname(TESTS_DIR)))
    env = dict(os.environ)
    flags = env.get("XLA_FLAGS", "")
    env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count=4".strip()
    env["JAX_PLATFORMS"] = "cpu"
    argv = [" ".join([*run, "--out", str(tmp / name)]) for name, run in runs]
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp / "toy.npz"), *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return tmp


@pytest.fixture(scope="module")
def four_devices(tmp_path_factory):
    return _four_devices(tmp_path_factory.mktemp("sharded"), [])


@pytest.fixture(scope="module")
def four_devices_experiments(tmp_path_factory):
    runs = [("dse", DSE_ARGV), ("matching", MATCHING_ARGV)]
    return _four_devices(tmp_path_factory.mktemp("sharded_experiments"), runs)


def test_toy_sharded_equals_one_device(four_devices):
    assert jax.device_count() == 1
    one = _toy(5)
    with np.load(four_devices / "toy.npz") as four:
        for name, value in one.items():
            np.testing.assert_array_equal(four[name], value, err_msg=name)


def test_map_seeds_block_size():
    """Blocks of a fixed size: the same numbers whatever the block, here on one device."""
    keys = runner.seed_keys(0, np.arange(5))
    whole = sharding.map_seeds(_draw, keys, 1.5, width=3)
    with sharding.seeds_per_device(2):  # blocks [0, 1], [2, 3], [4, 4(pad)]
        blocks = sharding.map_seeds(_draw, keys, 1.5, width=3)
    for name in whole:
        np.testing.assert_array_equal(blocks[name], whole[name], err_msg=name)
    with pytest.raises(ValueError, match="block"):
        with sharding.seeds_per_device(0):
            pass


def _same_run(four_dir, argv, tmp_path):
    from jaxmail.cli import main

    assert main(["run", *argv, "--out", str(tmp_path), "--no-progress"]) == 0
    record = json.loads((four_dir / "config.json").read_text())
    assert len(record["devices"]) == record["device_count"] == 4
    assert record["mesh"] == {"axis": "seeds", "shape": [4]}
    one = json.loads((tmp_path / "config.json").read_text())
    assert one["device_count"] == 1 and one["config"] == record["config"]
    four_csv = (four_dir / "results.csv").read_bytes()
    one_csv = (tmp_path / "results.csv").read_bytes()
    if four_csv != one_csv:  # report how far apart they are before failing
        four = results.read_table(four_dir / "results.csv")
        one = results.read_table(tmp_path / "results.csv")
        worst = {
            name: float(np.nanmax(np.abs(four[name] - one[name])))
            for name in one
            if one[name].dtype.kind == "f"
        }
        pytest.fail(f"4 devices and 1 give different rows; largest differences {worst}")
    assert (four_dir / "summary.md").read_bytes() == (tmp_path / "summary.md").read_bytes()


@pytest.mark.slow
@pytest.mark.timeout(1800)  # 4 compilations in the child, on a loaded machine
def test_experiment_sharded_equals_one_device(four_devices_experiments, tmp_path):
    _same_run(four_devices_experiments / "dse", DSE_ARGV, tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # 4 compilations in the child, on a loaded machine
def test_flat_learner_sharded_equals_one_device(four_devices_experiments, tmp_path):
    _same_run(four_devices_experiments / "matching", MATCHING_ARGV, tmp_path)
