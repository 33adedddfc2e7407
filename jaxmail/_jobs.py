"""``jaxmail reproduce --jobs N``: the experiments side by side, in worker processes.

A cold ``reproduce`` is mostly XLA compiling each experiment's programs, one program at a time;
a warm one is mostly running them, one at a time. On a CPU with several cores the experiments
therefore finish sooner side by side, each in its own process. Each worker runs

    python -m jaxmail.cli run NAME --out DIR/NAME --no-progress [the reproduce options]

so it computes exactly what ``reproduce`` computes in one process: the same configuration
(``run`` without ``--set`` takes the experiment's default one, as ``reproduce`` does), the same
programs and the same files (tests/test_cli.py compares the bytes).

Workers start in their own session, so a Ctrl-C at the terminal reaches only the parent, which
passes one SIGINT to every running worker: each saves its chunk in progress and exits 130, as a
single run does, and the same command with ``--resume`` continues. A SIGTERM or SIGHUP (a closed
terminal) of the parent is passed on to the running workers, which end as a single run would,
and then ends the parent too. A worker that fails does not stop the others.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

# How often the parent looks for a finished worker (seconds).
_POLL = 0.1


class Outcome(NamedTuple):
    """One finished worker.

    Attributes:
      name: the experiment.
      code: the worker's exit code (0 done, 130 interrupted, else failed).
      stdout: what it printed on stdout.
      stderr: what it printed on stderr.
      seconds: its wall time.
    """

    name: str
    code: int
    stdout: str
    stderr: str
    seconds: float


def accelerator_possible(environ: Mapping[str, str] | None = None) -> bool:
    """Whether JAX in a new process may run on something other than the CPU.

    ``JAX_PLATFORMS`` (or the older ``JAX_PLATFORM_NAME``), when set, decides. Otherwise any
    installed PJRT plugin (a ``jax_plugins`` entry point or module: the CUDA and ROCm builds of
    jaxlib) or ``libtpu`` counts as an accelerator. Nothing is imported from JAX: the parent
    of the workers starts no backend (a GPU backend would take the device's memory).
    """
    import importlib.util
    import pkgutil
    from importlib import metadata

    environ = os.environ if environ is None else environ
    platforms = environ.get("JAX_PLATFORMS", "") or environ.get("JAX_PLATFORM_NAME", "")
    if platforms.strip():
        return any(p.strip().lower() not in ("", "cpu") for p in platforms.split(","))
    if list(metadata.entry_points(group="jax_plugins")):
        return True
    spec = importlib.util.find_spec("jax_plugins")
    if spec is not None and spec.submodule_search_locations:
        if any(True for _ in pkgutil.iter_modules(spec.submodule_search_locations)):
            return True
    return importlib.util.find_spec("libtpu") is not None


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity, which a container's CPU set
    limits; ``os.cpu_count()`` where affinity is not available)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_jobs(experiments: int, environ: Mapping[str, str] | None = None) -> int:
    """``--jobs auto``: one worker per experiment, at most one per usable CPU core; 1 (the
    experiments one after another, in this process) where JAX may run on an accelerator,
    whose memory one process takes (:func:`accelerator_possible`)."""
    if accelerator_possible(environ):
        return 1
    return max(1, min(experiments, usable_cores()))


def worker_argv(
    name: str,
    out_dir: str,
    *,
    quick: bool,
    resume: bool,
    dtype: str,
    compile_cache: str | None,
    no_compile_cache: bool,
) -> list[str]:
    """The command of the worker that runs experiment ``name`` into ``out_dir``."""
    argv = [sys.executable, "-m", "jaxmail.cli", "run", name, "--out", out_dir]
    argv += ["--dtype", dtype, "--no-progress"]
    if quick:
        argv.append("--quick")
    if resume:
        argv.append("--resume")
    if compile_cache is not None:
        argv += ["--compile-cache", compile_cache]
    if no_compile_cache:
        argv.append("--no-compile-cache")
    return argv


def run_all(
    commands: Sequence[tuple[str, list[str]]],
    jobs: int,
    *,
    on_done: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Runs the commands, at most ``jobs`` at a time, in the order given.

    Args:
      commands: ``(name, argv)`` pairs.
      jobs: how many run at once (>= 1).
      on_done: called with each :class:`Outcome` as its worker ends (in the order they end).

    Returns:
      The outcomes, in the order the workers ended.

    Raises:
      KeyboardInterrupt: after a Ctrl-C, once every running worker has been sent SIGINT and
        has exited; workers not yet started are not started. The outcomes of the workers that
        ended are reported through ``on_done`` first.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    pending = list(commands)
    running: dict[subprocess.Popen, tuple[str, object, object, float]] = {}
    outcomes: list[Outcome] = []

    def collect(proc: subprocess.Popen) -> None:
        name, out, err, start = running.pop(proc)
        texts = []
        for f in (out, err):
            f.seek(0)
            texts.append(f.read())
            f.close()
        outcome = Outcome(name, proc.returncode, texts[0], texts[1], time.perf_counter() - start)
        outcomes.append(outcome)
        if on_done is not None:
            on_done(outcome)

    def reap() -> bool:
        done = [p for p in running if p.poll() is not None]
        for proc in done:
            collect(proc)
        return bool(done)

    def pass_on(signum: int, frame: object) -> None:
        """SIGTERM / SIGHUP: the running workers get it too, then the parent ends by it."""
        for proc in running:
            if proc.poll() is None:
                proc.send_signal(signum)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    passed_on = _install(pass_on, (signal.SIGTERM, getattr(signal, "SIGHUP", None)))
    try:
        while pending or running:
            while pending and len(running) < jobs:
                name, argv = pending.pop(0)
                out = tempfile.TemporaryFile("w+", encoding="utf-8")
                err = tempfile.TemporaryFile("w+", encoding="utf-8")
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,  # a terminal's Ctrl-C reaches the parent only
                )
                running[proc] = (name, out, err, time.perf_counter())
            if not reap():
                time.sleep(_POLL)
    except KeyboardInterrupt:
        _interrupt(running)
        for proc in list(running):
            collect(proc)
        raise
    finally:
        for signum, previous in passed_on.items():
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
    return outcomes


def _install(handler: Callable, signums: Sequence[int | None]) -> dict[int, object]:
    """Installs ``handler`` for each signal that is not ignored (a ``nohup`` run keeps SIGHUP
    ignored); returns the previous handlers. Only Python's main thread may set handlers:
    elsewhere nothing is installed."""
    import threading

    previous = {}
    if threading.current_thread() is not threading.main_thread():
        return previous
    for signum in signums:
        if signum is None or signal.getsignal(signum) is signal.SIG_IGN:
            continue
        previous[signum] = signal.signal(signum, handler)
    return previous


def _interrupt(running: Mapping[subprocess.Popen, object]) -> None:
    """Sends SIGINT to every running worker and waits for all of them to exit (another Ctrl-C
    meanwhile sends it again)."""
    for proc in running:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    while True:
        try:
            for proc in running:
                proc.wait()
            return
        except KeyboardInterrupt:
            for proc in running:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
