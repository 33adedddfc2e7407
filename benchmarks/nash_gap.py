"""Batched NashGap against its floor and against the NumPy reference: speed table.

For each size (S states, n players, A actions each) a batch of random games and random
policies (``tests/reference.py``: Dirichlet transitions, rewards in [-1, 1]) is solved by
``jax.jit(jax.vmap(jm.nash_gap))`` and, game by game, by the NumPy reference
``tests/reference.py::nash_gap_policy_iteration`` (exact policy iteration, vectorised with NumPy
per game). Every time is CPU milliseconds of this process per game (the minimum over
``--repeats`` runs of the compiled batch, divided by the batch), measured in the same run on
the same batch.
Columns:

* ``LU``: one batched LU factorisation of an ``S x S`` matrix per game.
* ``evaluate``: ``jm.evaluate`` (contraction, one factorisation, values and occupancy).
* ``BR``: ``jm.best_response`` of player 0 alone.
* ``nash_gap``: ``jm.nash_gap`` (every player's exact best response and the joint values).
* ``floor``: the work that any exact method of this kind has to do, each part timed alone:
  ``n + 1`` batched LU factorisations (the joint evaluation and one policy-evaluation step
  per player), the triangular solves they need (``n`` right-hand sides for the joint values,
  one per player), and two reads of ``P`` (the recursive contraction that gives every
  player's induced tensor, which touches every entry of ``P`` twice). The factorisations and
  solves are written here as ``jaxmail._linalg`` does them (LAPACK ``getrf`` of ``A^T`` and
  two ``trsm``), so the floor does not move with the library's version.
* ``x floor``: nash_gap / floor.
* ``numpy``: the reference, mean over ``--numpy-games`` games; ``speed-up``: numpy / nash_gap.
* ``PI``: with ``--pi-steps``, mean and max policy-evaluation steps per player (each step is
  one exact evaluation).
* ``compile s``: compiling the batched nash_gap (wall clock).

With ``--mdp`` a second table times batched ``jm.solve_mdp`` (policy iteration from the
greedy policy of the rewards) against its floor (one factorisation and one solve per MDP and
one read of its transitions).

Usage::

    python benchmarks/nash_gap.py --repeats 3                      # the full grid
    python benchmarks/nash_gap.py --states 64 --players 2 --actions 4
"""

from __future__ import annotations

import argparse
import os
import sys
import time

_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path[:0] = [_ROOT, os.path.join(_ROOT, "tests")]

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import reference as ref  # noqa: E402
from jax import lax  # noqa: E402

import jaxmail as jm  # noqa: E402  (before any JAX computation: the XLA guard)
from jaxmail import _contract  # noqa: E402


def _random_batch(seed, batch, num_states, actions, discount, dtype):
    rng = np.random.default_rng(seed)
    games, policies = [], []
    for _ in range(batch):
        games.append(ref.random_game(rng, num_states, actions, discount))
        policies.append(ref.random_policy(rng, num_states, actions))

    def stack(*xs):
        return jnp.asarray(np.stack(xs).astype(dtype))

    P = stack(*[g[0] for g in games])
    R = stack(*[g[1] for g in games])
    mu0 = stack(*[g[2] for g in games])
    pis = tuple(stack(*[p[i] for p in policies]) for i in range(len(actions)))
    batch_game = jm.game.MarkovGame.tree_unflatten(
        None, (P, R, mu0, jnp.full((batch,), discount, dtype))
    )
    return games, policies, batch_game, pis


def _cpu_time(fn, args, repeats):
    """``(compile s, min CPU s per call)`` of ``jax.jit(fn)(*args)``."""
    f = jax.jit(fn)
    t = time.perf_counter()
    compiled = f.lower(*args).compile()
    compile_s = time.perf_counter() - t
    jax.block_until_ready(compiled(*args))
    best = np.inf
    for _ in range(repeats):
        t = time.process_time()
        jax.block_until_ready(compiled(*args))
        best = min(best, time.process_time() - t)
    return compile_s, best


def floor_factor(m, gamma):
    """LU of ``(I - gamma M)^T`` with its row permutation, as ``jaxmail._linalg.factorize``."""
    a = jnp.eye(m.shape[-1], dtype=m.dtype) - gamma * m
    lu, _, permutation = lax.linalg.lu(a.T)
    return lu, permutation


