"""One compiled program over a batch of seeds, sharded over every device.

:func:`map_seeds` runs ``jax.jit(jax.vmap(fn))`` with the seed axis split over all devices:
a 1-D :class:`jax.sharding.Mesh` over ``jax.devices()`` with the axis name ``"seeds"``, the keys
placed with ``NamedSharding(mesh, P("seeds"))``, the other arguments replicated. The batch is
padded to a multiple of the device count (the padding repeats the last key) and the padding is
dropped from the results. Every seed's computation is the same single-example program (vmap),
so a seed's numbers do not depend on which device runs it or on the device count (tests compare
4 forced host devices with 1; see ``tests/test_sharding.py`` for the tolerance that holds).

Several GPUs on one machine: nothing to do. ``jax.devices()`` lists every local GPU, and the
mesh spans them all (``CUDA_VISIBLE_DEVICES`` restricts the set). Choose ``chunk_size`` as a
multiple of the device count, large enough to fill each device.

Several hosts (multi-process JAX):

* call ``jax.distributed.initialize()`` (with the coordinator address, process count and id, or
  from the cluster's environment on SLURM/TPU) BEFORE jaxmail runs anything, e.g. in a small
  wrapper script that then calls ``jaxmail.cli.main([...])``; ``jax.devices()`` then lists the
  devices of every process and the mesh spans them all;
* every host runs the SAME command with the same configuration, seeds, dtype and versions of
  jaxmail/JAX: each process computes the same keys and the same list of chunks, and every chunk
  is a collective program that all processes must enter together;
* only process 0 writes result files; with ``--resume`` every process reads ``results.csv`` to
  decide which chunks to skip, so ``--out`` must be on a file system that all hosts see (or be
  copied to each host before resuming);
* the global results are gathered to every process
  (``jax.experimental.multihost_utils.process_allgather``), so the per-seed rows are the same
  everywhere.

The CPU can pretend to have several devices, which is how this is tested on one machine:
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (set before JAX starts its backend).

Shapes: ``B`` seeds in a chunk, ``D`` devices, ``B_pad = D ceil(B / D)``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = "seeds"


def seed_mesh(devices: list[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh named ``"seeds"`` over ``devices`` (default: every device of every process)."""
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices, dtype=object), (AXIS,))


@functools.lru_cache(maxsize=64)
def _compiled(
    fn: Callable, static: tuple[tuple[str, Hashable], ...], num_args: int, mesh: Mesh, impl: str
):
    kwargs = dict(static)

    def one_seed(key_data, *args):
        return fn(jax.random.wrap_key_data(key_data, impl=impl), *args, **kwargs)

    batched = jax.vmap(one_seed, in_axes=(0,) + (None,) * num_args)
    seeds = NamedSharding(mesh, P(AXIS))
    replicated = NamedSharding(mesh, P())
    return jax.jit(
        batched,
        in_shardings=(seeds,) + (replicated,) * num_args,
        out_shardings=seeds,
    )


def _global_array(data: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A global array from a host array that every process holds in full."""
    return jax.make_array_from_callback(data.shape, sharding, lambda index: data[index])


def _to_host(x: jax.Array) -> np.ndarray:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


def map_seeds(
    fn: Callable[..., Any],
    keys: jax.Array,
    *args: Any,
    mesh: Mesh | None = None,
    **static: Hashable,
) -> Any:
    """``jax.jit(jax.vmap(fn))(keys, *args)`` with the seed axis sharded over all devices.

    ``fn(key, *args, **static)`` computes ONE seed's result (a pytree of arrays) from one PRNG
    key; ``args`` are shared by every seed (arrays or pytrees of arrays, e.g. a discount or a
    game, replicated on every device); ``static`` are hashable keyword arguments fixed at
    compile time (sizes, player counts, names). The compiled program is cached on
    ``(fn, static, len(args), mesh)``: pass a module-level function, not a fresh lambda, so that
    a second chunk reuses the compilation.

    Args:
      fn: the per-seed function.
      keys: ``[B]`` PRNG key array (``jax.random.key``), identical on every process.
      *args: shared arguments.
      mesh: default :func:`seed_mesh` over ``jax.devices()``.
      **static: compile-time keyword arguments of ``fn``.

    Returns:
      ``fn``'s pytree with a leading ``[B]`` axis on every leaf, as NumPy arrays on the host.

    Example:
      >>> def draw(key, scale):
      ...     return scale * jax.random.normal(key, ())
      >>> keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.key(0), s))(jnp.arange(5))
      >>> map_seeds(draw, keys, 2.0).shape
      (5,)
    """
    mesh = seed_mesh() if mesh is None else mesh
    num_devices = mesh.devices.size
    impl = str(jax.random.key_impl(keys))
    data = np.asarray(jax.random.key_data(keys))  # [B, key words]
    batch = data.shape[0]
    if batch == 0:
        raise ValueError("keys: expected at least one key, got an empty batch")
    padded = -(-batch // num_devices) * num_devices
    if padded != batch:
        data = np.concatenate([data, np.repeat(data[-1:], padded - batch, axis=0)])
    compiled = _compiled(fn, tuple(sorted(static.items())), len(args), mesh, impl)
    sharded_keys = _global_array(data, NamedSharding(mesh, P(AXIS)))
    replicated = NamedSharding(mesh, P())
    args = jax.tree_util.tree_map(
        lambda x: _global_array(np.asarray(jnp.asarray(x)), replicated), args
    )
    out = compiled(sharded_keys, *args)
    return jax.tree_util.tree_map(lambda x: _to_host(x)[:batch], out)
