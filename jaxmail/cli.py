"""The ``jaxmail`` command.

    jaxmail --version
    jaxmail info                                     # versions and JAX devices
    jaxmail list                                     # the experiments, one line each
    jaxmail run NAME [--seeds N] [--quick] [--out DIR] [--resume] [--dtype float64]
                     [--players N ...] [--set KEY=VALUE ...] [--no-progress]
                     [--compile-cache DIR | --no-compile-cache]
    jaxmail reproduce [--out DIR] [--quick] [--resume] [--dtype float64] [--no-progress]
                      [--compile-cache DIR | --no-compile-cache]

``run`` writes ``DIR`` (default ``results/NAME``): ``config.json``, ``results.csv``,
``summary.md``, ``findings.json`` and PNG figures, and ends by printing the findings table;
``reproduce`` runs every experiment into ``DIR/NAME`` (default ``DIR = results``) and ends with
one table of every experiment's findings. ``--set key=value`` sets any field of the
experiment's configuration (lists as ``0.5,0.9`` or ``[0.5, 0.9]``); ``--players 2 3 4`` is
short for ``--set players=2,3,4``. An interrupted run (Ctrl-C, a killed process) continues
with the same command and ``--resume``.

``run`` and ``reproduce`` keep compiled XLA programs in a persistent cache (default
``$XDG_CACHE_HOME/jaxmail/xla``, i.e. ``~/.cache/jaxmail/xla``), so that a second run skips
compilation; ``--compile-cache DIR`` or ``JAXMAIL_COMPILE_CACHE=DIR`` chooses the directory,
``--no-compile-cache`` or ``JAXMAIL_COMPILE_CACHE=off`` turns it off, and JAX's own cache
settings, when set, are kept (:mod:`jaxmail._compile_cache`).

Exit codes: 0 success; 2 a usage error (unknown experiment or configuration key, a bad value,
an output directory that holds another run, is in use by a running one, or cannot be written);
130 interrupted.

Ctrl-C (SIGINT) is honoured from the first second: the handler records it before raising
``KeyboardInterrupt``, so that even when the exception is swallowed (JAX's callbacks, run by the
garbage collector, print "Exception ignored" and carry on) the run stops after the chunk in
progress is saved and the command exits 130.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import types


def _parse_set(items: list[str]) -> dict:
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            overrides[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key.strip()] = value
    return overrides


def _config(experiment, args) -> object:
    overrides = _parse_set(getattr(args, "set", None) or [])
    if getattr(args, "seeds", None) is not None:
        overrides["seeds"] = args.seeds
    if getattr(args, "players", None):
        if "players" not in experiment.config_type.field_names():
            raise ValueError(f"--players: experiment {experiment.name!r} has no 'players' setting")
        overrides["players"] = list(args.players)
    return experiment.default_config(quick=args.quick, **overrides)


class _Interrupts:
    """Records SIGINT, then raises ``KeyboardInterrupt`` as Python's default handler does."""

    def __init__(self):
        self.count = 0

    def __call__(self, signum: int, frame: types.FrameType | None) -> None:
        self.count += 1
        raise KeyboardInterrupt

    def stop_at_chunk(self, computed: int) -> None:
        """The runner's ``on_chunk`` hook: a swallowed Ctrl-C stops the run here."""
        if self.count:
            raise KeyboardInterrupt


_INTERRUPTS = _Interrupts()


def _run_one(experiment, config, out_dir, args) -> None:
    from jaxmail.experiments import runner

    start = time.perf_counter()
    report = runner.run(
        experiment,
        config,
        out_dir,
        resume=args.resume,
        progress=not args.no_progress,
        dtype=args.dtype,
        on_chunk=_INTERRUPTS.stop_at_chunk,
    )
    elapsed = time.perf_counter() - start
    figures = ", ".join(os.path.basename(f) for f in report["figures"] or [])
    print(
        f"{experiment.name}: {report['rows']} rows ({report['computed_chunks']} chunks computed, "
        f"{report['skipped_chunks']} already done) in {elapsed:.1f} s -> {out_dir} "
        f"[config.json, results.csv, summary.md, findings.json"
        f"{', ' + figures if figures else ''}]"
    )
    return report["findings"] or []


