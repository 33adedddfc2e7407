"""Batched NashGap (all players' best responses plus the joint evaluation): speed table.

For each size (S states, n players, A actions each) and dtype, a batch of random games and
random policies is solved by ``jax.jit(jax.vmap(jm.nash_gap))`` and, game by game, by the NumPy
reference ``tests/reference.py::nash_gap_policy_iteration`` (the same exact policy-iteration
algorithm, vectorised with NumPy per game). Columns:

* ``batch``: games in the batch (64, fewer where the batch's transition tensors would exceed
  ``--max-batch-bytes``).
* ``compile s``: ``lower().compile()`` of the batched program.
* ``jax ms/game``: median over ``--repeats`` runs of the compiled batch, divided by ``batch``.
* ``numpy ms/game``: mean over ``--numpy-games`` games of the reference.
* ``speed-up``: numpy / jax.
* ``floor ms/game``: ``n`` reads of one game's transition tensor at the measured memory
  bandwidth, plus the LU flops of the solves actually performed (one for ``V^pi`` and one per
  policy-iteration step of every player, ``2/3 S^3`` each) at the measured batched-LU rate.
* ``x floor``: jax / floor.
* ``PI steps``: mean policy-iteration steps per player.

Usage::

    python benchmarks/nash_gap.py                 # the full table (several minutes)
    python benchmarks/nash_gap.py --quick         # S=16 only
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxmail as jm  # before any JAX computation: sets the XLA guard

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
import reference as ref  # noqa: E402


def _random_batch(seed, batch, num_states, actions, discount, dtype):
    rng = np.random.default_rng(seed)
    games, policies = [], []
    for _ in range(batch):
        P, R, mu0 = ref.random_game(rng, num_states, actions, discount)
        games.append((P, R, mu0))
        policies.append(ref.random_policy(rng, num_states, actions))
    stack = lambda *xs: np.stack(xs).astype(dtype)  # noqa: E731
    P = stack(*[g[0] for g in games])
    R = stack(*[g[1] for g in games])
    mu0 = stack(*[g[2] for g in games])
    pis = tuple(stack(*[p[i] for p in policies]) for i in range(len(actions)))
    return games, policies, (P, R, mu0), pis


def _median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def _bandwidth(dtype) -> float:
    """Bytes per second of one fused read (sum) over a 256 MiB array."""
    x = jnp.ones((256 * 2**20 // jnp.dtype(dtype).itemsize,), dtype)
    f = jax.jit(jnp.sum)
    jax.block_until_ready(f(x))
    return x.nbytes / _median_time(lambda: f(x), 5)


def _lu_rate(num_states, batch, dtype) -> float:
    """Flops per second of a batched LU factorisation of ``batch`` SxS matrices."""
    a = jnp.eye(num_states, dtype=dtype) + 0.01 * jax.random.uniform(
        jax.random.key(0), (batch, num_states, num_states), dtype
    )
    f = jax.jit(jax.scipy.linalg.lu_factor)
    jax.block_until_ready(f(a))
    t = _median_time(lambda: f(a), 5)
    return batch * (2.0 / 3.0) * num_states**3 / t


def run(sizes, dtypes, *, batch, repeats, numpy_games, max_batch_bytes, discount):
    kernel = jax.jit(jax.vmap(jm.nash_gap))
    header = (
        "| dtype | S | n | A | batch | compile s | jax ms/game | numpy ms/game | speed-up "
        "| floor ms/game | x floor | PI steps |"
    )
    print(header)
    print("|---" * 12 + "|")
    rates = {}
    for dtype in dtypes:
        x64 = dtype == "float64"
        with jax.enable_x64(x64):
            bw = _bandwidth(dtype)
            for num_states, n, a in sizes:
                actions = (a,) * n
                itemsize = np.dtype(dtype).itemsize
                game_bytes = num_states * num_states * a**n * itemsize
                b = int(max(1, min(batch, max_batch_bytes // game_bytes)))
                games, policies, (P, R, mu0), pis = _random_batch(
                    0, b, num_states, actions, discount, dtype
                )
                batch_game = jax.tree_util.tree_map(
                    jnp.asarray,
                    jm.game.MarkovGame.tree_unflatten(
                        None, (P, R, mu0, np.full((b,), discount, dtype))
                    ),
                )
                batch_pi = tuple(jnp.asarray(p) for p in pis)
                t = time.perf_counter()
                compiled = kernel.lower(batch_game, batch_pi).compile()
                compile_s = time.perf_counter() - t
                out = compiled(batch_game, batch_pi)
                jax.block_until_ready(out)
                if not bool(np.all(out.converged)):
                    print(f"# warning: not all converged at S={num_states} n={n} A={a}")
                run_once = lambda c=compiled, g=batch_game, p=batch_pi: c(g, p)  # noqa: E731
                jax_s = _median_time(run_once, repeats) / b

                k = min(numpy_games, b)
                t = time.perf_counter()
                ref_gaps = []
                for (Pg, Rg, mg), pg in list(zip(games, policies))[:k]:
                    ref_gaps.append(ref.nash_gap_policy_iteration(Pg, Rg, mg, discount, pg))
                numpy_s = (time.perf_counter() - t) / k
                worst = max(
                    float(np.max(np.abs(np.asarray(out.gains[j]) - ref_gaps[j]["gains"])))
                    for j in range(k)
                )
                scale = 1.0 / (1.0 - discount)
                tol = (1e-3 if dtype == "float32" else 1e-8) * scale
                if worst > tol:
                    print(f"# warning: max |gain - reference| = {worst:.3g} > {tol:.3g}")

                key = (num_states, dtype)
                if key not in rates:
                    rates[key] = _lu_rate(num_states, 64, dtype)
                # Exact count of solves: 1 joint + every player's PI steps.
                steps = _pi_steps(batch_game, batch_pi)
                solves = 1.0 + float(np.mean(np.sum(steps, axis=-1)))
                floor_s = n * game_bytes / bw + solves * (2.0 / 3.0) * num_states**3 / rates[key]
                print(
                    f"| {dtype} | {num_states} | {n} | {a} | {b} | {compile_s:.2f} | "
                    f"{jax_s * 1e3:.3f} | {numpy_s * 1e3:.3f} | {numpy_s / jax_s:.1f} | "
                    f"{floor_s * 1e3:.3f} | {jax_s / floor_s:.2f} | "
                    f"{float(np.mean(steps)):.2f} |",
                    flush=True,
                )


_steps_kernel = jax.jit(
    jax.vmap(lambda g, p: jnp.stack([br.iterations for br in jm.best_responses(g, p)[0]]))
)


def _pi_steps(game, policy):
    return np.asarray(_steps_kernel(game, policy))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="S = 16 only")
    parser.add_argument("--states", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--players", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--actions", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--numpy-games", type=int, default=8)
    parser.add_argument("--max-batch-bytes", type=int, default=2 * 2**30)
    parser.add_argument("--discount", type=float, default=0.95)
    args = parser.parse_args(argv)
    states = [16] if args.quick else args.states
    sizes = [(s, n, a) for s in states for n in args.players for a in args.actions]
    flags = os.environ.get("XLA_FLAGS")
    print(f"# jax {jax.__version__}, devices {jax.devices()}, XLA_FLAGS={flags}")
    print(f"# discount {args.discount}, random policies, Dirichlet games (tests/reference.py)")
    run(
        sizes,
        args.dtypes,
        batch=args.batch,
        repeats=args.repeats,
        numpy_games=args.numpy_games,
        max_batch_bytes=args.max_batch_bytes,
        discount=args.discount,
    )


if __name__ == "__main__":
    main()
