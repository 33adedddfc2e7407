"""``jaxmail reproduce`` timed per experiment, cold and warm, and the dse-bound pipeline over
1 and 4 devices.

Three markdown tables.

1. Every registered experiment run by :func:`jaxmail.experiments.run` (what ``jaxmail reproduce``
   does), at its default sizes (``--quick``: its quick sizes), each in TWO fresh child
   processes that share a persistent compilation cache (:mod:`jaxmail._compile_cache`, as the
   command turns it on): ``cold`` starts from an empty cache, ``warm`` is the second run, which
   reads every program back. Columns: ``programs`` (XLA compilations of the cold run: one per
   distinct program and shape, jit'd or eager, counted from JAX's monitoring event
   ``/jax/core/compile/backend_compile_duration``), ``compile s`` (tracing, lowering and XLA
   backend compilation, summed from JAX's events ``/jax/core/compile/*_duration``; warm: the
   backend part is the cache read), ``trace s warm`` (the part of the warm compile time spent
   tracing and lowering, which the cache cannot save), ``run s`` (the cold run's
   ``wall - compile``: running the programs, Python, files, figures), ``wall s`` and ``CPU s``
   (the run itself, after imports; CPU is user + system of all threads), ``hits`` (programs
   read from the cache by the warm run) and ``same`` (the two runs' ``results.csv`` are
   byte-identical). Wall and compile seconds are wall-clock, so they grow with the machine's
   load; CPU seconds much less.
2. Per experiment, the programs whose cold compilation cost most: name (``jit(...)`` of the
   function JAX compiled), how many shapes of it were compiled, and their total compile seconds
   (tracing + lowering + backend).
3. The ``dse-bound`` pipeline (its per-seed function through
   :func:`jaxmail.experiments.map_seeds`) on 1 and on 4 forced host devices
   (``XLA_FLAGS=--xla_force_host_platform_device_count=4``), each in a child process: compile
   once, then the median of ``--repeats`` runs of a ``--batch``-seed chunk. On a 2-core CPU, four
   "devices" share the same two cores: the row shows what sharding costs or gains there, not a
   multi-GPU speed-up.

4. ``--jobs 1 auto``: the whole ``jaxmail reproduce`` command, as a user runs it, once per
   ``--jobs`` value given, each cold (an empty ``--compile-cache``) and then warm (the same
   cache again): wall and CPU seconds of the process and its workers (``resource`` of the
   children), and whether every ``results.csv`` is byte-identical to the first value's cold run.

Usage::

    python benchmarks/reproduce.py --quick --skip-devices   # quick sizes, tables 1 and 2
    python benchmarks/reproduce.py            # default sizes (several minutes on 2 CPU cores)
    python benchmarks/reproduce.py --only tag,dse-bound --skip-devices
    python benchmarks/reproduce.py --only-devices
    python benchmarks/reproduce.py --quick --jobs 1 auto   # table 4 only (the whole command)
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time

# This checkout's jaxmail, here and in the child processes (python benchmarks/reproduce.py puts
# benchmarks/, not the repository root, on sys.path).
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}

_CHILD = r"""
import json, os, sys, time
import numpy as np
import jax
import jaxmail as jm
from jaxmail import experiments
from jaxmail.experiments import dse_bound

batch, repeats, quick = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
exp = experiments.get("dse-bound")
config = exp.default_config(quick=quick).replace(chunk_size=batch)
setting = exp.settings(config)[0]
keys = experiments.seed_keys(0, np.arange(batch))
start = time.perf_counter()
exp.run_chunk(config, setting, keys)
first = time.perf_counter() - start
times = []
for _ in range(repeats):
    start = time.perf_counter()
    exp.run_chunk(config, setting, keys)
    times.append(time.perf_counter() - start)
print(json.dumps({"devices": jax.device_count(), "setting": setting, "first": first,
                  "run": float(np.median(times))}))
"""


_EXPERIMENT_CHILD = r"""
import collections, json, os, sys, time
import jaxmail  # the XLA guard, before any JAX computation
import jax
from jaxmail import _compile_cache, experiments

