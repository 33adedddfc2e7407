"""``jaxmail reproduce`` timed per experiment, and the dse-bound pipeline over 1 and 4 devices.

Two markdown tables.

1. Every registered experiment run by :func:`jaxmail.experiments.run` (what ``jaxmail reproduce``
   does) into a temporary directory, at its default sizes (``--quick``: its quick sizes).
   Columns: ``wall s`` (the whole run: computing, files, summary and figures), ``compile s`` (XLA
   backend compilation plus tracing and lowering, summed from JAX's own monitoring events
   ``/jax/core/compile/*_duration``, so programs compiled inside ``jit``, ``vmap``-of-``scan`` and
   eager calls all count), ``rest s`` (``wall - compile``: running the compiled programs, plus
   Python, files and plots), ``rows`` (of ``results.csv``).
2. The ``dse-bound`` pipeline (its per-seed function through
   :func:`jaxmail.experiments.map_seeds`) on 1 and on 4 forced host devices
   (``XLA_FLAGS=--xla_force_host_platform_device_count=4``), each in a child process: compile
   once, then the median of ``--repeats`` runs of a ``--batch``-seed chunk. On a 2-core CPU, four
   "devices" share the same two cores: the row shows what sharding costs or gains there, not a
   multi-GPU speed-up.

Usage::

    python benchmarks/reproduce.py            # default sizes (several minutes on 2 CPU cores)
    python benchmarks/reproduce.py --quick    # quick sizes
    python benchmarks/reproduce.py --skip-devices / --only-devices
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

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


def _experiment_table(quick: bool, only: str) -> None:
    import jax

    import jaxmail  # noqa: F401  (the XLA guard, before any JAX computation)
    from jaxmail import experiments

    compile_seconds = [0.0]

    def listener(event, duration, **kwargs):
        del kwargs
        if event.startswith("/jax/core/compile/") and event.endswith("_duration"):
            compile_seconds[0] += duration

    jax.monitoring.register_event_duration_secs_listener(listener)
    print(f"## `jaxmail reproduce{' --quick' if quick else ''}`, per experiment\n")
    print("| experiment | wall s | compile s | rest s | rows |")
    print("|---|---|---|---|---|")
    total = [0.0, 0.0]
    with tempfile.TemporaryDirectory() as tmp:
        for name, exp in experiments.EXPERIMENTS.items():
            if only and name not in only.split(","):
                continue
            config = exp.default_config(quick=quick)
            compile_seconds[0] = 0.0
            start = time.perf_counter()
            info = experiments.run(exp, config, os.path.join(tmp, name), progress=False)
            wall = time.perf_counter() - start
            total[0] += wall
            total[1] += compile_seconds[0]
            print(
                f"| {name} | {wall:.1f} | {compile_seconds[0]:.1f} | "
                f"{wall - compile_seconds[0]:.1f} | {info['rows']} |",
                flush=True,
            )
    print(f"| **all** | {total[0]:.1f} | {total[1]:.1f} | {total[0] - total[1]:.1f} | |\n")


def _device_table(batch: int, repeats: int, quick: bool) -> None:
    print(f"## dse-bound pipeline, one chunk of {batch} seeds, 1 vs 4 forced host devices\n")
    print("| devices | setting | compile + first run s | run s | seeds/s |")
    print("|---|---|---|---|---|")
    for count in (1, 4):
        env = dict(os.environ)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--batch", type=int, default=128, help="seeds per dse-bound chunk")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-devices", action="store_true")
    parser.add_argument("--only-devices", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated experiments (default: all)")
    args = parser.parse_args()
    if not args.only_devices:
        _experiment_table(args.quick, args.only)
    if not args.skip_devices:
        _device_table(args.batch, args.repeats, args.quick)


if __name__ == "__main__":
    main()
