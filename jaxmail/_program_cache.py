"""Traced experiment programs kept on disk, so that a second run skips tracing them.

The persistent compilation cache (:mod:`jaxmail._compile_cache`) saves XLA's backend
compilation, but every process still traces and lowers each program before it can look the
compiled executable up, and for an experiment's per-seed program (thousands of primitives, with
nested loops) tracing and lowering cost about as much as the computation of a ``--quick`` run.
This module saves that too: :func:`program` exports the traced program with :mod:`jax.export`
(StableHLO, no pickle) into a directory beside the compilation cache, and the next process reads
it back instead of tracing.

The program is ALWAYS run through its export, with or without a directory (the export is what
tracing produces anyway), so that the numbers are the same whether the program was traced in
this process or read back.

What a file is valid for is in its name: a SHA-256 over the source of every module of the
``jaxmail`` package, the versions of jaxmail, JAX and jaxlib, JAX's trace-time configuration
(``jax_enable_x64`` among it), the platform, the per-seed function's module and name, its static
arguments, the PRNG implementation and the shapes, dtypes and tree structure of the arguments.
Editing any jaxmail source file therefore misses every old file. What the key cannot see is a
jaxmail function replaced at run time (monkeypatching) while the directory is on: don't.

Only functions of the ``jaxmail`` package are exported (a user's own per-seed function is traced
as before), and only where :mod:`jax.export` can serialise the program; anything else (a custom
pytree in the output, an effect, a custom call it does not know) falls back to the plain
compiled function, silently, because that is what ran before. A file that cannot be read back
is replaced; one that cannot be written is skipped.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import hashlib
import os
import tempfile
import threading
from collections.abc import Callable, Hashable
from typing import Any

import jax
import numpy as np

_SUBDIR = "jaxmail-programs"
_SUFFIX = ".jaxexport"

_directory: str | None = None
_lock = threading.Lock()
# key -> program, for the process's later chunks; the newest _MAX_LOADED, as map_seeds' own cache.
_loaded: collections.OrderedDict[str, Callable] = collections.OrderedDict()
_MAX_LOADED = 64


def set_directory(cache_dir: str | None) -> str | None:
    """Keeps traced programs under ``cache_dir`` (the compilation cache's directory), or nowhere.

    Returns the programs' own directory (``cache_dir/jaxmail-programs``), or ``None``.
    """
    global _directory
    _directory = None if cache_dir is None else os.path.join(cache_dir, _SUBDIR)
    return _directory


def directory() -> str | None:
    """Where traced programs are kept in this process, or ``None``."""
    return _directory


@functools.lru_cache(maxsize=1)
def source_digest() -> str:
    """SHA-256 over the path and bytes of every ``.py`` file of the installed package."""
    root = os.path.dirname(os.path.abspath(__file__))
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                digest.update(os.path.relpath(path, root).encode())
                with open(path, "rb") as f:
                    digest.update(f.read())
    return digest.hexdigest()


def _trace_context() -> str:
    """JAX's configuration that changes what tracing produces (x64, matmul precision, PRNG...):
    what ``jax.jit`` itself keys its trace cache on."""
    try:
        from jax._src import config as jax_config

        # Objects without a value repr (the axis environment, empty outside a trace) print
        # their address, which differs between processes: left out.
        return repr([x for x in jax_config.trace_context() if " at 0x" not in repr(x)])
    except Exception:  # another JAX: the public flags that matter most
        return repr(
            tuple(
                getattr(jax.config, name, None)
                for name in (
                    "jax_enable_x64",
                    "jax_default_matmul_precision",
                    "jax_default_prng_impl",
                    "jax_threefry_partitionable",
                    "jax_numpy_rank_promotion",
                )
            )
        )


def _key(fn: Callable, static: Hashable, impl: str, treedef, leaves) -> str:
    import jaxlib

    from jaxmail import __version__

    parts = (
        source_digest(),
        __version__,
        jax.__version__,
        jaxlib.__version__,
        _trace_context(),
        jax.default_backend(),
        fn.__module__,
        fn.__qualname__,
        repr(static),
        impl,
        repr(treedef),
        tuple((np.shape(x), np.result_type(x).str) for x in leaves),
    )
    return hashlib.sha256(repr(parts).encode()).hexdigest()


_registered: set[type] = set()


def _register_named_tuples() -> None:
    """Lets :mod:`jax.export` serialise every ``NamedTuple`` of the package (results such as
    ``NashGap`` appear in per-seed outputs), under its module-qualified name.

    Done before exporting AND before reading back, in every process, so both see the same
    registry; classes of modules imported later are added at the next call.
    """
    import sys

    for name, module in list(sys.modules.items()):
        if not (name == "jaxmail" or name.startswith("jaxmail.")) or module is None:
            continue
        for obj in list(vars(module).values()):
            if (
                isinstance(obj, type)
                and issubclass(obj, tuple)
                and hasattr(obj, "_fields")
                and obj.__module__ == name
                and obj not in _registered
            ):
                _registered.add(obj)
                try:
                    jax.export.register_namedtuple_serialization(
                        obj, serialized_name=f"{obj.__module__}.{obj.__qualname__}"
                    )
                except ValueError:  # registered already (by its module, or under that name)
                    pass


def _export(jitted: Callable, name: str, treedef, leaves) -> jax.export.Exported:
    def flat(*xs):
        return jitted(*jax.tree_util.tree_unflatten(treedef, xs))

    flat.__name__ = flat.__qualname__ = f"export({name})"  # what JAX's compile log shows

    specs = [jax.ShapeDtypeStruct(np.shape(x), np.result_type(x)) for x in leaves]
    return jax.export.export(jax.jit(flat))(*specs)


def _read(path: str) -> jax.export.Exported | None:
    try:
        with open(path, "rb") as f:
            return jax.export.deserialize(bytearray(f.read()))
    except Exception:  # missing, truncated, or written by another version: trace again
        return None


def _write(path: str, blob: bytes) -> None:
    """Writes ``blob`` to ``path`` atomically (as ``experiments.results.atomic_path``, which
    this lower module cannot import); the temporary never outlives a failure or a Ctrl-C."""
    tmp = None
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(path))
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # readers see the whole file or none
        tmp = None
    except OSError:
        pass  # not kept: the next run traces the program again
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.remove(tmp)


def _remember(key: str, fn: Callable) -> None:
    _loaded[key] = fn
    while len(_loaded) > _MAX_LOADED:
        _loaded.popitem(last=False)


def program(
    jitted: Callable, fn: Callable, static: Hashable, impl: str, args: tuple[Any, ...]
) -> Callable:
    """``jitted`` (a compiled per-seed program of ``fn``) through its export, kept on disk.

    Args:
      jitted: ``jax.jit`` of the program; called as ``jitted(*args)``.
      fn: the per-seed function it was built from (its module and name enter the key).
      static: ``fn``'s static arguments (hashable, with a faithful ``repr``).
      impl: the PRNG implementation's name.
      args: example arguments (arrays or pytrees of arrays): only shapes and dtypes are used.

    Returns:
      A function of the same arguments that runs the exported program, or ``jitted`` itself
      where the program cannot be exported (module docstring).
    """
    if not getattr(fn, "__module__", "").startswith("jaxmail."):
        return jitted
    leaves, treedef = jax.tree_util.tree_flatten(args)
    key = _key(fn, static, impl, treedef, leaves)
    with _lock:
        found = _loaded.get(key)
        if found is not None:
            _loaded.move_to_end(key)
            return found
        _register_named_tuples()
        # A static argument without a value repr (its address) would give a new key in every
        # process: such a program is exported but not kept.
        keep = _directory is not None and " at 0x" not in repr(static)
        path = os.path.join(_directory, key + _SUFFIX) if keep else None
        exported = None if path is None else _read(path)
        if exported is None:
            try:
                exported = _export(jitted, fn.__name__, treedef, leaves)
                blob = exported.serialize()
            except Exception:  # not exportable: run it as before
                _remember(key, jitted)
                return jitted
            if path is not None:
                _write(path, bytes(blob))

        def one_seed(*leaves):
            return exported.call(*leaves)

        one_seed.__name__ = one_seed.__qualname__ = f"run({fn.__name__})"  # in JAX's compile log
        call = jax.jit(one_seed)

        def run(*args):
            return call(*jax.tree_util.tree_leaves(args))

        _remember(key, run)
        return run
