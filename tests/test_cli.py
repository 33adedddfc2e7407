"""The ``jaxmail`` command: list, run, reproduce, and its errors (exit code 2).

``reproduce --quick`` runs in this process (``main([...])``) once per module, so that the
compilations it makes serve the other tests of the session too.
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
    assert main(["reproduce", "--quick", "--out", str(out), "--no-progress"]) == 0
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
        (["run", "dse-bound", "--seeds", "0"], "seeds: must be >= 1"),
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
    # Without --resume: refused before anything runs.
    assert main(["reproduce", "--quick", "--out", str(reproduced), "--no-progress"]) == 2
    assert "--resume" in capsys.readouterr().err
    # With it: nothing left to compute.
    assert (
        main(["reproduce", "--quick", "--out", str(reproduced), "--resume", "--no-progress"]) == 0
    )
    out = capsys.readouterr().out
    assert out.count("0 chunks computed") == len(EXPERIMENTS)
    for name, content in before.items():
        assert (reproduced / name / "results.csv").read_bytes() == content
    # Another configuration into the same directory: refused.
    argv = ["run", "dse-bound", "--quick", "--seeds", "3", "--resume", "--no-progress"]
    assert main([*argv, "--out", str(reproduced / "dse-bound")]) == 2
    assert "config.seeds: 16 in the file, 3 now" in capsys.readouterr().err


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


def _cli(*argv: str) -> subprocess.Popen:
    """``python -m jaxmail.cli ...`` with this checkout's jaxmail."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, "-m", "jaxmail.cli", *argv],
        cwd=ROOT,
        env=env,
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
    assert main(["run", "counterexamples", "--quick", "--out", str(tmp_path / "out")]) == 130
    assert chunks == [1]
    assert "interrupted" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


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
