"""Runs the README's Python code blocks, so that the API tour stays true."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_an_api_tour():
    assert _python_blocks(), "README.md lost its python code blocks"


def test_readme_python_blocks_run():
    namespace: dict = {}
    for block in _python_blocks():
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102
    assert namespace["gaps"].nash_gap.shape == (8,)


def test_readme_test_command_is_ci_command():
    """.ci/run must run exactly the test command the README shows."""
    bash = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)[0].splitlines()
    test_command = bash[-1].strip()
    ci = (README.parent / ".ci" / "run").read_text()
    assert re.search(rf"^\s*{re.escape(test_command)}\s*$", ci, flags=re.M), (
        f"README test command {test_command!r} not found as a line of .ci/run"
    )
