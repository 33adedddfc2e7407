"""The ``jaxmail`` command: list, run, reproduce, and its errors (exit code 2).

``reproduce --quick --jobs 1`` runs in this process (``main([...])``) once per module, so that
the compilations it makes serve the other tests of the session too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

import jaxmail
from jaxmail.cli import main
from jaxmail.experiments import EXPERIMENTS, dse_bound

# The constructions' closed forms at gamma = 0.9 (docs/theory.md): Lemma 1 (5/3)/(1-gamma);
# Theorem 2 gamma/(1-gamma); Lemma 2 (gamma - gamma^(k+1))/(1-gamma) with k = 57 (eps = 0.05).
DERIVED_GAPS = {"lemma1": 16.667, "theorem2": 9.000, "lemma2": 8.978}


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce") / "results"
    assert main(["reproduce", "--quick", "--out", str(out), "--no-progress", "--jobs", "1"]) == 0
    return out


def _summary_row(summary: str, game: str, quantity: str) -> tuple[float, float]:
    """``(derived, ours)`` of the row ``| game | 0.9 | quantity | paper | derived | ours |...``."""
    pattern = (
        rf"^\| {re.escape(game)} \| 0\.9 \| {re.escape(quantity)} \| [^|]* \| ([^|]+) \| "
        r"([^|]+) \|"
    )
    match = re.search(pattern, summary, flags=re.MULTILINE)
    assert match, f"no row for {game} / {quantity} in\n{summary}"
    return float(match.group(1)), float(match.group(2))


def test_version_and_info(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == jaxmail.__version__
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "jaxmail" in out and "devices:" in out


def test_list(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(EXPERIMENTS)
    assert [line.split()[0] for line in lines] == list(EXPERIMENTS)
    assert {"counterexamples", "dse-bound"} <= set(EXPERIMENTS)
    for line, experiment in zip(lines, EXPERIMENTS.values()):
        assert line.endswith(experiment.description)


def test_console_script_list():
    command = shutil.which("jaxmail")
    argv = [command] if command else [sys.executable, "-m", "jaxmail.cli"]
    proc = subprocess.run([*argv, "list"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "counterexamples" in proc.stdout and "dse-bound" in proc.stdout


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "no-such-thing"], "unknown experiment 'no-such-thing'; known experiments: "),
        (["run", "dse-bound", "--set", "bogus=1"], "unknown configuration key(s) ['bogus']"),
        (["run", "dse-bound", "--set", "num_states=many"], "num_states: expected an integer"),
        (["run", "dse-bound", "--set", "oops"], "--set expects KEY=VALUE"),
        (["run", "dse-bound", "--seeds", "0"], "seeds: expected an int >= 1, got 0"),
        (["run", "counterexamples", "--players", "2"], "has no 'players' setting"),
    ],
)
def test_usage_errors_exit_2(argv, message, capsys, tmp_path):
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxmail: error: ") and message in err
    assert not (tmp_path / "out").exists()  # nothing ran


def test_reproduce_quick_matches_the_paper(reproduced):
    for experiment in EXPERIMENTS.values():
        names = set(os.listdir(reproduced / experiment.name))
        assert {"config.json", "results.csv", "summary.md"} <= names
        assert any(name.endswith(".png") for name in names)
        record = json.loads((reproduced / experiment.name / "config.json").read_text())
        assert record["config"] == experiment.config_type.quick().to_dict()
    summary = (reproduced / "counterexamples" / "summary.md").read_text()
    for game, expected in DERIVED_GAPS.items():
        derived, ours = _summary_row(summary, game, "NashGap(learner)")
        assert derived == pytest.approx(expected, abs=1e-3)
        assert ours == pytest.approx(expected, abs=2e-3)  # 3 decimals in the table
    assert _summary_row(summary, "lemma2", "chain length k") == (57, 57)
    derived, ours = _summary_row(summary, "lemma2", "eps_BC")
    assert derived == pytest.approx(0.00444, rel=1e-2) and ours == pytest.approx(derived, rel=1e-2)
    assert _summary_row(summary, "lemma1", "eps_mu")[1] == pytest.approx(0.0, abs=1e-5)
    assert _summary_row(summary, "theorem2", "eps_rho")[1] == pytest.approx(0.0, abs=1e-5)
    assert "0 do not" in summary
    found = json.loads((reproduced / "counterexamples" / "findings.json").read_text())
    assert found and all(f["violations"] == 0 for f in found if f["checked"]), found
    dse = (reproduced / "dse-bound" / "summary.md").read_text()
    assert re.search(r"NashGap of \d+ policies \(exact best responses\): 0 exceeded", dse), dse


def test_reproduce_resume_and_protection(reproduced, capsys):
    before = {name: (reproduced / name / "results.csv").read_bytes() for name in EXPERIMENTS}
    argv = ["reproduce", "--quick", "--out", str(reproduced), "--no-progress", "--jobs", "1"]
    # Without --resume: refused before anything runs.
    assert main(argv) == 2
    assert "--resume" in capsys.readouterr().err
    # With it: nothing left to compute.
    assert main([*argv, "--resume"]) == 0
    out = capsys.readouterr().out
    assert out.count("0 chunks computed") == len(EXPERIMENTS)
    for name, content in before.items():
        assert (reproduced / name / "results.csv").read_bytes() == content
    # Another configuration into the same directory: refused.
    argv = ["run", "dse-bound", "--quick", "--seeds", "3", "--resume", "--no-progress"]
    assert main([*argv, "--out", str(reproduced / "dse-bound")]) == 2
    assert "config.seeds: 16 in the file, 3 now" in capsys.readouterr().err


def test_reproduce_in_workers_writes_the_same_files(reproduced, tmp_path, capsys):
    """``reproduce --jobs 2``: every experiment in a worker process (jaxmail/_jobs.py), the same
    bytes as the fixture's one-process run. The workers read the programs the fixture compiled
    from this test run's compilation cache (tests/conftest.py)."""
    import jax

    out = tmp_path / "workers"
    cache = jax.config.jax_compilation_cache_dir
    argv = ["reproduce", "--quick", "--out", str(out), "--no-progress", "--jobs", "2"]
    assert main([*argv, "--compile-cache", cache]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"reproduce: {len(EXPERIMENTS)} experiments, 2 at a time")
    for name in EXPERIMENTS:
        for file in ("results.csv", "summary.md", "findings.json"):
            assert (out / name / file).read_bytes() == (reproduced / name / file).read_bytes()
        # config.json: the same record, less the resumes another test may have added
        ours, theirs = (
            json.loads((d / name / "config.json").read_text()) for d in (out, reproduced)
        )
        assert ours.pop("resumes", []) == []
        theirs.pop("resumes", None)
        assert ours == theirs
        assert re.search(rf"^{re.escape(name)}: \d+ rows \(\d+ chunks computed", text, re.M)
    assert "Findings (margin <= 1 holds" in text


