"""Imitation learners batched over seeds: one compiled call against a Python loop of seeds.

One 64-state two-player game (``jm.games.random_game``, 4 actions each, discount 0.9) and a
full-support expert (a random policy). A SEED is one pipeline: sample ``--trajectories``
geometric-length demonstrations of the expert, fit the learner, compute its eps_BC. Rows:

* ``BC closed form``: ``behavior_cloning(game, data, smoothing=0.1)``.
* ``BC gradient``: ``gradient_behavior_cloning(game, data, steps=500)`` (optax adam).
* ``measure matching``: ``measure_matching(game, data, measure="state_action",
  divergence="kl", steps=2000)``; every step solves the learner's occupancy exactly (one LU of
  ``[S, S]``, forward and transposed).

Columns:

* ``seeds``: the batch, ``jax.jit(jax.vmap(pipeline))(keys)``.
* ``compile s``: ``lower().compile()`` of the batched program.
* ``run s``: the batched program, median over ``--repeats`` runs after a warm-up (wall clock,
  or with ``--clock cpu`` this process's CPU time, the steadier measure on a shared machine).
* ``seeds/s``: ``seeds / run s``.
* ``one-by-one s/seed``: ``jax.jit(pipeline)`` compiled once, called on ``--loop-seeds`` seeds
  in a Python loop (every call waits for its result, as a seed-by-seed script would); the mean
  per seed.
* ``speed-up``: ``one-by-one s/seed * seeds / run s``, the time the loop would take for the whole
  batch over the batched time (extrapolated from ``--loop-seeds`` seeds).
* ``mean eps_BC``: over the batch, a sanity check that the learners learn.

Usage::

    python benchmarks/imitation.py              # 1024 seeds (several minutes on 2 CPU cores)
    python benchmarks/imitation.py --quick      # 64 seeds, fewer steps
"""

from __future__ import annotations

import argparse
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxmail as jm  # before any JAX computation: sets the XLA guard


def _pipelines(game, expert, args):
    def sample(key):
        return jm.data.sample_demonstrations(
            key, game, expert, num_trajectories=args.trajectories, horizon=args.horizon,
            lengths="geometric",
        )  # fmt: skip

    def bc_closed(key):
        policy = jm.imitation.behavior_cloning(game, sample(key), smoothing=0.1).policy
        return jm.bc_error(game, policy, expert=expert)

    def bc_gradient(key):
        fit = jm.imitation.gradient_behavior_cloning(game, sample(key), steps=args.bc_steps)
        return jm.bc_error(game, fit.policy, expert=expert)

    rows = [
        ("bc", "BC closed form", bc_closed),
        ("gradient", f"BC gradient ({args.bc_steps} steps)", bc_gradient),
    ]

    def matching(key):
        policy = jm.imitation.measure_matching(
            game, sample(key), measure="state_action", divergence="kl", steps=args.mm_steps
        ).policy
        return jm.bc_error(game, policy, expert=expert)

    rows.append(("matching", f"measure matching ({args.mm_steps} steps)", matching))
    chosen = args.learners.split(",")
    return [(name, fn) for key, name, fn in rows if key in chosen]


def _median(fn, repeats, clock):
    times = []
    for _ in range(repeats):
        start = clock()
        jax.block_until_ready(fn())
        times.append(clock() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=1024)
    parser.add_argument("--states", type=int, default=64)
    parser.add_argument("--trajectories", type=int, default=100)
    parser.add_argument("--horizon", type=int, default=50)
    parser.add_argument("--bc-steps", type=int, default=500)
    parser.add_argument("--mm-steps", type=int, default=2000)
    parser.add_argument("--loop-seeds", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--learners", default="bc,gradient,matching", help="comma-separated subset to run"
    )
    parser.add_argument("--quick", action="store_true", help="64 seeds, 200 MM steps")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="time the runs by wall clock, or by this process's CPU time (all its threads; "
        "steadier on a shared machine, and it charges a batch for every core it keeps busy)",
    )
    args = parser.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    if args.quick:
        args.seeds, args.mm_steps, args.repeats, args.loop_seeds = 64, 200, 1, 4

    game = jm.games.random_game(
        jax.random.key(0), num_states=args.states, num_actions=(4, 4), discount=0.9
    )
    expert = jm.random_policy(jax.random.key(1), game)
    keys = jax.random.split(jax.random.key(2), args.seeds)
    print(
        f"game: S={args.states}, A=(4, 4), gamma 0.9; {args.trajectories} geometric-length "
        f"demonstrations (cap {args.horizon}) per seed; jax {jax.__version__}, "
        f"{jax.devices()[0].platform}, {jax.local_device_count()} device(s); "
        f"run times by {args.clock} clock\n"
    )
    print(
        "| learner | seeds | compile s | run s | seeds/s | one-by-one s/seed | speed-up "
        "| mean eps_BC |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, pipeline in _pipelines(game, expert, args):
        batched = jax.jit(jax.vmap(pipeline))
        start = time.perf_counter()
        compiled = batched.lower(keys).compile()
        compile_s = time.perf_counter() - start
        errors = jax.block_until_ready(compiled(keys))  # warm-up
        run_s = _median(functools.partial(compiled, keys), args.repeats, clock)
        single = jax.jit(pipeline)
        # The keys as a list before the clock starts: iterating over a device array would
        # dispatch (and, the first time, compile) an indexing op inside the timed loop.
        loop_keys = list(keys[: args.loop_seeds])
        jax.block_until_ready(single(loop_keys[0]))  # compile once, outside the timing
        start = clock()
        for key in loop_keys:
            jax.block_until_ready(single(key))
        per_seed = (clock() - start) / args.loop_seeds
        print(
            f"| {name} | {args.seeds} | {compile_s:.2f} | {run_s:.3f} | {args.seeds / run_s:.1f} "
            f"| {per_seed:.4f} | {per_seed * args.seeds / run_s:.1f} | "
            f"{float(jnp.mean(errors)):.4f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
