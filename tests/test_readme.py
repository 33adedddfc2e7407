"""Runs the README's Python code blocks, so that the API tour stays true."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_an_api_tour():
    assert _python_blocks(), "README.md lost its python code blocks"


@pytest.mark.slow
def test_readme_python_blocks_run():
    namespace: dict = {}
    for block in _python_blocks():
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102
    assert namespace["gaps"].nash_gap.shape == (8,)
    jm = namespace["jm"]
    ex = namespace["ex"]
    # docs/theory.md §4: Lemma 1 learner's NashGap (5/3)/(1-gamma) at gamma = 0.9 (float32).
    assert abs(float(jm.nash_gap(ex.game, ex.learner).nash_gap) - (5 / 3) / 0.1) < 1e-3
    assert bool(namespace["expert"].converged)
    # The demonstrations sweep: [3 sizes, 8 seeds]. BC of a deterministic expert is exact at every
    # visited state and uniform elsewhere: one short trajectory misses states of the 8-state game
    # (error > 0), 1000 trajectories visit them all (error ~0).
    errors = namespace["errors"]
    assert errors.shape == (3, 8)
    assert float(errors[0].mean()) > 0.05 > float(errors[2].mean()) + 0.04


def test_readme_test_command_is_ci_command():
    """.ci/run must run exactly the test command the README shows (the block ending in pytest),
    and that command must be the full suite (``--runslow``, tests/conftest.py), not the quick
    one."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
    tests = [b.splitlines() for b in blocks if b.strip().splitlines()[-1].startswith("pytest")]
    assert tests, "README.md shows no test command (a bash block ending in pytest)"
    test_command = tests[0][-1].strip()
    ci = (README.parent / ".ci" / "run").read_text()
    assert re.search(rf"^\s*{re.escape(test_command)}\s*$", ci, flags=re.M), (
        f"README test command {test_command!r} not found as a line of .ci/run"
    )
    ci_tests = [line.strip() for line in ci.splitlines() if line.strip().startswith("pytest")]
    assert ci_tests == [test_command], f".ci/run runs other test commands too: {ci_tests}"
    assert "--runslow" in test_command.split(), (
        f"CI's test command {test_command!r} skips the slow tests (it needs --runslow)"
    )
    # The README names both suites: the quick `pytest` and CI's full one.
    text = README.read_text()
    assert "`pytest` alone is the quick suite" in text
    assert f"`{test_command}` is the full suite and exactly the command CI runs" in text


def test_readme_first_command_is_the_main_job():
    """The README opens with the main job: the first bash block runs `jaxmail reproduce`."""
    first = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)[0]
    assert "jaxmail reproduce" in first


def test_readme_figures_exist():
    for path in re.findall(r"!\[[^]]*\]\(([^)]+)\)", README.read_text()):
        assert (README.parent / path).is_file(), f"README embeds a missing figure {path}"


def test_ci_builds_the_docs_as_the_readme_shows():
    """The docs build (strict: warnings fail) runs in CI with the README's exact commands."""
    ci = (README.parent / ".ci" / "run").read_text().splitlines()
    text = README.read_text()
    for line in ('pip install -e ".[docs]"', "mkdocs build --strict"):
        assert line in [c.strip() for c in ci], f".ci/run lacks {line!r}"
        assert f"\n{line}\n" in text, f"README.md does not show {line!r}"
    assert (README.parent / "mkdocs.yml").exists()