def test_run_with_players_and_seeds(reproduced, tmp_path, capsys):
    argv = ["run", "dse-bound", "--quick", "--players", "2", "--seeds", "8", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path)]) == 0  # compiled already by reproduce
    record = json.loads((tmp_path / "config.json").read_text())
    assert record["config"]["players"] == [2] and record["config"]["seeds"] == 8
    lines = (tmp_path / "results.csv").read_text().splitlines()
    config = dse_bound.DSEBoundConfig.quick(players=[2], seeds=8)
    rows = 8 * sum(dse_bound.rows_per_seed(config, s["family"]) for s in dse_bound.settings(config))
    assert len(lines) == 1 + rows
    # the same seeds as in the reproduce run (16 seeds): the same rows
    reference = (reproduced / "dse-bound" / "results.csv").read_text().splitlines()
    assert lines[0] == reference[0] and set(lines[1:]) <= set(reference[1:])
    assert f"dse-bound: {rows} rows" in capsys.readouterr().out


def test_keyboard_interrupt_exits_130(monkeypatch, tmp_path, capsys):
    from jaxmail.experiments import runner

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run", interrupted)
    assert main(["run", "counterexamples", "--quick", "--out", str(tmp_path)]) == 130
    assert "--resume" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# The output directory and signals.

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _default_sigint() -> None:
    """In the child before exec: SIGINT to its default action. A shell that starts the test run
    in the background (``pytest ... &``) sets SIGINT to "ignored", which children inherit; then
    the CLI's Ctrl-C could not be tested."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _cli(*argv: str) -> subprocess.Popen:
    """``python -m jaxmail.cli ...`` with this checkout's jaxmail."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, "-m", "jaxmail.cli", *argv],
        cwd=ROOT,
        env=env,
        preexec_fn=_default_sigint,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_second_writer_exits_2(tmp_path, capsys):
    """Another process holds ``--out``: refused with one line; the lock dies with its holder."""
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(  # flock on out/.lock, as a running jaxmail holds it
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys\n"
            f"fd = os.open({str(out / '.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "os.write(fd, b'%d\\n' % os.getpid())\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        argv = ["run", "counterexamples", "--quick", "--no-progress", "--out", str(out)]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("jaxmail: error: output directory") and err.count("\n") == 1
        assert f"in use by another run (process {holder.pid})" in err
        assert sorted(os.listdir(out)) == [".lock"]
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    from jaxmail.experiments import runner

    with runner.lock_out_dir(out):  # free again once its holder is gone
        pass


@pytest.mark.parametrize("case", ["file", "below a file", "system folder"])
def test_unusable_out_exits_2(tmp_path, capsys, case):
    (tmp_path / "file").write_text("")
    out = {
        "file": tmp_path / "file",
        "below a file": tmp_path / "file" / "sub",
        "system folder": "/proc/jaxmail-out",  # read-only for everyone, root included
    }[case]
    if case == "system folder" and not os.path.isdir("/proc"):
        pytest.skip("no /proc")
    assert main(["run", "counterexamples", "--quick", "--no-progress", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"jaxmail: error: output directory '{out}'") and err.count("\n") == 1


def test_a_swallowed_ctrl_c_still_exits_130(monkeypatch, tmp_path, capsys):
    """JAX's gc callbacks can swallow the KeyboardInterrupt; the recorded signal stops the run."""
    import signal

    from jaxmail.experiments import runner

    chunks = []

    def run(experiment, config, out_dir, *, on_chunk, **kwargs):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            signal.sigtimedwait([], 1.0) if hasattr(signal, "sigtimedwait") else None
        except KeyboardInterrupt:
            pass  # swallowed, as "Exception ignored in ... KeyboardInterrupt"
        chunks.append(1)
        on_chunk(1)  # the chunk boundary: the run must stop here
        chunks.append(2)
        return {"rows": 0, "computed_chunks": 1, "skipped_chunks": 0, "figures": []}

    monkeypatch.setattr(runner, "run", run)
    # Python's own handler, as in a terminal (a run started in the background by a shell
    # begins with SIGINT ignored, and the CLI then leaves the handler alone).
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert main(["run", "counterexamples", "--quick", "--out", str(tmp_path / "out")]) == 130
        assert chunks == [1]
        assert "interrupted" in capsys.readouterr().err
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    finally:
        signal.signal(signal.SIGINT, outer)


@pytest.mark.slow  # a subprocess experiment run (about 36 s CPU)
def test_ctrl_c_after_one_second_exits_130(tmp_path):
    """SIGINT 1 s after start: the run never completes as if nothing happened (exit 0).

    While Python still imports JAX (jaxmail's package import, before the CLI's handler exists)
    the interpreter dies by SIGINT (the shell reports 130) or, when the interrupt lands in an
    extension module's initialisation, with an ImportError (exit 1); from then on the CLI
    returns 130 itself."""
    import signal
    import time

    proc = _cli("run", "counterexamples", "--quick", "--no-progress", "--out", str(tmp_path))
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    # KNOWN BUG, tolerated only with its evidence: a Ctrl-C that lands while the package still
    # imports JAX (before the CLI has a handler) can be swallowed by JAX's gc callback, which
    # prints "Exception ignored in: <function _xla_gc_callback ...> ... KeyboardInterrupt", and
    # the run then completes (exit 0). Any other exit 0 fails.
    swallowed_in_import = "_xla_gc_callback" in err and "KeyboardInterrupt" in err
    if proc.returncode == 0 and swallowed_in_import:
        pytest.xfail("Ctrl-C swallowed by JAX's gc callback during import (known bug)")
    assert proc.returncode in (130, -signal.SIGINT, 1), err
    assert not (tmp_path / "summary.md").exists()
    if proc.returncode == 130:
        assert "jaxmail: interrupted" in err


@pytest.mark.slow
def test_ctrl_c_during_the_first_chunk_exits_130(tmp_path):
    """SIGINT once the run has started (config.json written), typically while XLA compiles the
    first chunk, where JAX's gc callback may swallow the KeyboardInterrupt."""
    import signal
    import time

    proc = _cli("run", "counterexamples", "--quick", "--no-progress", "--out", str(tmp_path))
    deadline = time.monotonic() + 120
    while not (tmp_path / "config.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "jaxmail: interrupted" in err
    assert not (tmp_path / "summary.md").exists()  # stopped before the end


# ----------------------------------------------------------------------------------------------
# The persistent compilation cache (jaxmail/_compile_cache.py).

# One setting, one seed: the smallest run that compiles a real experiment program.
_TINY = ("run", "counterexamples", "--quick", "--no-progress")
_TINY_SET = ("--set", "games=lemma1", "--set", "learners=hand-made")
_HIT = "Persistent compilation cache hit"  # JAX's log line when JAX_LOG_COMPILES is on
_TRACED = "Finished tracing export("  # ... when a per-seed program is traced for its export
_MPL_CACHE = os.environ.get("MPLCONFIGDIR") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
    "matplotlib",
)


def _cache_env(**overrides: str) -> dict[str, str]:
    """This checkout's jaxmail, JAX's compile log on, and no cache setting but ``overrides``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAXMAIL_", "JAX_"))}
    env["PYTHONPATH"] = os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])
    env["JAX_LOG_COMPILES"] = "1"
    env["MPLCONFIGDIR"] = _MPL_CACHE  # matplotlib's font cache stays where it is
    return {**env, **overrides}


def _tiny_run(out, *extra: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "jaxmail.cli", *_TINY, *_TINY_SET, "--out", str(out), *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen) -> str:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return err


def _entries(path) -> set[str]:
    return set(os.listdir(path)) if os.path.isdir(path) else set()


@pytest.mark.slow  # three child processes compile an experiment (about 40 s CPU)
def test_compile_cache_serves_a_second_process(tmp_path):
    """Cold run: programs are written to the cache. Warm run (a new process, the directory from
    JAXMAIL_COMPILE_CACHE): every program is read back (hits, no new entry).
    ``--no-compile-cache``, even against JAX's own JAX_COMPILATION_CACHE_DIR, reads and writes
    nothing (``JAXMAIL_COMPILE_CACHE=off``: test_compile_cache_precedence). An unusable
    directory: one warning line, and the run completes without a cache. results.csv is
    byte-identical in all four."""
    cache = tmp_path / "cache"
    err = _finish(_tiny_run(tmp_path / "cold", "--compile-cache", str(cache), env=_cache_env()))
    written = _entries(cache)
    assert written, "the cold run wrote no cache entry"
    assert _HIT not in err
    # The traced per-seed program is kept beside the compiled ones (jaxmail/_program_cache.py).
    programs = _entries(cache / "jaxmail-programs")
    assert programs and all(p.endswith(".jaxexport") for p in programs), programs
    assert _TRACED in err
    (tmp_path / "file").write_text("")
    runs = {  # three processes at once
        "warm": _tiny_run(tmp_path / "warm", env=_cache_env(JAXMAIL_COMPILE_CACHE=str(cache))),
        "flag": _tiny_run(
            tmp_path / "flag",
            "--no-compile-cache",
            env=_cache_env(JAX_COMPILATION_CACHE_DIR=str(cache)),
        ),
        "unusable": _tiny_run(
            tmp_path / "unusable", "--compile-cache", str(tmp_path / "file"), env=_cache_env()
        ),
    }
    errs = {name: _finish(proc) for name, proc in runs.items()}
    assert _HIT in errs["warm"]
    assert _TRACED not in errs["warm"]  # read back, not traced
    assert _TRACED in errs["flag"]  # no cache: traced again
    assert _entries(cache / "jaxmail-programs") == programs
    assert _HIT not in errs["flag"] and _HIT not in errs["unusable"]
    said = [line for line in errs["unusable"].splitlines() if line.startswith("jaxmail:")]
    assert len(said) == 1, errs["unusable"]
    assert said[0].startswith(f"jaxmail: warning: compilation cache '{tmp_path / 'file'}'")
    assert _entries(cache) == written  # the warm run compiled nothing new, the others wrote none
    cold = (tmp_path / "cold" / "results.csv").read_bytes()
    for name in runs:
        assert (tmp_path / name / "results.csv").read_bytes() == cold, name


def test_library_import_leaves_the_cache_off():
    """Importing jaxmail (and its CLI module) changes none of JAX's cache settings."""
    code = (
        "import jaxmail, jaxmail.experiments, jaxmail.cli, jax\n"
        "print(jax.config.jax_compilation_cache_dir, "
        "jax.config.jax_persistent_cache_min_compile_time_secs)\n"
    )
    env = _cache_env()
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["None", "1.0"]  # JAX's defaults


@pytest.fixture
def jax_cache_config():
    """Restores JAX's cache settings that :func:`_compile_cache.configure` changes."""
    import jax

    names = (
        "jax_compilation_cache_dir",
        "jax_enable_compilation_cache",
        "jax_persistent_cache_min_compile_time_secs",
    )
    saved = {name: getattr(jax.config, name) for name in names}
    yield
    for name, value in saved.items():
        jax.config.update(name, value)


@pytest.mark.usefixtures("jax_cache_config")
def test_compile_cache_precedence(tmp_path):
    """Flag > JAX's own settings > JAXMAIL_COMPILE_CACHE > $XDG_CACHE_HOME/jaxmail/xla."""
    import jax

    from jaxmail import _compile_cache as cc

    # The test run's own shared cache (tests/conftest.py) is JAX's setting here: start without.
    jax.config.update("jax_compilation_cache_dir", None)
    xdg = tmp_path / "xdg"
    assert cc.default_dir({"XDG_CACHE_HOME": str(xdg)}) == str(xdg / "jaxmail" / "xla")
    home = os.path.expanduser("~")
    for env in ({}, {"XDG_CACHE_HOME": "relative/path"}):  # XDG: a relative path is ignored
        assert cc.default_dir(env) == os.path.join(home, ".cache", "jaxmail", "xla")

    status = cc.configure(environ={"XDG_CACHE_HOME": str(xdg)})
    assert status == cc.CacheStatus("on", str(xdg / "jaxmail" / "xla"))
    assert jax.config.jax_compilation_cache_dir == status.path and os.path.isdir(status.path)
    assert jax.config.jax_persistent_cache_min_compile_time_secs == 0.0

    jax.config.update("jax_compilation_cache_dir", None)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    mine = str(tmp_path / "mine")
    status = cc.configure(environ={"JAXMAIL_COMPILE_CACHE": mine, cc._JAX_MIN_TIME_ENV: "1.0"})
    assert status == cc.CacheStatus("on", mine)
    assert jax.config.jax_persistent_cache_min_compile_time_secs == 1.0  # the user's, kept

    # JAX's own directory (here the one just set, as JAX_COMPILATION_CACHE_DIR would) is kept.
    for off in ("0", "off", "OFF", "false", "no"):
        assert cc.configure(environ={"JAXMAIL_COMPILE_CACHE": off}) == cc.CacheStatus("jax", mine)
    jax.config.update("jax_compilation_cache_dir", None)
    for off in ("0", "off"):
        env = {"JAXMAIL_COMPILE_CACHE": off, "XDG_CACHE_HOME": str(tmp_path / "unused")}
        assert cc.configure(environ=env) == cc.CacheStatus("off", None)
    assert jax.config.jax_compilation_cache_dir is None
    assert not (tmp_path / "unused").exists()  # "off": the default directory is not even made

    flag = str(tmp_path / "flag")
    jax.config.update("jax_compilation_cache_dir", mine)
    assert cc.configure(flag, environ={}) == cc.CacheStatus("on", flag)  # the flag wins
    assert cc.configure(disable=True, environ={}) == cc.CacheStatus("off", None)
    assert not jax.config.jax_enable_compilation_cache


@pytest.mark.usefixtures("jax_cache_config")
@pytest.mark.parametrize("case", ["a file", "system folder"])
def test_unusable_compile_cache_warns_once(tmp_path, capsys, case):
    import jax

    from jaxmail import _compile_cache as cc

    (tmp_path / "file").write_text("")
    path = {"a file": str(tmp_path / "file"), "system folder": "/proc/jaxmail-cache"}[case]
    if case == "system folder" and not os.path.isdir("/proc"):
        pytest.skip("no /proc")
    before = jax.config.jax_compilation_cache_dir
    status = cc.configure(path, environ={})
    assert status.state == "unusable" and status.path is None and status.reason
    err = capsys.readouterr().err
    assert err.startswith(f"jaxmail: warning: compilation cache {path!r} is unusable (")
    assert err.count("\n") == 1
    assert jax.config.jax_compilation_cache_dir == before  # no cache: nothing changed


def test_an_earlier_ctrl_c_does_not_stop_the_next_run(capsys):
    """A Ctrl-C counted by one call of main does not leak into the next, also where main leaves
    SIGINT alone (ignored, as in a run a shell started in the background)."""
    import signal

    from jaxmail import cli

    outer = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        cli._INTERRUPTS.count = 1  # left over from an interrupted call
        assert main(["list"]) == 0
        assert "interrupted" not in capsys.readouterr().err
    finally:
        signal.signal(signal.SIGINT, outer)
