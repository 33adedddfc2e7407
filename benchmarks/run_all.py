"""Every benchmark table on one device, in one command.

Runs each benchmark script of this folder as a child process on the chosen device and prints
its markdown table under a heading that names the device, then a summary (wall seconds and exit
status per table). The tables, in order:

* ``nash_gap``: batched NashGap against its floor and the NumPy reference (``nash_gap.py``);
* ``kernels``: solve_mdp, soft_nash_vi / logit_qre iterations, gradient-BC and
  measure-matching steps against their floors and peers (``kernels.py``);
* ``imitation``: the imitation learners batched over seeds against seed by seed
  (``imitation.py``);
* ``equilibria``: soft Nash VI on Tag grids and batched equilibrium solvers (``equilibria.py``);
* ``homotopy``: the logit-QRE homotopy against sgamesolver (``homotopy.py``);
* ``reproduce``: ``jaxmail reproduce`` per experiment, cold and warm (``reproduce.py``).

``--device gpu`` first checks, in a child process, that ``jax.devices("gpu")`` finds a GPU and
that JAX's default backend is that GPU, and stops with exit status 2 and a message on how to
install the CUDA build of jaxlib if not. ``--device cpu`` runs every child with
``JAX_PLATFORMS=cpu``. The children import the ``jaxmail`` of this checkout (its root is put
first on ``PYTHONPATH``).

Sizes: without ``--quick``, sizes meant for a GPU (every table in under 8 minutes there; on the
2-core CPU this takes far longer); with ``--quick``, the smallest sizes of every table, meant
for a CPU (several minutes on 2 cores). A table that fails or runs past ``--timeout`` is
reported in the summary, the others still run, and the exit status is 1.

Usage::

    python benchmarks/run_all.py --device gpu                  # every table on the GPU
    python benchmarks/run_all.py --device cpu --quick          # every table, small, on the CPU
    python benchmarks/run_all.py --device cpu --quick --only nash_gap,kernels
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)

#: ``name -> (script, arguments at GPU sizes, arguments with --quick)``. Only arguments that
#: each script has had for a while are used.
TABLES = {
    "nash_gap": (
        "nash_gap.py",
        ["--states", "16", "64", "256", "--players", "2", "3", "--actions", "2", "4",
         "--batch", "256", "--repeats", "3", "--numpy-games", "2"],
        ["--states", "16", "--players", "2", "--actions", "2", "--batch", "16",
         "--repeats", "2", "--numpy-games", "2"],
    ),
    "kernels": (
        "kernels.py",
        ["--mdp-states", "16", "64", "256", "--batch", "256", "--repeats", "3"],
        ["--quick", "--batch", "16"],
    ),
    "imitation": (
        "imitation.py",
        ["--seeds", "1024", "--repeats", "2", "--loop-seeds", "4"],
        ["--seeds", "16", "--states", "16", "--trajectories", "20", "--bc-steps", "50",
         "--mm-steps", "50", "--repeats", "1", "--loop-seeds", "2"],
    ),
    "equilibria": (
        "equilibria.py",
        ["--repeats", "2"],
        ["--grids", "2x3", "--batch", "8", "--batch-states", "8", "--repeats", "1"],
    ),
    "homotopy": (
        "homotopy.py",
        ["--batch", "64", "--sg-games", "2"],
        ["--batch", "2", "--sg-games", "1"],
    ),
    "reproduce": (
        "reproduce.py",
        ["--skip-devices"],
        ["--quick", "--skip-devices", "--only", "dse-bound"],
    ),
}  # fmt: skip

GPU_HELP = (
    "Install the CUDA build of jaxlib (Linux x86_64 or aarch64 with an NVIDIA driver; the\n"
    "wheels bring CUDA and cuDNN):\n"
    '    pip install -U "jax[cuda12]"\n'
    "then check that JAX sees the GPU:\n"
    '    python -c "import jax; print(jax.devices())"'
)

_PROBE = """
import jax
devices = jax.devices("{kind}")
backend = jax.default_backend()
if backend != devices[0].platform:
    raise SystemExit(f"the default backend is {{backend}}, not the {kind} ({{devices}})")
