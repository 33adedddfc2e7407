"""Equilibrium solvers with certificates: soft Nash VI on growing Tag grids, and batched solving.

Two markdown tables.

1. ``jm.equilibria.soft_nash_vi`` (temperature ``--temperature``, default 0.1) on two-player
   Tag games (``jm.games.tag``, the paper's defaults: zero-sum, ``gamma = 0.8``) of growing
   grid size. The whole public call (solver loop plus both certificates) is one program,
   ``jax.jit(soft_nash_vi)``. Columns:

   * ``states``, ``transition MB``: ``S = 2 C**2`` (``C = rows * cols``) and the float32
     ``[S, 4, 4, S]`` transition tensor in 10^6 bytes.
   * ``build s``: ``jm.games.tag(rows, cols)`` until its arrays are ready.
   * ``compile s``: ``lower().compile()`` of the solver.
   * ``run s``: median over ``--repeats`` runs of the compiled solver (after one warm-up run);
     one run (no warm-up) for grids run in a child process (``--big``), and the same for their
     ``certificate s``.
   * ``certificate s``: the two certificates alone (``jm.nash_gap`` and
     ``jm.equilibria.soft_nash_gap(..., zero_sum=True)``, one jitted program, on the returned
     policy): the part of ``run s`` that is not the solver's value-iteration loop.
   * ``iterations``, ``converged``: the solver's outer value-iteration steps and stopping flag.
   * ``NashGap``: the certificate, ``max_i`` best-response gain of the returned policy in the
     unregularised game (a regularised equilibrium is NOT a Nash equilibrium: this is the price
     of the entropy bonus, not an error).
   * ``soft gap``: the same in the entropy-regularised game the solver targets (~0 when solved).

   Grids whose transition tensor exceeds ``--big-bytes`` (default 1 GiB; 8x8 has 4 GiB) are
   skipped unless ``--big`` is given; then each runs in a child process with a time limit
   (``--big-timeout``, default 600 s), so that a timeout or an out-of-memory kill is reported
   in the table instead of killing the benchmark.

2. A batch of ``--batch`` random two-player zero-sum games (``jm.games.zero_sum_game``, built
   by ``jax.vmap`` over keys), solved by soft Nash VI and by minimax VI, batched with
   ``jax.jit(jax.vmap(solver))``, and one by one with ``jax.jit(solver)`` in a Python loop
   (compiled once; the loop dispatches every game, then waits for all). Columns:

   * ``compile s``: batched program / single-game program.
   * ``batched run s``, ``one-by-one run s``: medians over ``--repeats`` runs of the whole
     batch; ``speed-up``: one-by-one / batched.
   * ``max NashGap``: the largest unregularised certificate over the batch.
   * ``converged``: fraction of games whose solver met its stopping rule.

   A vmapped ``lax.while_loop`` runs until its slowest game is done (finished games idle), so
   the batched program does the work of ``batch x max iterations``; the comment lines under the
   table give the spread of iterations.

Usage::

    python benchmarks/equilibria.py            # default (a few minutes on 2 CPU cores)
    python benchmarks/equilibria.py --quick    # 2x3, 3x3 and a batch of 32
    python benchmarks/equilibria.py --big      # also 8x8 Tag (4 GiB; child process, 600 s)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxmail as jm  # before any JAX computation: sets the XLA guard

eq = jm.equilibria

DEFAULT_GRIDS = ("2x3", "3x3", "4x4", "5x5", "6x6", "8x8")
QUICK_GRIDS = ("2x3", "3x3")
_ROW_TAG = "@row "  # prefix of the child process's JSON progress lines


def _median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def _grid(text: str) -> tuple[int, int]:
    rows, cols = text.lower().split("x")
    return int(rows), int(cols)


def _layout(grid: str) -> jm.games.TagLayout:
    return jm.games.TagLayout(*_grid(grid))


def _fmt(x, spec=".2f"):
    return "—" if x is None else format(x, spec)


# ----------------------------------------------------------------------------------------------
# Table 1: soft Nash VI on Tag.
# ----------------------------------------------------------------------------------------------


def _soft(game, tau):
    return eq.soft_nash_vi(game, temperature=tau)


def _certificates(game, policy, tau):
    return jm.nash_gap(game, policy), eq.soft_nash_gap(game, policy, temperature=tau, zero_sum=True)


def tag_row(grid, *, temperature, repeats, warm_up, certificate, emit=None):
    """Builds, compiles and runs one Tag row; returns its fields as a dict.

    ``emit(dict)`` (if given) is called after every stage with what is known so far, so that a
    parent process can report a partial row after a timeout.
    """
    layout = _layout(grid)
    row = {
        "grid": grid,
        "states": layout.num_states,
        "mb": layout.transition_bytes(jnp.float32) / 1e6,
    }

    def stage(**fields):
        row.update(fields)
        if emit is not None:
            emit(dict(row))

    t = time.perf_counter()
    game = jm.games.tag(*_grid(grid), max_bytes=None)
    jax.block_until_ready(game)
    stage(build_s=time.perf_counter() - t)

    tau = jnp.asarray(temperature, game.dtype)
    t = time.perf_counter()
    solver = jax.jit(_soft).lower(game, tau).compile()
    stage(compile_s=time.perf_counter() - t)

    if warm_up:
        jax.block_until_ready(solver(game, tau))
    times = []
    for _ in range(max(1, repeats)):
        t = time.perf_counter()
        out = solver(game, tau)
        jax.block_until_ready(out)
        times.append(time.perf_counter() - t)
    stage(
        run_s=float(np.median(times)),
        runs=len(times),
        iterations=int(out.iterations),
        converged=bool(out.converged),
        gap=float(out.nash_gap.nash_gap),
        soft_gap=float(out.soft_nash_gap.nash_gap),
        gap_certified=bool(np.all(out.nash_gap.converged)),
        soft_certified=bool(np.all(out.soft_nash_gap.converged)),
    )
    if certificate:
        cert = jax.jit(_certificates).lower(game, out.policy, tau).compile()
        if warm_up:
            jax.block_until_ready(cert(game, out.policy, tau))
        cert_s = _median_time(lambda: cert(game, out.policy, tau), max(1, repeats))
        stage(certificate_s=cert_s)
    return row


def _tag_child(grid, args):
    """Runs one row in a child process (time limit, memory isolation); returns (row, note)."""
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--child-row",
        grid,
        "--temperature",
        repr(args.temperature),
    ]
    if args.big_no_certificate:
        cmd.append("--big-no-certificate")
    t = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.big_timeout)
        stdout, stderr, code, timed_out = proc.stdout, proc.stderr, proc.returncode, False
    except subprocess.TimeoutExpired as e:
        stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        stderr = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        code, timed_out = None, True
    wall = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB -> GiB (Linux)
    row = {}
    for line in stdout.splitlines():
        if line.startswith(_ROW_TAG):
            row = json.loads(line[len(_ROW_TAG) :])
    if timed_out:
        note = f"timed out after {args.big_timeout:.0f} s (killed)"
    elif code != 0:
        why = f"signal {-code}" if code < 0 else f"exit code {code}"
        if code == -9:
            why += ", likely the out-of-memory killer"
        tail = stderr.strip().splitlines()[-1:] or [""]
        note = f"failed ({why}) {tail[0][:160]}".rstrip()
    else:
        note = None
    extra = f"wall {wall:.0f} s in the child process, peak RSS of child processes {peak:.1f} GiB"
    return row, note, extra


def tag_table(args):
    grids = QUICK_GRIDS if args.quick else tuple(args.grids)
    print(f"## Soft Nash VI (tau = {args.temperature}) on two-player Tag, gamma = 0.8, float32")
    print()
    print(
        "| grid | states | transition MB | build s | compile s | run s | certificate s "
        "| iterations | converged | NashGap | soft gap |"
    )
    print("|---" * 11 + "|")
    notes = []
    for grid in grids:
        layout = _layout(grid)
        big = layout.transition_bytes(jnp.float32) > args.big_bytes
        size = f"| {grid} | {layout.num_states} | {layout.transition_bytes(jnp.float32) / 1e6:.1f} "
        if big and not args.big:
            gib = layout.transition_bytes(jnp.float32) / 2**30
            print(
                size + f"| skipped: {gib:.0f} GiB float32 transition tensor, over "
                f"--big-bytes={args.big_bytes / 2**30:.0f} GiB on a "
                f"{_memory_gib():.0f} GiB, {os.cpu_count()}-core machine; run with --big "
                "| — | — | — | — | — | — | — |",
                flush=True,
            )
            continue
        if big:
            row, failure, extra = _tag_child(grid, args)
            notes.append(f"# {grid}: {extra}" + (f"; {failure}" if failure else ""))
        else:
            row = tag_row(
                grid,
                temperature=args.temperature,
                repeats=args.repeats,
                warm_up=True,
                certificate=True,
            )
            failure = None
        if failure and "run_s" not in row:
            print(
                size + f"| {_fmt(row.get('build_s'))} | {_fmt(row.get('compile_s'))} "
                f"| {failure} | — | — | — | — | — |",
                flush=True,
            )
            continue
        gap = f"{row['gap']:.3g}" + ("" if row["gap_certified"] else " (not certified)")
        soft = f"{row['soft_gap']:.2g}" + ("" if row["soft_certified"] else " (not certified)")
        run = f"{row['run_s']:.3f}" + (" (1 run)" if row["runs"] == 1 else "")
        cert = _fmt(row.get("certificate_s"), ".3f")
        if failure:  # the solve finished, a later stage did not
            cert = failure
        print(
            size + f"| {row['build_s']:.2f} | {row['compile_s']:.2f} | {run} | {cert} "
            f"| {row['iterations']} | {row['converged']} | {gap} | {soft} |",
            flush=True,
        )
    for note in notes:
        print(note)


def _memory_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return float("nan")


# ----------------------------------------------------------------------------------------------
# Table 2: a batch of random zero-sum games, batched vs one by one.
# ----------------------------------------------------------------------------------------------


def _minimax(game, tau):
    del tau  # same signature as _soft
    return eq.minimax_value_iteration(game)


def batch_table(args):
    batch = 32 if args.quick else args.batch
    s, a, gamma = args.batch_states, args.batch_actions, args.batch_discount
    print(
        f"## {batch} random two-player zero-sum games (S = {s}, {a}x{a} actions, "
        f"gamma = {gamma}, float32): batched vs one by one"
    )
    print()
    keys = jax.random.split(jax.random.key(args.seed), batch)
    generate = jax.jit(
        jax.vmap(lambda k: jm.games.zero_sum_game(k, num_states=s, num_actions=a, discount=gamma))
    )
    games = generate(keys)
    jax.block_until_ready(games)
    singles = [jax.tree_util.tree_map(lambda x, i=i: x[i], games) for i in range(batch)]
    jax.block_until_ready(singles)
    tau = jnp.asarray(args.temperature, games.dtype)

    print(
        "| solver | batch | compile s (batched / single) | batched run s | one-by-one run s "
        "| speed-up | max NashGap | converged |"
    )
    print("|---" * 8 + "|")
    notes = []
    for name, fn in ((f"soft Nash VI, tau {args.temperature}", _soft), ("minimax VI", _minimax)):
        t = time.perf_counter()
        batched = jax.jit(jax.vmap(fn, in_axes=(0, None))).lower(games, tau).compile()
        compile_batched = time.perf_counter() - t
        t = time.perf_counter()
        single = jax.jit(fn).lower(singles[0], tau).compile()
        compile_single = time.perf_counter() - t

        out = batched(games, tau)
        jax.block_until_ready(out)
        batched_s = _median_time(lambda c=batched: c(games, tau), args.repeats)

        jax.block_until_ready(single(singles[0], tau))
        ones = [single(g, tau) for g in singles]
        jax.block_until_ready(ones)
        one_s = _median_time(lambda c=single: [c(g, tau) for g in singles], args.repeats)

        gaps = np.asarray(out.nash_gap.nash_gap)
        one_gaps = np.array([float(o.nash_gap.nash_gap) for o in ones])
        iters = np.asarray(out.iterations)
        print(
            f"| {name} | {batch} | {compile_batched:.2f} / {compile_single:.2f} "
            f"| {batched_s:.3f} | {one_s:.3f} | {one_s / batched_s:.2f} "
            f"| {gaps.max():.3g} | {np.mean(np.asarray(out.converged)):.3f} |",
            flush=True,
        )
        certified = np.mean(np.all(np.asarray(out.nash_gap.converged), axis=-1))
        line = (
            f"# {name}: iterations min / median / max {iters.min()} / "
            f"{np.median(iters):.0f} / {iters.max()}; NashGap certificate converged for "
            f"{certified:.3f} of the games; max |batched - one-by-one NashGap| "
            f"{np.max(np.abs(gaps - one_gaps)):.2g}"
        )
        if out.soft_nash_gap is not None:
            line += f"; max soft gap {np.max(np.asarray(out.soft_nash_gap.nash_gap)):.2g}"
        notes.append(line)
        tol = 1e-3 / (1.0 - gamma)
        if np.max(np.abs(gaps - one_gaps)) > tol:
            notes.append(f"# warning: {name}: batched and one-by-one NashGaps differ by > {tol:g}")
    for note in notes:
        print(note)


# ----------------------------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2x3, 3x3 and a batch of 32")
    parser.add_argument(
        "--big",
        action="store_true",
        help="also run grids over --big-bytes (8x8: 4 GiB), in a child process",
    )
    parser.add_argument("--grids", nargs="+", default=list(DEFAULT_GRIDS))
    parser.add_argument("--temperature", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--big-bytes",
        type=int,
        default=2**30,
        help="transition tensors over this many bytes need --big",
    )
    parser.add_argument(
        "--big-timeout",
        type=float,
        default=600.0,
        help="seconds allowed to each big grid's child process",
    )
    parser.add_argument(
        "--big-no-certificate",
        action="store_true",
        help="big grids: do not time the certificates separately",
    )
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--batch-states", type=int, default=16)
    parser.add_argument("--batch-actions", type=int, default=4)
    parser.add_argument("--batch-discount", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-tag", action="store_true", help="table 2 only")
    parser.add_argument("--skip-batch", action="store_true", help="table 1 only")
    parser.add_argument("--child-row", help=argparse.SUPPRESS)  # one Tag row, JSON lines out
    args = parser.parse_args(argv)

    if args.child_row:

        def emit(row):
            print(_ROW_TAG + json.dumps(row), flush=True)

        tag_row(
            args.child_row,
            temperature=args.temperature,
            repeats=1,
            warm_up=False,
            certificate=not args.big_no_certificate,
            emit=emit,
        )
        return

    flags = os.environ.get("XLA_FLAGS")
    print(f"# jax {jax.__version__}, devices {jax.devices()}, XLA_FLAGS={flags}")
    print(f"# {os.cpu_count()} CPU cores, {_memory_gib():.0f} GiB memory; wall-clock timings")
    jax.block_until_ready(jnp.zeros(()) + 1)  # start the backend before timing anything
    if not args.skip_tag:
        tag_table(args)
        print()
    if not args.skip_batch:
        batch_table(args)


if __name__ == "__main__":
    main()
