"""Seeds sharded over devices: the results do not depend on the device count.

The CPU pretends to have 4 devices with ``XLA_FLAGS=--xla_force_host_platform_device_count=4``,
which must be set before JAX starts its backend, hence a subprocess (which keeps the XLA flags of
this process, jaxmail's deadlock guard included). There the seed axis of every chunk is split
over 4 devices (a ``Mesh`` named "seeds"); here it runs on 1. Each seed's computation is the same
single-example program whichever device runs it and however many seeds share the device, so the
numbers agree exactly: the test asks for byte-identical ``results.csv`` files. (Were XLA ever
to vectorise a per-device batch of 2 differently from a batch of 8, the float32 rows could
differ in the last bits; the fallback comparison below would then report it as allclose only.)
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

import jaxmail  # noqa: F401  (before any JAX computation: the XLA guard)
from jaxmail.experiments import dse_bound, results, runner, sharding

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
QUICK_N2 = {"players": [2]}  # dse-bound --quick with one player count: one compilation


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
    import json, sys
    sys.path[:0] = [{root!r}, {tests!r}]  # this checkout's jaxmail, not an installed one
    import jaxmail  # before any JAX work
    import jax
    import numpy as np
    import test_sharding as t
    from jaxmail.cli import main

    assert jax.device_count() == 4, jax.devices()
    out = t._toy(5)  # padded to 8 = 2 seeds per device
    np.savez(sys.argv[1], **out)
    sys.exit(main(["run", "dse-bound", "--quick", "--set", "players=[2]", "--out", sys.argv[2],
                   "--no-progress"]))
    """
)


@pytest.fixture(scope="module")
def four_devices(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sharded")
    script = tmp / "child.py"
    script.write_text(_CHILD.format(tests=TESTS_DIR, root=os.path.dirname(TESTS_DIR)))
    env = dict(os.environ)
    flags = env.get("XLA_FLAGS", "")
    env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count=4".strip()
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp / "toy.npz"), str(tmp / "dse")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return tmp


def test_toy_sharded_equals_one_device(four_devices):
    assert jax.device_count() == 1
    one = _toy(5)
    with np.load(four_devices / "toy.npz") as four:
        for name, value in one.items():
            np.testing.assert_array_equal(four[name], value, err_msg=name)


def test_experiment_sharded_equals_one_device(four_devices, tmp_path):
    import json

    record = json.loads((four_devices / "dse" / "config.json").read_text())
    assert len(record["devices"]) == 4
    config = dse_bound.DSEBoundConfig.quick(**QUICK_N2)
    assert record["config"] == config.to_dict()
    runner.run(dse_bound.EXPERIMENT, config, tmp_path, progress=False)
    four_csv = (four_devices / "dse" / "results.csv").read_bytes()
    one_csv = (tmp_path / "results.csv").read_bytes()
    if four_csv != one_csv:  # report how far apart they are before failing
        four = results.read_table(four_devices / "dse" / "results.csv")
        one = results.read_table(tmp_path / "results.csv")
        for name in one:
            if one[name].dtype.kind == "f":
                np.testing.assert_allclose(four[name], one[name], rtol=1e-5, atol=1e-6)
        pytest.fail("sharded results agree to float32 tolerance but are not byte-identical")
    assert (four_devices / "dse" / "summary.md").read_bytes() == (
        tmp_path / "summary.md"
    ).read_bytes()