d = devices[0]
print(f"{{d.device_kind}} x{{len(devices)}} ({{d.platform}}), jax {{jax.__version__}}")
"""


def child_env(device: str) -> dict[str, str]:
    """The children's environment: this checkout first on ``PYTHONPATH``, the platform set."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH")) if p)
    if device == "cpu":
        env["JAX_PLATFORMS"] = "cpu"
    else:
        env.pop("JAX_PLATFORMS", None)  # let JAX pick the GPU
        env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # children run one at a time
    return env


def probe(device: str, env: dict[str, str]) -> str:
    """The device's name as JAX reports it; raises ``SystemExit(2)`` if JAX cannot see it.

    The check runs in a child process, so that this process never holds the device.
    """
    kind = "gpu" if device == "gpu" else "cpu"
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(kind=kind)],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["(no message)"])[-1]
        msg = f"--device {device}: JAX finds no usable {kind.upper()}: "
        msg += f"jax.devices({kind!r}) -> {last}"
        if device == "gpu":
            msg += "\n" + GPU_HELP
        print(msg, file=sys.stderr)
        raise SystemExit(2)
    return out.stdout.strip()


def run_table(name: str, argv: list[str], env, device_name: str, timeout: float):
    """Runs one script, its output passed through; returns ``(status, wall s)``."""
    command = [sys.executable, os.path.join(_HERE, TABLES[name][0]), *argv]
    shown = " ".join(["python", f"benchmarks/{TABLES[name][0]}", *argv])
    print(f"\n## {name} on {device_name}\n", flush=True)
    print(f"`{shown}` (load average {_load()})\n", flush=True)
    start = time.perf_counter()
    try:
        rc = subprocess.run(command, env=env, cwd=_ROOT, timeout=timeout, check=False).returncode
        status = "ok" if rc == 0 else f"failed (exit {rc})"
    except subprocess.TimeoutExpired:
        status = f"timed out after {timeout:.0f} s"
    wall = time.perf_counter() - start
    print(f"\n({name}: {status}, {wall:.1f} s wall)", flush=True)
    return status, wall


def _load() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "gpu"], required=True)
    parser.add_argument("--quick", action="store_true", help="the smallest sizes (for a CPU)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {list(TABLES)}")
    parser.add_argument("--skip", default="", help="comma-separated tables to leave out")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per table")
    args = parser.parse_args(argv)

    def names(text, option):
        chosen = [x.strip() for x in text.split(",") if x.strip()]
        unknown = [x for x in chosen if x not in TABLES]
        if unknown:
            parser.error(f"{option}: unknown table(s) {unknown}; expected some of {list(TABLES)}")
        return chosen

    only, skip = names(args.only, "--only"), names(args.skip, "--skip")
    selected = [n for n in TABLES if (not only or n in only) and n not in skip]
    if args.timeout <= 0:
        parser.error(f"--timeout: expected a positive number of seconds, got {args.timeout}")

    env = child_env(args.device)
    device_name = probe(args.device, env)
    sizes = "quick sizes" if args.quick else "GPU sizes"
    print(f"# run_all: {len(selected)} table(s) on {device_name}, {sizes}; load {_load()}")
    summary = []
    total = time.perf_counter()
    for name in selected:
        argv_table = TABLES[name][2] if args.quick else TABLES[name][1]
        summary.append((name, *run_table(name, argv_table, env, device_name, args.timeout)))
    total = time.perf_counter() - total

    print(f"\n## Summary ({device_name}, {sizes})\n")
    print("| table | status | wall s |")
    print("|---|---|---|")
    for name, status, wall in summary:
        print(f"| {name} | {status} | {wall:.1f} |")
    print(f"| all | | {total:.1f} |")
    print(f"\n# load average at the end {_load()}")
    return 0 if all(status == "ok" for _, status, _ in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
