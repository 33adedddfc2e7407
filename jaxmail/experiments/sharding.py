"""One compiled single-device program over a batch of seeds, run on every device.

:func:`map_seeds` splits the ``B`` seeds into blocks of ``b`` seeds (the last block padded by
repeating the last key; the padding is dropped from the results) and runs the SAME compiled
program ``jax.jit(jax.vmap(fn))`` on one block per device, block ``i`` on device ``i mod D``
(dispatched concurrently; each device compiles the same HLO once). The per-device block size
``b`` is ``ceil(B / D)`` by default; :func:`seeds_per_device` fixes it, and the runner fixes it
to the configuration's ``chunk_size`` and hands ``D`` chunks to each call, so that every chunk is
computed by the program that computes it on one device.

Why not one SPMD program (``jit`` with a ``NamedSharding`` over a mesh, or ``shard_map``): the
partitioned program is compiled with ``D`` partitions, and XLA's code for it differs in the last
bits from the single-device program (fusion and op order). Most experiments do not notice, but
an iterative learner whose loss is flat along a set of optima (state-only measure matching in
``counterexamples``: adam normalises gradients of the size of rounding errors into steps of the
learning rate) ends at another optimum. With the SPMD version, ``counterexamples --quick --set
learners=state-matching --seeds 4 --set chunk_size=4`` gave seed 0 a learner NashGap of
14.146112 on one device and 14.139166 on 4 forced host devices; the single-device programs
give 14.146112 on both, with blocks of 1, 2 or 4 seeds. Single-device programs of the
same shape give bit-identical results on any device of one kind (tested with 1 and 4 forced
host devices in ``tests/test_sharding.py``). Another kind of device (GPU, not CPU) or another
jaxlib compiles other code, and the numbers then agree only to rounding (or, for such a flat
learner, not at all), hence ``config.json`` records the devices, and a resume on another
platform or kind of device is refused (another device count is accepted: same numbers).

Several GPUs on one machine: nothing to do. ``jax.devices()`` lists every local GPU and
each runs blocks (``CUDA_VISIBLE_DEVICES`` restricts the set).

Several hosts (multi-process JAX):

* call ``jax.distributed.initialize()`` (with the coordinator address, process count and id, or
  from the cluster's environment on SLURM/TPU) BEFORE jaxmail runs anything, e.g. in a small
  wrapper script that then calls ``jaxmail.cli.main([...])``; ``jax.devices()`` then lists the
  devices of every process;
* every host runs the SAME command with the same configuration, seeds, dtype and versions of
  jaxmail/JAX: each process computes the same keys and the same list of chunks, runs the blocks
  of its own devices (the block count is padded to a multiple of ``D``) and the results are
  gathered to every process (``jax.experimental.multihost_utils.process_allgather``), so the
  per-seed rows are the same everywhere;
* only process 0 writes result files; with ``--resume`` every process reads ``results.csv`` to
  decide which chunks to skip, so ``--out`` must be on a file system that all hosts see (or be
  copied to each host before resuming).

The CPU can pretend to have several devices, which is how this is tested on one machine:
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (set before JAX starts its backend).

Shapes: ``B`` seeds, ``D`` devices, ``b`` seeds per block, ``N = ceil(B / b)`` blocks.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import functools
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from jaxmail import _program_cache

AXIS = "seeds"


_SEEDS_PER_DEVICE: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "seeds_per_device", default=None
)


@contextlib.contextmanager
def seeds_per_device(block: int | None) -> Iterator[None]:
    """Within the context, :func:`map_seeds` gives each device blocks of ``block`` seeds.

    ``None`` restores the default ``ceil(B / D)``.
    """
    if block is not None and (not isinstance(block, int) or block < 1):
        raise ValueError(f"block: expected a positive int or None, got {block!r}")
    token = _SEEDS_PER_DEVICE.set(block)
    try:
        yield
    finally:
        _SEEDS_PER_DEVICE.reset(token)


def seed_mesh(devices: list[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh named ``"seeds"`` over ``devices`` (default: every device of every process).

    :func:`map_seeds` runs one block per device in this order; the runner records the mesh.
    """
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices, dtype=object), (AXIS,))


