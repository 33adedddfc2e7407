"""Shared test setup.

jaxmail is imported first so that its XLA guard (see jaxmail/_xla_guard.py) is in place before
any test starts JAX's CPU backend; the suite must never hang (pytest-timeout also turns a hang
into a failure, see pyproject.toml).
"""

import os

import jax
import pytest
from hypothesis import HealthCheck, settings

import jaxmail  # noqa: F401  (before any JAX computation; importing jax alone starts nothing)

os.environ.setdefault("JAXMAIL_COMPILE_CACHE", "off")  # the CLI's cache: never ~/.cache in tests

settings.register_profile(
    "jaxmail",
    deadline=None,  # first calls compile
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("jaxmail")


@pytest.fixture
def x64():
    """Runs the test with ``jax_enable_x64`` on (float64 games and policies)."""
    with jax.enable_x64(True):
        yield
