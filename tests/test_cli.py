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