def _print_findings(found: list) -> None:
    """One table of every experiment's findings (verdicts computed from counts)."""
    from jaxmail.experiments import findings

    if not found:
        return
    failed = sum(f.status == "failed" for _, f in found)
    evidence = sum(f.evidence and f.status == "held" for _, f in found)
    print()
    print("Findings (margin <= 1 holds; kind: evidence, identity, or in-sample):")
    names = [n for n, _ in found]
    print(findings.markdown([f for _, f in found], experiments=names), end="")
    print(
        f"{len(found)} findings: {evidence} held as evidence, {failed} failed, "
        f"{sum(f.status == 'untested' for _, f in found)} untested, "
        f"{sum(not f.evidence for _, f in found)} identities or in-sample checks."
    )


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="small sizes (CI, a first look)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue a stopped run in the output directory (same options as before)",
    )
    parser.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        default="float32",
        help="float64 turns on jax_enable_x64 for the run (default float32)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument(
        "--compile-cache",
        metavar="DIR",
        help=(
            "keep compiled XLA programs in DIR, so that the next run skips compiling them "
            "(default: JAX's own cache settings if you set them, e.g. JAX_COMPILATION_CACHE_DIR; "
            "else $JAXMAIL_COMPILE_CACHE, where 0 or off turns it off; else "
            "$XDG_CACHE_HOME/jaxmail/xla, i.e. ~/.cache/jaxmail/xla). The results are the same "
            "with and without the cache"
        ),
    )
    cache.add_argument(
        "--no-compile-cache",
        action="store_true",
        help="no persistent compilation cache for this run (every program is compiled)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaxmail",
        description=(
            "jaxmail: exploitability of multi-agent imitation learning. Batched JAX kernels "
            "for n-player general-sum Markov games (values, occupancies, best responses, "
            "Nash gaps) and the experiments that test the paper's results."
        ),
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("info", help="print the versions of jaxmail and JAX and the JAX devices")
    sub.add_parser("list", help="list the experiments, one line each")
    run = sub.add_parser("run", help="run one experiment")
    run.add_argument("name", help="experiment name (see `jaxmail list`)")
    run.add_argument("--seeds", type=int, help="number of seeds (default: the experiment's)")
    run.add_argument("--out", help="output directory (default results/NAME)")
    run.add_argument(
        "--players", type=int, nargs="+", metavar="N", help="player counts, e.g. --players 2 3 4"
    )
    run.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="set a configuration field (repeatable), e.g. --set discounts=0.8,0.9",
    )
    _add_run_options(run)
    reproduce = sub.add_parser("reproduce", help="run every experiment into OUT/<name>/")
    reproduce.add_argument("--out", default="results", help="output directory (default results)")
    _add_run_options(reproduce)
    return parser


def _error(message: str) -> int:
    print(f"jaxmail: error: {message}", file=sys.stderr)
    return 2


_INTERRUPTED = (
    "\njaxmail: interrupted; every finished chunk is saved. Run the same command with "
    "--resume to continue."
)


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit code (module docstring)."""
    handler = None
    _INTERRUPTS.count = 0  # only this call's Ctrl-C counts (a handler may stay uninstalled)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not in a test harness
        handler = signal.signal(signal.SIGINT, _INTERRUPTS)
    try:
        code = _main(argv)
    except KeyboardInterrupt:
        code = 130
    finally:
        if handler is not None:
            signal.signal(signal.SIGINT, handler)
    if code != 130 and _INTERRUPTS.count:  # a Ctrl-C that something swallowed
        code = 130
    if code == 130:
        print(_INTERRUPTED, file=sys.stderr)
    return code


def _main(argv: list[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.version:
        from jaxmail import __version__

        print(__version__)
        return 0
    if args.command == "info":
        import jax

        import jaxmail

        print(f"jaxmail {jaxmail.__version__}")
        print(f"jax {jax.__version__}")
        print(f"devices: {', '.join(str(d) for d in jax.devices())}")
        return 0
    if args.command is None:
        parser.print_help()
        return 0

    import jaxmail  # noqa: F401  (its XLA guard goes in before JAX starts a backend)
    from jaxmail import experiments

    if args.command in ("run", "reproduce"):  # before anything is compiled
        from jaxmail import _compile_cache

        _compile_cache.configure(args.compile_cache, disable=args.no_compile_cache)

    if args.command == "list":
        width = max(len(name) for name in experiments.EXPERIMENTS)
        for name, experiment in experiments.EXPERIMENTS.items():
            print(f"{name:<{width}}  {experiment.description}")
        return 0
    from jaxmail.experiments import runner

    try:
        if args.command == "run":
            experiment = experiments.get(args.name)
            jobs = [
                (
                    experiment,
                    _config(experiment, args),
                    args.out or os.path.join("results", args.name),
                )
            ]
        else:  # reproduce
            jobs = [
                (e, e.default_config(quick=args.quick), os.path.join(args.out, e.name))
                for e in experiments.EXPERIMENTS.values()
            ]
        for experiment, config, out_dir in jobs:  # every check before any computation
            runner.check_out_dir(experiment, config, out_dir, resume=args.resume, dtype=args.dtype)
    except (experiments.UnknownExperimentError, experiments.ResumeError, ValueError) as e:
        return _error(str(e))
    found = []
    try:
        for experiment, config, out_dir in jobs:
            found += [(experiment.name, f) for f in _run_one(experiment, config, out_dir, args)]
        _print_findings(found)
    except experiments.ResumeError as e:
        return _error(str(e))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