@functools.lru_cache(maxsize=64)
def _compiled(fn: Callable, static: tuple[tuple[str, Hashable], ...], num_args: int, impl: str):
    kwargs = dict(static)

    def one_seed(key_data, *args):
        return fn(jax.random.wrap_key_data(key_data, impl=impl), *args, **kwargs)

    return jax.jit(jax.vmap(one_seed, in_axes=(0,) + (None,) * num_args))


def map_seeds(
    fn: Callable[..., Any],
    keys: jax.Array,
    *args: Any,
    devices: Sequence[jax.Device] | None = None,
    **static: Hashable,
) -> Any:
    """``jax.vmap(fn)(keys, *args)``, one compiled block of seeds per device.

    ``fn(key, *args, **static)`` computes ONE seed's result (a pytree of arrays) from one PRNG
    key; ``args`` are shared by every seed (arrays or pytrees of arrays, e.g. a discount or a
    game, copied to every device); ``static`` are hashable keyword arguments fixed at compile
    time (sizes, player counts, names). The program is cached on ``(fn, static, len(args))``:
    pass a module-level function, not a fresh lambda, so that a second chunk reuses it.

    A seed's numbers depend on its key, the block size ``b`` and the kind of device only: not
    on the device count, nor on which device runs its block, nor on the other seeds.

    A per-seed function of the ``jaxmail`` package runs through its :mod:`jax.export`, which
    :mod:`jaxmail._program_cache` keeps on disk where the command's compilation cache is on, so
    that the next process reads the traced program back instead of tracing it again.

    Args:
      fn: the per-seed function.
      keys: ``[B]`` PRNG key array (``jax.random.key``), identical on every process.
      *args: shared arguments.
      devices: default ``jax.devices()`` (every device of every process).
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
    devices = jax.devices() if devices is None else list(devices)
    num_devices = len(devices)
    if num_devices == 0:
        raise ValueError("devices: expected at least one device, got none")
    impl = str(jax.random.key_impl(keys))
    data = np.asarray(jax.random.key_data(keys))  # [B, key words]
    batch = data.shape[0]
    if batch == 0:
        raise ValueError("keys: expected at least one key, got an empty batch")
    block = _SEEDS_PER_DEVICE.get() or -(-batch // num_devices)
    num_blocks = -(-batch // block)
    multiprocess = jax.process_count() > 1
    if multiprocess:  # every device takes part, so every process holds the same block count
        num_blocks = -(-num_blocks // num_devices) * num_devices
    padded = num_blocks * block
    if padded != batch:
        data = np.concatenate([data, np.repeat(data[-1:], padded - batch, axis=0)])
    blocks = data.reshape(num_blocks, block, *data.shape[1:])
    static_items = tuple(sorted(static.items()))
    host_args = jax.tree_util.tree_map(lambda x: np.asarray(jnp.asarray(x)), args)
    compiled = _program_cache.program(
        _compiled(fn, static_items, len(args), impl),
        fn,
        static_items,
        impl,
        (blocks[0], *host_args),
    )
    here = jax.process_index()
    mine = [i for i in range(num_blocks) if devices[i % num_devices].process_index == here]

    def run_block(i):
        device = devices[i % num_devices]
        put = functools.partial(jax.device_put, device=device)
        return compiled(put(blocks[i]), *jax.tree_util.tree_map(put, host_args))

    if len(mine) > 1:  # the first call on each device compiles: do those concurrently
        with concurrent.futures.ThreadPoolExecutor(min(len(mine), num_devices)) as pool:
            outs = list(pool.map(run_block, mine))
    else:
        outs = [run_block(i) for i in mine]
    local = jax.tree_util.tree_map(lambda *xs: np.concatenate([np.asarray(x) for x in xs]), *outs)
    if multiprocess:
        from jax.experimental import multihost_utils

        gathered = multihost_utils.process_allgather(local, tiled=True)
        order = [  # the block indices in the order process_allgather concatenates them
            i
            for p in range(jax.process_count())
            for i in range(num_blocks)
            if devices[i % num_devices].process_index == p
        ]
        position = np.argsort(np.asarray(order))
        local = jax.tree_util.tree_map(
            lambda x: (
                np.asarray(x)
                .reshape(num_blocks, block, *np.shape(x)[1:])[position]
                .reshape(padded, *np.shape(x)[1:])
            ),
            gathered,
        )
    return jax.tree_util.tree_map(lambda x: x[:batch], local)