name, quick, cache, out = sys.argv[1], sys.argv[2] == "1", sys.argv[3], sys.argv[4]
status = _compile_cache.configure(cache)
assert status.state == "on", status
events = collections.Counter()
programs = collections.defaultdict(lambda: [0, 0.0])  # fun_name -> [compilations, seconds]

def on_duration(event, duration, **kwargs):
    if event.startswith("/jax/core/compile/") and event.endswith("_duration"):
        events["compile"] += duration
        program = programs[kwargs.get("fun_name", "?")]
        program[1] += duration
        if event == "/jax/core/compile/backend_compile_duration":
            program[0] += 1
            events["programs"] += 1
            events["backend"] += duration
        else:
            events["trace"] += duration

def on_event(event, **kwargs):
    if event == "/jax/compilation_cache/cache_hits":
        events["hits"] += 1

jax.monitoring.register_event_duration_secs_listener(on_duration)
jax.monitoring.register_event_listener(on_event)
exp = experiments.get(name)
cpu, wall = time.process_time(), time.perf_counter()
info = experiments.run(exp, exp.default_config(quick=quick), out, progress=False)
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
print(json.dumps({"wall": wall, "cpu": cpu, "rows": info["rows"], **events,
                  "by_program": programs}))
"""


def _run_child(name: str, quick: bool, cache: str, out: str) -> dict:
    env = dict(_ENV)
    for key in ("JAXMAIL_COMPILE_CACHE", "JAX_COMPILATION_CACHE_DIR"):
        env.pop(key, None)
    proc = subprocess.run(
        [sys.executable, "-c", _EXPERIMENT_CHILD, name, "1" if quick else "0", cache, out],
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        raise RuntimeError(f"{name}: the child process failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _same_results(a: str, b: str) -> bool:
    with (
        open(os.path.join(a, "results.csv"), "rb") as fa,
        open(os.path.join(b, "results.csv"), "rb") as fb,
    ):
        return fa.read() == fb.read()


def _experiment_table(quick: bool, only: str, top: int) -> None:
    from jaxmail import experiments

    names = [n for n in experiments.EXPERIMENTS if not only or n in only.split(",")]
    flag = " --quick" if quick else ""
    print(f"## `jaxmail reproduce{flag}`, per experiment, cold and warm compilation cache\n")
    print(f"load average at the start: {os.getloadavg()[0]:.1f}\n")
    print(
        "| experiment | programs | compile s cold | compile s warm | trace s warm | run s | "
        "wall s cold | wall s warm | CPU s cold | CPU s warm | hits | same | rows |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    total = collections.Counter()
    slowest = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            cache = os.path.join(tmp, name, "cache")
            runs = {}
            for kind in ("cold", "warm"):
                runs[kind] = _run_child(name, quick, cache, os.path.join(tmp, name, kind))
            cold, warm = runs["cold"], runs["warm"]
            same = _same_results(os.path.join(tmp, name, "cold"), os.path.join(tmp, name, "warm"))
            for kind, r in runs.items():
                for key in ("wall", "cpu", "compile", "trace"):
                    total[f"{key} {kind}"] += r.get(key, 0.0)
            total["programs"] += cold.get("programs", 0)
            total["hits"] += warm.get("hits", 0)
            print(
                f"| {name} | {cold.get('programs', 0)} | {cold.get('compile', 0.0):.1f} | "
                f"{warm.get('compile', 0.0):.1f} | {warm.get('trace', 0.0):.1f} | "
                f"{cold['wall'] - cold.get('compile', 0.0):.1f} | "
                f"{cold['wall']:.1f} | {warm['wall']:.1f} | {cold['cpu']:.1f} | "
                f"{warm['cpu']:.1f} | {warm.get('hits', 0)} | {'yes' if same else 'NO'} | "
                f"{cold['rows']} |",
                flush=True,
            )
            slowest[name] = cold["by_program"]
    t = total
    print(
        f"| **all** | {t['programs']} | {t['compile cold']:.1f} | {t['compile warm']:.1f} | "
        f"{t['trace warm']:.1f} | "
        f"{t['wall cold'] - t['compile cold']:.1f} | {t['wall cold']:.1f} | {t['wall warm']:.1f} | "
        f"{t['cpu cold']:.1f} | {t['cpu warm']:.1f} | {t['hits']} | | |\n"
    )
    print(f"load average at the end: {os.getloadavg()[0]:.1f}\n")
    print(f"## The {top} programs of each experiment that cost most to compile (cold)\n")
    print("| experiment | program | shapes | compile s |")
    print("|---|---|---|---|")
    for name, by_program in slowest.items():
        for program, (count, seconds) in sorted(by_program.items(), key=lambda kv: -kv[1][1])[:top]:
            print(f"| {name} | `{program}` | {count} | {seconds:.1f} |")
    print()


def _device_table(batch: int, repeats: int, quick: bool) -> None:
    print(f"## dse-bound pipeline, one chunk of {batch} seeds, 1 vs 4 forced host devices\n")
    print("| devices | setting | compile + first run s | run s | seeds/s |")
    print("|---|---|---|---|---|")
    for count in (1, 4):
        env = dict(_ENV)
        flags = env.get("XLA_FLAGS", "")
        env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, str(batch), str(repeats), "1" if quick else "0"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        row = json.loads(out.stdout.strip().splitlines()[-1])
        setting = ", ".join(f"{k}={v}" for k, v in row["setting"].items())
        print(
            f"| {row['devices']} | {setting} | {row['first']:.1f} | {row['run']:.3f} | "
            f"{batch / row['run']:.0f} |",
            flush=True,
        )
    print()


def _command_table(quick: bool, jobs: list[str]) -> None:
    """Table 4: ``jaxmail reproduce [--quick] --jobs J`` cold then warm, for each J."""
    import resource

    from jaxmail import experiments

    flag = " --quick" if quick else ""
    print(f"## `jaxmail reproduce{flag} --jobs J`, the whole command, cold then warm\n")
    print(f"load average at the start: {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs\n")
    print("| --jobs | cold wall s | cold CPU s | warm wall s | warm CPU s | same |")
    print("|---|---|---|---|---|---|")
    env = dict(_ENV)
    for key in ("JAXMAIL_COMPILE_CACHE", "JAX_COMPILATION_CACHE_DIR"):
        env.pop(key, None)
    first = None
    with tempfile.TemporaryDirectory() as tmp:
        for j in jobs:
            cache = os.path.join(tmp, f"cache-{j}")
            cells, same = [], True
            for kind in ("cold", "warm"):
                out = os.path.join(tmp, f"out-{j}-{kind}")
                argv = [sys.executable, "-m", "jaxmail.cli", "reproduce", "--out", out]
                argv += ["--jobs", j, "--no-progress", "--compile-cache", cache]
                argv += ["--quick"] if quick else []
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                start = time.perf_counter()
                proc = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=tmp)
                wall = time.perf_counter() - start
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                if proc.returncode:
                    raise RuntimeError(f"--jobs {j} ({kind}) failed:\n{proc.stderr[-4000:]}")
                cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                cells += [f"{wall:.1f}", f"{cpu:.1f}"]
                first = first or out
                same = same and all(
                    _same_results(os.path.join(first, n), os.path.join(out, n))
                    for n in experiments.EXPERIMENTS
                )
            print(f"| {j} | {' | '.join(cells)} | {'yes' if same else 'NO'} |", flush=True)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--batch", type=int, default=128, help="seeds per dse-bound chunk")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-devices", action="store_true")
    parser.add_argument("--only-devices", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated experiments (default: all)")
    parser.add_argument("--top", type=int, default=5, help="programs listed per experiment")
    parser.add_argument(
        "--jobs",
        nargs="+",
        metavar="J",
        help="only table 4: the whole command with each --jobs value (e.g. 1 auto)",
    )
    args = parser.parse_args()
    if args.jobs:
        _command_table(args.quick, args.jobs)
        return
    if not args.only_devices:
        _experiment_table(args.quick, args.only, args.top)
    if not args.skip_devices:
        _device_table(args.batch, args.repeats, args.quick)


if __name__ == "__main__":
    main()
