"""Nash equilibria of random general-sum Markov games: jaxmail's batched logit-QRE homotopy
against sgamesolver's QRE homotopy, on the same games, in one run.

The games (float64, discount 0.95): two-player with S = 16 states and 4 actions each, and
three-player with S = 8 states and 3 actions each; ``jm.games.random_game`` (rewards U[-1, 1],
Dirichlet(1) transition rows), built by ``jax.vmap`` over keys. The same games are converted
to sgamesolver's ``SGame`` (payoffs ``R[:, s]``, transitions ``P[s]``).

* jaxmail: ``jax.jit(jax.vmap(qre_homotopy))`` on the whole batch. ``compile s`` is
  ``lower().compile()``; ``run s`` one run of the compiled program (``block_until_ready``);
  ``per game s`` = run / batch (a vmapped ``while_loop`` runs until its slowest game is done).
* jaxmail, one at a time (``--loop-games m``): ``jax.jit(qre_homotopy)`` compiled once for
  one game, called on the first ``m`` games in turn (no idling behind a batch's slowest game).
* sgamesolver: ``sgamesolver.homotopy.QRE(game)`` with its defaults, one game at a time, on the
  first ``--sg-games`` games; its first game is run twice and the first (warm-up) run dropped.
  ``per game s`` is the mean over the timed games.
* ``converged``: jaxmail: status ``converged`` (a certified NashGap <= the solver's default
  ``1000 eps max|R| / (1 - gamma)``); sgamesolver: its own success flag.
* ``NashGap <= 1e-8``: fraction with ``jm.nash_gap`` (computed apart, on the returned policy)
  at most 1e-8; ``max NashGap``/``median NashGap`` over the games.
* ``speed-up (CPU)``: sgamesolver's per-game CPU time / jaxmail's (process CPU time, less
  sensitive than wall time to other jobs on a shared machine; both run on one BLAS thread).

Usage::

    python benchmarks/homotopy.py                        # 256 games per shape, 8 sgamesolver
    python benchmarks/homotopy.py --batch 32 --sg-games 4 --loop-games 8
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

# One BLAS thread: every factorisation here is small (N <= 161), and OpenBLAS's own threads,
# on a loaded machine, made a 160 x 160 LU 100x slower (80 ms against 0.5 ms). Both solvers
# run under this setting.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import jax  # noqa: I001

import jaxmail as jm  # before any JAX computation: sets the XLA guard

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from jaxmail.homotopy import CONVERGED, qre_homotopy  # noqa: E402

SHAPES = [("2p S=16 A=4", 16, (4, 4)), ("3p S=8 A=3", 8, (3, 3, 3))]
DISCOUNT = 0.95


def games(num_states, actions, batch, seed):
    keys = jax.random.split(jax.random.key(seed), batch)
    return jax.vmap(
        lambda k: jm.games.random_game(
            k, num_states=num_states, num_actions=actions, discount=DISCOUNT
        )
    )(keys)


def one(batch, k):
    return jax.tree_util.tree_map(lambda x: x[k], batch)


def run_jaxmail(batch):
    solve = jax.jit(jax.vmap(qre_homotopy))
    t = time.perf_counter()
    compiled = solve.lower(batch).compile()
    compile_s = time.perf_counter() - t
    t, c = time.perf_counter(), time.process_time()
    out = jax.block_until_ready(compiled(batch))
    run_s, cpu_s = time.perf_counter() - t, time.process_time() - c
    gap = jax.jit(jax.vmap(jm.nash_gap))(batch, out.policy).nash_gap
    return compile_s, run_s, cpu_s, out, np.asarray(gap)


def run_jaxmail_loop(batch, count):
    """The unbatched program (``jax.jit(qre_homotopy)``), one game after another.

    On a CPU a vmapped batch runs every game until its slowest one is done (and pays the
    batched loop's bookkeeping), so this is the faster way to use a CPU; the batch is for
    accelerators. Returns (compile s, run s, CPU s, statuses, iterations).
    """
    solve = jax.jit(qre_homotopy)
    t = time.perf_counter()
    compiled = solve.lower(one(batch, 0)).compile()
    compile_s = time.perf_counter() - t
    t, c = time.perf_counter(), time.process_time()
    outs = [jax.block_until_ready(compiled(one(batch, k))) for k in range(count)]
    run_s, cpu_s = time.perf_counter() - t, time.process_time() - c
    gaps = np.asarray([float(o.nash_gap.nash_gap) for o in outs])
    status = np.asarray([int(o.status) for o in outs])
    return compile_s, run_s, cpu_s, status, gaps


def run_sgamesolver(batch, count):
    np.NaN = np.nan  # noqa: NPY201  sgamesolver 1.0.2 still uses np.NaN, removed in NumPy 2
    import sgamesolver as sg

    times, cpus, gaps, ok = [], [], [], []
    for k in range(count + 1):
        game = one(batch, k if k else 0)
        r = np.asarray(game.reward)
        p = np.asarray(game.transition)
        sgame = sg.SGame(
            [r[:, s] for s in range(r.shape[1])], [p[s] for s in range(p.shape[0])], DISCOUNT
        )
        hom = sg.homotopy.QRE(sgame)
        hom.solver_setup()
        hom.solver.verbose = 0
        t, c = time.perf_counter(), time.process_time()
        result = hom.solver.start()
        elapsed, cpu = time.perf_counter() - t, time.process_time() - c
        if k == 0:
            continue  # warm-up run of the first game
        times.append(elapsed)
        cpus.append(cpu)
        ok.append(bool(result["success"]))
        if hom.equilibrium is not None:
            sigma = np.nan_to_num(hom.equilibrium.strategies)
            policy = tuple(jnp.asarray(sigma[:, i, :a]) for i, a in enumerate(game.num_actions))
            gaps.append(float(jm.nash_gap(game, policy).nash_gap))
        else:
            gaps.append(float("nan"))
    return times, cpus, np.asarray(gaps), ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--sg-games", type=int, default=8)
    parser.add_argument(
        "--loop-games", type=int, default=0, help="games solved one at a time (unbatched jit)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(f"jax {jax.__version__}, backend {jax.default_backend()}, float64, discount {DISCOUNT}")
    print(f"load average at start: {os.getloadavg()}")
    print()
    print(
        "| games | solver | games run | compile s | run s (wall) | per game s (wall) "
        "| per game s (CPU) | converged | NashGap <= 1e-8 | median NashGap | max NashGap "
        "| speed-up (CPU) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, s, actions in SHAPES:
        batch = games(s, actions, args.batch, args.seed)
        compile_s, run_s, cpu_s, out, gap = run_jaxmail(batch)
        per_jm, cpu_jm = run_s / args.batch, cpu_s / args.batch
        conv = np.asarray(out.status) == CONVERGED
        row_jm = (
            f"| {name} | jaxmail qre_homotopy (vmap) | {args.batch} | {compile_s:.1f} | "
            f"{run_s:.2f} | {per_jm:.4f} | {cpu_jm:.4f} | {conv.mean():.1%} | "
            f"{(gap <= 1e-8).mean():.1%} | "
            f"{np.median(gap):.1e} | {gap.max():.1e} |"
        )
        row_loop = None
        if args.loop_games > 0:
            m = args.loop_games
            c_s, r_s, cpu_l, status_l, gap_l = run_jaxmail_loop(batch, m)
            cpu_loop = cpu_l / m
            row_loop = (
                f"| {name} | jaxmail qre_homotopy (jit, one at a time) | {m} | {c_s:.1f} | "
                f"{r_s:.2f} | {r_s / m:.4f} | {cpu_loop:.4f} | "
                f"{np.mean(status_l == CONVERGED):.1%} | {(gap_l <= 1e-8).mean():.1%} | "
                f"{np.median(gap_l):.1e} | {gap_l.max():.1e} |"
            )
        if args.sg_games > 0:
            times, cpus, gaps_sg, ok = run_sgamesolver(batch, args.sg_games)
            per_sg, cpu_sg = statistics.mean(times), statistics.mean(cpus)
            print(row_jm + f" {cpu_sg / cpu_jm:.1f}x |")
            if row_loop is not None:
                print(row_loop + f" {cpu_sg / cpu_loop:.1f}x |")
            print(
                f"| {name} | sgamesolver QRE (one at a time) | {len(times)} | - | "
                f"{sum(times):.2f} | {per_sg:.4f} | {cpu_sg:.4f} | {np.mean(ok):.1%} | "
                f"{np.mean(gaps_sg <= 1e-8):.1%} | {np.nanmedian(gaps_sg):.1e} | "
                f"{np.nanmax(gaps_sg):.1e} | 1x |"
            )
        else:
            print(row_jm + " - |")
            if row_loop is not None:
                print(row_loop + " - |")
        iters = np.asarray(out.iterations)
        print(
            f"<!-- {name}: jaxmail iterations min/median/max {iters.min()}/"
            f"{int(np.median(iters))}/{iters.max()}; statuses "
            f"{np.bincount(np.asarray(out.status), minlength=4).tolist()} "
            "(converged, cap, lost, end reached) -->",
            flush=True,
        )
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