def floor_solve(lu, b):
    """``(I - gamma M)^-1 b`` from :func:`floor_factor`, as ``jaxmail._linalg.lu_solve``."""
    lu, permutation = lu
    x = b[:, None] if b.ndim == 1 else b
    x = lax.linalg.triangular_solve(lu, x, left_side=True, lower=False, transpose_a=True)
    x = lax.linalg.triangular_solve(
        lu, x, left_side=True, lower=True, unit_diagonal=True, transpose_a=True
    )
    x = jnp.zeros_like(x).at[permutation].set(x)
    return x[:, 0] if b.ndim == 1 else x


def _floor_parts(game, policy, repeats):
    """CPU seconds (per batch) of each part of the floor, timed alone on this batch."""
    P = game.transition
    b, s = P.shape[0], P.shape[1]
    n = len(policy)
    dtype = P.dtype
    # n + 1 stochastic matrices per game, taken from P (any stochastic matrices do).
    flat = P.reshape(b, s, -1, s)
    m = jnp.stack([flat[:, :, i % flat.shape[2], :] for i in range(n + 1)], axis=1)
    m = m.reshape(b * (n + 1), s, s)
    gamma = game.discount[0]

    def factor(m):
        return jax.vmap(lambda x: floor_factor(x, gamma))(m)

    _, t_lu = _cpu_time(factor, (m,), repeats)
    lu = jax.jit(factor)(m)
    joint = jax.tree_util.tree_map(lambda x: x.reshape(b, n + 1, *x.shape[1:])[:, 0], lu)
    players = jax.tree_util.tree_map(
        lambda x: x.reshape(b, n + 1, *x.shape[1:])[:, 1:].reshape(b * n, *x.shape[1:]), lu
    )
    rhs_joint = jnp.ones((b, s, n), dtype)
    rhs_players = jnp.ones((b * n, s), dtype)
    solve = jax.vmap(floor_solve)
    _, t_solve_joint = _cpu_time(solve, (joint, rhs_joint), repeats)
    _, t_solve_players = _cpu_time(solve, (players, rhs_players), repeats)

    def reads(P, policy):  # every player's induced tensor: every entry of P read twice
        return jax.vmap(lambda p, pi: _contract.induced_tensors(p, pi, trailing=1))(P, policy)

    _, t_reads = _cpu_time(reads, (P, policy), repeats)
    return dict(lu=t_lu, solves=t_solve_joint + t_solve_players, reads=t_reads)


def _pi_steps(game, policy):
    def steps(g, p):
        return jnp.stack([br.iterations for br in jm.best_responses(g, p)[0]])

    return np.asarray(jax.jit(jax.vmap(steps))(game, policy))


