"""Shared test setup.

jaxmail is imported first so that its XLA guard (see jaxmail/_xla_guard.py) is in place before
any test starts JAX's CPU backend; the suite must never hang (pytest-timeout also turns a hang
into a failure, see pyproject.toml).

Two suites (README, "Run the tests"):

* ``pytest``: the quick suite, every test not marked ``slow`` (a few minutes on 2 CPU cores). It
  keeps at least one fast test of every module and every check against the NumPy reference or
  a brute force at tiny sizes, so a wrong answer in any kernel still fails it.
* ``pytest --runslow``: everything, the slow tests included (end-to-end experiment runs, the
  notebooks, more shapes, more hypothesis examples). This is the command CI runs (``.ci/run``).

``pytest -m slow`` (or any other ``-m`` expression) selects by marker as usual and overrides the
default deselection, so ``pytest -m slow`` runs only the slow tests.

Both run in parallel worker processes (pytest-xdist; ``-n auto --dist loadfile`` in
pyproject.toml): one per CPU core this process may use, at most :data:`MAX_WORKERS`, each
running whole test modules. Most of the suite's time is XLA compiling, which keeps one core
busy for much of each program, so two workers on two cores take about a third off the wall
time. ``-n 0`` runs everything in
this process (for ``--pdb``, or to debug one test); ``-n N`` picks the number.

The processes of one run share a persistent XLA compilation cache in a fresh temporary directory
(:func:`pytest_configure`; removed at the end): a kernel that tests in both workers compile, at
the same shapes, is compiled once. A cached program is the executable XLA built for the same
computation and flags, so the suite tests the same programs; nothing is kept between runs.
"""

import os
import shutil
import tempfile

import jax
import pytest
from hypothesis import HealthCheck, settings

import jaxmail  # noqa: F401  (before any JAX computation; importing jax alone starts nothing)
from jaxmail import _jobs

os.environ.setdefault("JAXMAIL_COMPILE_CACHE", "off")  # the CLI's cache: never ~/.cache in tests

# Hypothesis: few examples in the quick suite, more under --runslow (pytest_configure picks the
# profile before any test module is imported, so module-level ``settings(...)`` objects that do
# not set ``max_examples`` inherit it). Every property still runs in the quick suite.
QUICK_EXAMPLES = 10
SLOW_EXAMPLES = 25
for _name, _examples in (("jaxmail", QUICK_EXAMPLES), ("jaxmail-slow", SLOW_EXAMPLES)):
    settings.register_profile(
        _name,
        deadline=None,  # first calls compile
        max_examples=_examples,
        suppress_health_check=[HealthCheck.too_slow],
    )
settings.load_profile("jaxmail")


# More workers than this each import JAX and compile the kernels their modules share (a module
# is the unit of distribution) for little gain: the suite has a few dozen modules.
MAX_WORKERS = 4


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: the CPU cores this process may run on (its affinity, which a container's CPU
    limit sets, not the host's count), at most :data:`MAX_WORKERS`."""
    return max(1, min(_jobs.usable_cores(), MAX_WORKERS))


def pytest_addoption(parser):
    parser.addoption(
        "--runslow",
        action="store_true",
        default=False,
        help="also run the tests marked slow (the full suite CI runs; see README.md)",
    )


# The run's shared compilation cache: made by the controller (or the only process), inherited by
# the workers it starts through this variable.
TEST_CACHE_ENV = "JAXMAIL_TEST_XLA_CACHE"


def pytest_configure(config):
    settings.load_profile("jaxmail-slow" if config.getoption("--runslow") else "jaxmail")
    if not hasattr(config, "workerinput"):  # not an xdist worker: this run's own directory
        config.jaxmail_test_cache = tempfile.mkdtemp(prefix="jaxmail-test-xla-")
        os.environ[TEST_CACHE_ENV] = config.jaxmail_test_cache
    jax.config.update("jax_compilation_cache_dir", os.environ[TEST_CACHE_ENV])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def pytest_unconfigure(config):
    path = getattr(config, "jaxmail_test_cache", None)
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)
        os.environ.pop(TEST_CACHE_ENV, None)


# Module fixtures that run a whole experiment (``--quick``) or ``jaxmail reproduce``: every test
# that uses one is slow (one fixture costs a full experiment's compilation).
SLOW_FIXTURES = frozenset({"quick_run", "quick", "reproduced"})


def pytest_collection_modifyitems(config, items):
    """Marks the notebooks slow (each re-runs batched experiments that the test modules check
    piece by piece) and every test that uses one of :data:`SLOW_FIXTURES`; deselects the slow
    tests unless ``--runslow`` or an explicit ``-m`` expression is given."""
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)
        elif SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    if config.getoption("--runslow") or config.getoption("markexpr"):
        return
    slow = [item for item in items if item.get_closest_marker("slow") is not None]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if item.get_closest_marker("slow") is None]


@pytest.fixture
def x64():
    """Runs the test with ``jax_enable_x64`` on (float64 games and policies)."""
    with jax.enable_x64(True):
        yield
