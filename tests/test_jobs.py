"""``jaxmail reproduce --jobs N`` (jaxmail/_jobs.py): workers, their failures and Ctrl-C.

Every worker here is a tiny Python script (no JAX), so these tests take seconds; that the
workers of a real ``reproduce`` write the same bytes as one process is tests/test_cli.py's
``test_reproduce_in_workers_writes_the_same_files`` (slow).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from jaxmail import _jobs
from jaxmail.cli import main
from jaxmail.experiments import EXPERIMENTS


def _script(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def _interval(path: str, seconds: float) -> list[str]:
    """A worker that writes its start and end times to ``path`` and sleeps ``seconds``."""
    return _script(
        f"""
        import time
        start = time.time()
        time.sleep({seconds})
        with open({path!r}, "w") as f:
            f.write(f"{{start}} {{time.time()}}")
        print("done")
        """
    )


def test_at_most_jobs_workers_at_once_and_all_run(tmp_path):
    paths = [str(tmp_path / f"w{k}") for k in range(5)]
    commands = [(f"w{k}", _interval(p, 0.6)) for k, p in enumerate(paths)]
    ended = []
    outcomes = _jobs.run_all(commands, 2, on_done=ended.append)
    assert sorted(o.name for o in outcomes) == [f"w{k}" for k in range(5)]
    assert ended == outcomes and all(o.code == 0 and o.stdout == "done\n" for o in outcomes)
    spans = [tuple(map(float, open(p).read().split())) for p in paths]
    # The most workers alive at any start time: 2 (jobs), not 1 (they ran side by side) and not
    # more (the limit holds).
    alive = [sum(s <= t < e for s, e in spans) for t, _ in spans]
    assert max(alive) == 2


def test_a_failing_worker_is_reported_and_the_others_still_run(tmp_path):
    fail = _script("import sys; print('partial'); sys.stderr.write('boom\\n'); sys.exit(3)")
    commands = [("bad", fail), ("good", _interval(str(tmp_path / "g"), 0.0))]
    outcomes = {o.name: o for o in _jobs.run_all(commands, 1)}
    assert outcomes["bad"].code == 3 and outcomes["bad"].stderr == "boom\n"
    assert outcomes["bad"].stdout == "partial\n"
    assert outcomes["good"].code == 0 and (tmp_path / "g").exists()
    with pytest.raises(ValueError, match="jobs must be at least 1"):
        _jobs.run_all(commands, 0)


# The parent runs two slow workers and a third that must never start; it interrupts itself
# once both are running. Each worker exits 130 on its (single) SIGINT, as jaxmail's run does.
_INTERRUPTED_PARENT = """
import os, signal, sys, threading, time
from jaxmail import _jobs

# Python's own Ctrl-C handler (a shell's background job starts with SIGINT ignored)
signal.signal(signal.SIGINT, signal.default_int_handler)
marks = sys.argv[1]
worker = '''
import signal, sys, time, os
name = sys.argv[1]
def stop(*_):
    print("SIGINT", flush=True)
    sys.exit(130)
signal.signal(signal.SIGINT, stop)
open(os.path.join(%r, name), "w").close()
time.sleep(60)
''' % marks
commands = [(n, [sys.executable, "-c", worker, n]) for n in ("a", "b", "c")]

def interrupt_when_both_run():
    while len(os.listdir(marks)) < 2:
        time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGINT)

threading.Thread(target=interrupt_when_both_run, daemon=True).start()
ended = []
try:
    _jobs.run_all(commands, 2, on_done=ended.append)
except KeyboardInterrupt:
    print("parent interrupted")
for o in ended:
    print(o.name, o.code, o.stdout.count("SIGINT"))
"""


def test_ctrl_c_reaches_each_running_worker_once_and_starts_no_other(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", _INTERRUPTED_PARENT, str(marks)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "parent interrupted"
    assert sorted(lines[1:]) == ["a 130 1", "b 130 1"]  # one SIGINT each, both exited 130
    assert sorted(os.listdir(marks)) == ["a", "b"]  # "c" never started


_TERMINATED_PARENT = """
import sys
from jaxmail import _jobs