def run_nash_gap(sizes, dtype, *, batch, repeats, numpy_games, max_batch_bytes, discount, pi_steps):
    print(
        "| S | n | A | batch | LU | evaluate | BR | nash_gap | floor (LUs + solves + reads) "
        "| x floor | numpy | speed-up | PI mean/max | compile s |"
    )
    print("|---" * 14 + "|")
    for num_states, n, a in sizes:
        actions = (a,) * n
        game_bytes = num_states * num_states * a**n * np.dtype(dtype).itemsize
        b = int(max(1, min(batch, max_batch_bytes // game_bytes)))
        games, policies, game, pis = _random_batch(0, b, num_states, actions, discount, dtype)

        compile_s, t_gap = _cpu_time(jax.vmap(jm.nash_gap), (game, pis), repeats)
        out = jax.jit(jax.vmap(jm.nash_gap))(game, pis)
        if not bool(np.all(out.converged)):
            print(f"# warning: not all converged at S={num_states} n={n} A={a}")
        _, t_eval = _cpu_time(jax.vmap(jm.evaluate), (game, pis), repeats)
        _, t_br = _cpu_time(jax.vmap(lambda g, p: jm.best_response(g, p, 0)), (game, pis), repeats)
        parts = _floor_parts(game, pis, repeats)
        t_floor = sum(parts.values())
        t_lu1 = parts["lu"] / (n + 1)

        k = min(numpy_games, b)
        t = time.process_time()
        ref_gaps = [
            ref.nash_gap_policy_iteration(*games[j], discount, policies[j]) for j in range(k)
        ]
        t_numpy = (time.process_time() - t) / k
        worst = max(
            float(np.max(np.abs(np.asarray(out.gains[j]) - ref_gaps[j]["gains"]))) for j in range(k)
        )
        tol = (1e-3 if dtype == "float32" else 1e-8) / (1.0 - discount)
        if worst > tol:
            print(f"# warning: max |gain - reference| = {worst:.3g} > {tol:.3g}")
        steps = "-"
        if pi_steps:
            it = _pi_steps(game, pis)
            steps = f"{it.mean():.2f}/{it.max()}"
        per = 1e3 / b
        split = " + ".join(f"{parts[k] * per:.3f}" for k in ("lu", "solves", "reads"))
        print(
            f"| {num_states} | {n} | {a} | {b} | {t_lu1 * per:.3f} | {t_eval * per:.3f} | "
            f"{t_br * per:.3f} | {t_gap * per:.3f} | {t_floor * per:.3f} ({split}) | "
            f"{t_gap / t_floor:.2f} | {t_numpy * 1e3:.3f} | {t_numpy * b / t_gap:.1f} | "
            f"{steps} | {compile_s:.1f} |",
            flush=True,
        )


def run_solve_mdp(states, a, dtype, *, batch, repeats, discount):
    print()
    print("| S | A | batch | solve_mdp ms | floor ms | x floor | PI mean/max | compile s |")
    print("|---" * 8 + "|")
    for num_states in states:
        rng = np.random.default_rng(1)
        P = rng.dirichlet(np.ones(num_states), size=(batch, num_states, a)).astype(dtype)
        r = rng.uniform(-1, 1, size=(batch, num_states, a)).astype(dtype)
        P, r = jnp.asarray(P), jnp.asarray(r)
        gamma = jnp.asarray(discount, dtype)

        def solve(P, r, gamma=gamma):
            return jax.vmap(lambda p, x: jm.solve_mdp(p, x, gamma))(P, r)

        compile_s, t_pi = _cpu_time(solve, (P, r), repeats)
        sol = jax.jit(solve)(P, r)

        def factor(m, gamma=gamma):
            return jax.vmap(lambda x: floor_factor(x, gamma))(m)

        _, t_lu = _cpu_time(factor, (P[:, :, 0, :],), repeats)
        lu = jax.jit(factor)(P[:, :, 0, :])
        _, t_solve = _cpu_time(jax.vmap(floor_solve), (lu, r[:, :, 0]), repeats)
        _, t_read = _cpu_time(lambda P: jnp.sum(P, axis=-1), (P,), repeats)
        t_floor = t_lu + t_solve + t_read
        it = np.asarray(sol.iterations)
        per = 1e3 / batch
        print(
            f"| {num_states} | {a} | {batch} | {t_pi * per:.3f} | {t_floor * per:.3f} | "
            f"{t_pi / t_floor:.2f} | {it.mean():.2f}/{it.max()} | {compile_s:.1f} |",
            flush=True,
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--states", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--players", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--actions", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--numpy-games", type=int, default=8)
    parser.add_argument("--max-batch-bytes", type=int, default=2 * 2**30)
    parser.add_argument("--discount", type=float, default=0.95)
    parser.add_argument("--mdp", action="store_true", help="also time batched solve_mdp")
    parser.add_argument(
        "--pi-steps", action="store_true", help="count policy-evaluation steps (one more compile)"
    )
    args = parser.parse_args(argv)
    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    sizes = [(s, n, a) for s in args.states for n in args.players for a in args.actions]
    print(
        f"# jax {jax.__version__}, {os.cpu_count()} CPUs, XLA_FLAGS={os.environ.get('XLA_FLAGS')}"
    )
    print(f"# {args.dtype}, discount {args.discount}, load average {os.getloadavg()}")
    print("# times: CPU ms per game (min over repeats); floor: see the module docstring")
    run_nash_gap(
        sizes,
        args.dtype,
        batch=args.batch,
        repeats=args.repeats,
        numpy_games=args.numpy_games,
        max_batch_bytes=args.max_batch_bytes,
        discount=args.discount,
        pi_steps=args.pi_steps,
    )
    if args.mdp:
        run_solve_mdp(
            args.states,
            4,
            args.dtype,
            batch=args.batch,
            repeats=args.repeats,
            discount=args.discount,
        )
    print(f"# load average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
