"""The ``jaxmail`` command's persistent XLA compilation cache.

Compiling a kernel for one shape costs about 0.1-2 s on a CPU, and a ``jaxmail reproduce`` run
compiles a few hundred programs; without a persistent cache, every process pays that again.
The command (``jaxmail run``, ``jaxmail reproduce``) therefore turns on JAX's own persistent
compilation cache before it computes anything: compiled programs are written to a directory and
read back by the next process that compiles the same program (same computation, shapes,
devices, jaxlib and XLA flags). A cached program is the executable XLA built, so the numbers
are the same with and without the cache. Beside it, :mod:`jaxmail._program_cache` keeps the
experiments' traced per-seed programs (``DIR/jaxmail-programs``), so that the next process skips
tracing them as well.

Importing the library does NOT turn it on: only :func:`configure`, which the command calls.

Where (first match wins):

1. ``--no-compile-cache``: no persistent cache for this run (even one that JAX's own settings
   name); ``--compile-cache DIR``: the cache is ``DIR``.
2. JAX's own settings: a user who set ``JAX_COMPILATION_CACHE_DIR`` (or
   ``jax_compilation_cache_dir``, or turned ``jax_enable_compilation_cache`` off) keeps them, and
   jaxmail changes no cache setting.
3. The environment variable ``JAXMAIL_COMPILE_CACHE``: a directory, or ``0`` / ``off`` /
   ``false`` / ``no`` for no cache.
4. The default: ``$XDG_CACHE_HOME/jaxmail/xla`` (``~/.cache/jaxmail/xla`` when
   ``XDG_CACHE_HOME`` is unset or not absolute).

jaxmail has every program written to the cache, however short its compilation
(``jax_persistent_cache_min_compile_time_secs = 0``; JAX's default, 1 s, would skip most of
jaxmail's kernels), unless the user set that threshold in the environment; JAX itself skips
programs with host callbacks (``jax.debug.print``, checked mode). A directory that
cannot be created or written gives one warning line on stderr, and the run continues without a
cache. The cache is never pruned by jaxmail; delete the directory to reclaim its space.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Mapping
from typing import NamedTuple

from jaxmail import _program_cache

ENV = "JAXMAIL_COMPILE_CACHE"
OFF_VALUES = ("0", "off", "false", "no")
# JAX's own settings, as environment variables (JAX reads them when it is imported).
_JAX_DIR_ENV = "JAX_COMPILATION_CACHE_DIR"
_JAX_MIN_TIME_ENV = "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"


class CacheStatus(NamedTuple):
    """What :func:`configure` did.

    Attributes:
      state: ``"on"`` (jaxmail turned the cache on at ``path``), ``"off"`` (turned off by the
        flag or ``JAXMAIL_COMPILE_CACHE``), ``"jax"`` (JAX's own settings were kept; ``path`` is
        their directory or ``None``), or ``"unusable"`` (the directory could not be used; no
        cache, ``reason`` says why).
      path: the cache directory, or ``None``.
      reason: why the directory is unusable, else ``""``.
    """

    state: str
    path: str | None
    reason: str = ""


def default_dir(environ: Mapping[str, str] | None = None) -> str:
    """``$XDG_CACHE_HOME/jaxmail/xla``, or ``~/.cache/jaxmail/xla`` (the XDG base directory rule:
    a relative ``XDG_CACHE_HOME`` is ignored)."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jaxmail", "xla")


def _jax_settings_in_use() -> str | None:
    """``"dir"`` if JAX's own cache directory is set, ``"disabled"`` if JAX's cache is turned
    off, else ``None``."""
    import jax

    if jax.config.jax_compilation_cache_dir:
        return "dir"
    if not jax.config.jax_enable_compilation_cache:
        return "disabled"
    return None


def check_dir(path: str) -> str:
    """``""`` if ``path`` is, or can be made, a directory that this process can write (checked
    by creating and removing a file in it), else the reason it cannot."""
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".jaxmail-probe-", dir=path)
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        return e.strerror or str(e)
    return ""


def configure(
    directory: str | None = None,
    *,
    disable: bool = False,
    environ: Mapping[str, str] | None = None,
) -> CacheStatus:
    """Turns JAX's persistent compilation cache on or off for this process (module docstring).

    Call it before the first compilation. It changes JAX's global configuration
    (``jax_compilation_cache_dir``, ``jax_persistent_cache_min_compile_time_secs``,
    ``jax_enable_compilation_cache``), which is why only the command calls it.

    Args:
      directory: ``--compile-cache DIR``: the cache directory, over every other setting.
      disable: ``--no-compile-cache``: no persistent cache at all.
      environ: the environment to read (default ``os.environ``).

    Returns:
      A :class:`CacheStatus`. An unusable directory is not an error: the status says
      ``"unusable"`` and one warning line went to stderr.
    """
    import jax

    environ = os.environ if environ is None else environ
    _program_cache.set_directory(None)
    if disable:
        jax.config.update("jax_enable_compilation_cache", False)
        return CacheStatus("off", None)
    if directory is None:
        jax_settings = _jax_settings_in_use()
        if jax_settings is not None:
            return CacheStatus("jax", jax.config.jax_compilation_cache_dir or None)
        value = environ.get(ENV, "").strip()
        if value.lower() in OFF_VALUES:
            return CacheStatus("off", None)
        directory = value or default_dir(environ)
    path = os.path.abspath(os.path.expanduser(directory))
    reason = check_dir(path)
    if reason:
        print(
            f"jaxmail: warning: compilation cache {path!r} is unusable ({reason}); running "
            f"without it (set {ENV}=DIR or pass --compile-cache DIR to choose another, "
            "--no-compile-cache to silence this)",
            file=sys.stderr,
        )
        return CacheStatus("unusable", None, reason)
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", path)
    _program_cache.set_directory(path)
    if _JAX_MIN_TIME_ENV not in environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return CacheStatus("on", path)