marks = sys.argv[1]
worker = '''
import os, signal, sys, time
mark = os.path.join(%r, sys.argv[1])
def stop(signum, frame):
    open(mark + ".term", "w").close()
    sys.exit(143)
signal.signal(signal.SIGTERM, stop)
open(mark, "w").close()
time.sleep(60)
''' % marks
commands = [(n, [sys.executable, "-c", worker, n]) for n in ("a", "b", "c")]
_jobs.run_all(commands, 2)
print("not reached")
"""


def test_sigterm_of_the_parent_reaches_the_running_workers(tmp_path):
    """Workers run in their own session; a SIGTERM of the parent must not leave them running."""
    import signal
    import time

    marks = tmp_path / "marks"
    marks.mkdir()
    parent = subprocess.Popen(
        [sys.executable, "-c", _TERMINATED_PARENT, str(marks)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while len(os.listdir(marks)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    parent.send_signal(signal.SIGTERM)
    out, err = parent.communicate(timeout=60)
    assert parent.returncode == -signal.SIGTERM, err
    assert "not reached" not in out
    while len(os.listdir(marks)) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(os.listdir(marks)) == ["a", "a.term", "b", "b.term"]  # "c" never started


def test_default_jobs_cpu_and_accelerators(monkeypatch):
    cores = _jobs.usable_cores()
    assert _jobs.default_jobs(5, {"JAX_PLATFORMS": "cpu"}) == max(1, min(5, cores))
    assert _jobs.default_jobs(1, {"JAX_PLATFORMS": "cpu"}) == 1
    for platforms in ("cuda", "cpu,cuda", "tpu", "rocm"):
        assert _jobs.accelerator_possible({"JAX_PLATFORMS": platforms})
        assert _jobs.default_jobs(5, {"JAX_PLATFORMS": platforms}) == 1
    assert not _jobs.accelerator_possible({"JAX_PLATFORM_NAME": "cpu"})
    # Unset: an installed plugin decides.
    monkeypatch.setattr(_jobs, "usable_cores", lambda: 16)
    from importlib import metadata

    monkeypatch.setattr(metadata, "entry_points", lambda group: ["xla_cuda12"])
    assert _jobs.default_jobs(5, {}) == 1
    monkeypatch.setattr(metadata, "entry_points", lambda group: [])
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert _jobs.default_jobs(5, {}) == 5  # CPU only: one per experiment (16 cores)
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: real("json") if name == "libtpu" else None
    )
    assert _jobs.default_jobs(5, {}) == 1


def test_worker_argv_passes_the_reproduce_options():
    argv = _jobs.worker_argv(
        "tag",
        "out/tag",
        quick=True,
        resume=True,
        dtype="float64",
        compile_cache="cache",
        no_compile_cache=False,
    )
    assert argv[:4] == [sys.executable, "-m", "jaxmail.cli", "run"]
    assert argv[4:] == [
        "tag",
        "--out",
        "out/tag",
        "--dtype",
        "float64",
        "--no-progress",
        "--quick",
        "--resume",
        "--compile-cache",
        "cache",
    ]
    off = _jobs.worker_argv(
        "tag", "o", quick=False, resume=False, dtype="float32", compile_cache=None,
        no_compile_cache=True,
    )  # fmt: skip
    assert off[-1] == "--no-compile-cache" and "--quick" not in off


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_bad_jobs_value_exits_2(value, capsys):
    with pytest.raises(SystemExit) as e:
        main(["reproduce", "--jobs", value])
    assert e.value.code == 2
    assert f"expected a whole number >= 1 or 'auto', got {value!r}" in capsys.readouterr().err


def test_reproduce_reports_a_failed_experiment_and_exits_1(monkeypatch, tmp_path, capsys):
    """The parent's side of ``reproduce --jobs 2``, with stand-in workers: each writes an empty
    findings file and prints its line; one fails. Exit 1, the failure named, the others'
    lines printed, and the findings table read from the files of those that finished."""
    failing = "dse-bound"

    def stand_in(name, out_dir, **options):
        if name == failing:
            return _script("import sys; sys.stderr.write('Traceback: boom\\n'); sys.exit(1)")
        return _script(
            f"""
            import json, os
            os.makedirs({out_dir!r}, exist_ok=True)
            with open(os.path.join({out_dir!r}, "findings.json"), "w") as f:
                json.dump([], f)
            print("{name}: 0 rows (stand-in)")
            print()
            print("Findings (not this line)")
            """
        )

    monkeypatch.setattr(_jobs, "worker_argv", stand_in)
    code = main(["reproduce", "--quick", "--out", str(tmp_path), "--jobs", "2", "--no-progress"])
    assert code == 1
    captured = capsys.readouterr()
    assert "Traceback: boom" in captured.err
    assert f"jaxmail: error: experiment {failing!r} failed" in captured.err
    for name in EXPERIMENTS:
        assert (f"{name}: 0 rows (stand-in)" in captured.out) == (name != failing)
    assert "not this line" not in captured.out
    assert captured.out.startswith(f"reproduce: {len(EXPERIMENTS)} experiments, 2 at a time")
    assert json.loads((tmp_path / "tag" / "findings.json").read_text()) == []
