"""The ``jaxmail`` command.

    jaxmail --version
    jaxmail info                                     # versions and JAX devices
    jaxmail list                                     # the experiments, one line each
    jaxmail run NAME [--seeds N] [--quick] [--out DIR] [--resume] [--dtype float64]
                     [--players N ...] [--set KEY=VALUE ...] [--no-progress]
                     [--compile-cache DIR | --no-compile-cache]
    jaxmail reproduce [--out DIR] [--quick] [--resume] [--dtype float64] [--no-progress]
                      [--compile-cache DIR | --no-compile-cache] [--jobs N]

``run`` writes ``DIR`` (default ``results/NAME``): ``config.json``, ``results.csv``,
``summary.md``, ``findings.json`` and PNG figures, and ends by printing the findings table;
``reproduce`` runs every experiment into ``DIR/NAME`` (default ``DIR = results``) and ends with
one table of every experiment's findings; ``--jobs N`` runs the experiments N at a time in
worker processes (default on a CPU: one per core, at most one per experiment; 1 where JAX may
use an accelerator; :mod:`jaxmail._jobs`). ``--set key=value`` sets any field of the
experiment's configuration (lists as ``0.5,0.9`` or ``[0.5, 0.9]``); ``--players 2 3 4`` is
short for ``--set players=2,3,4``. An interrupted run (Ctrl-C, a killed process) continues
with the same command and ``--resume``.

``run`` and ``reproduce`` keep compiled XLA programs in a persistent cache (default
``$XDG_CACHE_HOME/jaxmail/xla``, i.e. ``~/.cache/jaxmail/xla``), so that a second run skips
compilation; ``--compile-cache DIR`` or ``JAXMAIL_COMPILE_CACHE=DIR`` chooses the directory,
``--no-compile-cache`` or ``JAXMAIL_COMPILE_CACHE=off`` turns it off, and JAX's own cache
settings, when set, are kept (:mod:`jaxmail._compile_cache`).

Exit codes: 0 success; 1 an experiment of ``reproduce --jobs N`` (N > 1) failed (its messages are
printed; the others still ran); 2 a usage error (unknown experiment or configuration key, a bad
value, an output directory that holds another run, is in use by a running one, or cannot be
written); 130 interrupted.

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


def _jobs_value(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1 or 'auto', got {text!r}")
    return value


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
    reproduce.add_argument(
        "--jobs",
        type=_jobs_value,
        default="auto",
        metavar="N",
        help=(
            "run N experiments at a time, each in its own process (same results). Default "
            "auto: one per CPU core, at most one per experiment, or 1 where JAX may use an "
            "accelerator (a GPU's memory goes to one process). 1: one after another in this "
            "process"
        ),
    )
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
    if args.command == "reproduce":
        from jaxmail import _jobs

        workers = args.jobs if args.jobs != "auto" else _jobs.default_jobs(len(jobs))
        if workers > 1:
            return _reproduce_in_workers(jobs, args, workers)
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


def _reproduce_in_workers(jobs: list, args: argparse.Namespace, workers: int) -> int:
    """``reproduce --jobs N`` with N > 1: each experiment in a worker process
    (:mod:`jaxmail._jobs`); each one's summary line as it ends, then every finding."""
    from jaxmail import _jobs
    from jaxmail.experiments import findings

    commands = [
        (
            experiment.name,
            _jobs.worker_argv(
                experiment.name,
                out_dir,
                quick=args.quick,
                resume=args.resume,
                dtype=args.dtype,
                compile_cache=args.compile_cache,
                no_compile_cache=args.no_compile_cache,
            ),
        )
        for experiment, _, out_dir in jobs
    ]
    print(
        f"reproduce: {len(commands)} experiments, {workers} at a time in worker processes "
        "(--jobs 1: one after another in this process)",
        flush=True,
    )
    bar = None
    if not args.no_progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(commands), desc="experiments", unit="exp")
    say = bar.write if bar is not None else print

    def done(outcome: _jobs.Outcome) -> None:
        head = outcome.stdout.split("\nFindings", 1)[0].strip()
        if outcome.stderr:
            sys.stderr.write(outcome.stderr)
        if outcome.code == 0:
            say(head or f"{outcome.name}: done in {outcome.seconds:.1f} s")
        elif outcome.code == 130:
            say(f"{outcome.name}: interrupted after {outcome.seconds:.1f} s")
        else:
            print(
                f"jaxmail: error: experiment {outcome.name!r} failed (its process exited with "
                f"code {outcome.code}; its messages are above)",
                file=sys.stderr,
            )
        if bar is not None:
            bar.update()

    try:
        outcomes = _jobs.run_all(commands, workers, on_done=done)
    except KeyboardInterrupt:
        return 130
    finally:
        if bar is not None:
            bar.close()
    codes = {o.name: o.code for o in outcomes}
    found = []
    for experiment, _, out_dir in jobs:
        if codes[experiment.name] == 0:
            path = os.path.join(out_dir, findings.FINDINGS_FILE)
            found += [(experiment.name, f) for f in findings.read(path)]
    _print_findings(found)
    if any(code == 130 for code in codes.values()):
        return 130
    return 0 if all(code == 0 for code in codes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
