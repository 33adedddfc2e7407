"""The experiment runner: configurations, result files, interruption and resumption.

Most tests drive a toy experiment (defined here, not registered) whose chunks compile in well
under a second: the runner's behaviour does not depend on what an experiment computes. The toy
gives ``width`` rows per seed (a ``[B, width]`` column), so the row expansion is exercised too.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmail  # noqa: F401  (before any JAX computation: the XLA guard)
from jaxmail.experiments import results, runner
from jaxmail.experiments.base import Config, Experiment, UnknownExperimentError, get
from jaxmail.experiments.sharding import map_seeds

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
CALLS: list[tuple[float, bytes]] = []  # (scale, key data) of every toy run_chunk call


@dataclasses.dataclass(frozen=True)
class ToyConfig(Config):
    seeds: int = 10
    chunk_size: int = 3
    scales: tuple[float, ...] = (1.0, 2.5)
    width: int = 2
    sleep: float = 0.0  # seconds per chunk (outside JAX), for the kill-at-any-time test

    QUICK = {"seeds": 4}


def _toy_settings(config):
    return [{"scale": float(s)} for s in config.scales]


def _draw(key, scale, *, width):
    x = scale * jax.random.normal(key, (width,))
    return {
        "column": jnp.arange(width),
        "x": x,
        "norm": jnp.broadcast_to(jnp.sum(x**2), (width,)),
    }


def _toy_run_chunk(config, setting, keys):
    CALLS.append((setting["scale"], np.asarray(jax.random.key_data(keys)).tobytes()))
    if config.sleep:
        time.sleep(config.sleep)
    return map_seeds(_draw, keys, setting["scale"], width=config.width)


def _toy_summarize(config, table, out_dir):
    return f"# toy\n\n{len(table['x'])} rows, mean x {np.mean(table['x']):.4f}\n"


def _toy_plot(config, table, out_dir):
    fig = results.new_figure(figsize=(3, 2))
    ax = fig.add_subplot()
    ax.hist(table["x"])
    ax.set_xlabel("x")
    ax.set_ylabel("count")
    return [results.save_figure(fig, os.path.join(out_dir, "x.png"))]


TOY = Experiment(
    name="toy",
    description="a toy for the runner's tests",
    config_type=ToyConfig,
    settings=_toy_settings,
    run_chunk=_toy_run_chunk,
    summarize=_toy_summarize,
    plot=_toy_plot,
)


def _key_bytes(seeds):
    return np.asarray(jax.random.key_data(runner.seed_keys(0, np.asarray(seeds)))).tobytes()


def _read(path):
    with open(path, "rb") as f:
        return f.read()


class _Stop(Exception):
    pass


def _interrupt_after(k, exc=KeyboardInterrupt):
    def hook(done):
        if done == k:
            raise exc()

    return hook


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy") / "full"
    report = runner.run(TOY, ToyConfig(), out, progress=False)
    return out, report


# ----------------------------------------------------------------------------------------------
# Configurations and the registry.


def test_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match=r"unknown configuration key\(s\) \['bogus', 'nope'\]"):
        ToyConfig.from_dict({"seeds": 3, "bogus": 1, "nope": 2})
    with pytest.raises(ValueError, match="known keys: .*'scales'"):
        ToyConfig.from_dict({"scale": 1.0})
    with pytest.raises(ValueError, match="unknown"):
        ToyConfig().replace(bogus=1)


def test_config_coerces_and_validates_values():
    config = ToyConfig.from_dict({"seeds": "5", "scales": "0.5,2", "width": 3.0})
    assert config == ToyConfig(seeds=5, scales=(0.5, 2.0), width=3)
    assert ToyConfig.from_dict({"scales": [1, 2]}).scales == (1.0, 2.0)
    assert ToyConfig.from_dict({"scales": 3}).scales == (3.0,)
    with pytest.raises(ValueError, match="seeds: expected an integer"):
        ToyConfig.from_dict({"seeds": "many"})
    with pytest.raises(ValueError, match="seeds: expected an int >= 1, got 0"):
        ToyConfig.from_dict({"seeds": 0})
    with pytest.raises(ValueError, match=r"scales\[1\]: expected a number"):
        ToyConfig.from_dict({"scales": [1.0, "x"]})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.seeds = 1
    assert ToyConfig.from_dict(config.to_dict()) == config  # config.json round trip
    assert json.loads(json.dumps(config.to_dict()))["scales"] == [0.5, 2.0]


def test_quick_config_and_chunks():
    assert ToyConfig.quick() == ToyConfig(seeds=4)
    assert ToyConfig.quick(width=5) == ToyConfig(seeds=4, width=5)
    chunks = ToyConfig(seeds=7, chunk_size=3).chunks()
    assert [c.tolist() for c in chunks] == [[0, 1, 2], [3, 4, 5], [6]]


def test_unknown_experiment_lists_known_names():
    with pytest.raises(UnknownExperimentError) as info:
        get("no-such-experiment")
    assert isinstance(info.value, KeyError)
    message = str(info.value)
    assert "no-such-experiment" in message
    assert "counterexamples" in message and "dse-bound" in message


def test_experiment_configs_have_quick_variants():
    from jaxmail.experiments import EXPERIMENTS

    for experiment in EXPERIMENTS.values():
        quick = experiment.config_type.quick()
        assert isinstance(quick, experiment.config_type)
        assert experiment.settings(quick)
        assert experiment.description and "\n" not in experiment.description


# ----------------------------------------------------------------------------------------------
# Files.


def test_run_writes_every_file(uninterrupted):
    out, report = uninterrupted
    config = ToyConfig()
    names = set(os.listdir(out))
    assert {"config.json", "results.csv", "summary.md", "x.png"} <= names
    assert not [n for n in names if n.endswith(".tmp")]
    record = json.loads(_read(out / "config.json"))
    assert record["experiment"] == "toy" and record["config"] == config.to_dict()
    assert record["dtype"] == "float32"
    assert record["jax_version"] == jax.__version__ and record["devices"]
    header, rows = results.read_rows(out / "results.csv")
    # jit returns dicts key-sorted; the chunk checksum last
    assert header == ["scale", "seed", "column", "norm", "x", results.CHECK_COLUMN]
    # one row per setting x seed x column, in that order
    assert len(rows) == len(config.scales) * config.seeds * config.width == report["rows"]
    assert [r[1] for r in rows[:6]] == ["0", "0", "1", "1", "2", "2"]
    assert rows[0][0] == "1.0" and rows[-1][0] == "2.5"
    table = results.read_table(out / "results.csv")
    assert results.CHECK_COLUMN not in table
    assert table["seed"].dtype == np.int64 and table["x"].dtype == np.float64
    np.testing.assert_allclose(
        table["norm"][::2], table["x"][::2] ** 2 + table["x"][1::2] ** 2, rtol=1e-6
    )
    assert report["summary"] == _read(out / "summary.md").decode()
    assert _read(out / "x.png")[:8] == b"\x89PNG\r\n\x1a\n"


def test_floats_are_written_exactly():
    for x in (0.1, np.float32(0.1), 1e-300, -2.5, np.float64(1 / 3)):
        assert float(results.format_value(x)) == float(x)
    assert results.format_value(np.int32(7)) == "7"
    assert results.format_value(np.bool_(True)) == "True"
    assert results.format_value(np.float32("nan")) == "nan"
    assert results.parse_value("nan") != results.parse_value("nan")  # NaN reads back as NaN


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    path = tmp_path / "file.txt"
    results.write_text(path, "old\n")
    with pytest.raises(KeyboardInterrupt), results.atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write("half of the new")
        raise KeyboardInterrupt
    assert _read(path) == b"old\n"
    assert os.listdir(tmp_path) == ["file.txt"]


def test_same_seed_same_numbers(uninterrupted, tmp_path):
    out, _ = uninterrupted
    full = out / "results.csv"
    # Other chunk sizes, so other batch companions and other compiled shapes: same rows.
    # (The chunk checksums differ with the chunking, so the rows are compared without them.)
    runner.run(TOY, ToyConfig(chunk_size=4), tmp_path / "a", progress=False)
    rechunked = results.read_rows(tmp_path / "a" / "results.csv")[1]
    assert [r[:-1] for r in rechunked] == [r[:-1] for r in results.read_rows(full)[1]]
    # Fewer seeds: the first seeds' rows are unchanged.
    runner.run(TOY, ToyConfig(seeds=2, scales=(1.0,)), tmp_path / "b", progress=False)
    _, few = results.read_rows(tmp_path / "b" / "results.csv")
    _, full = results.read_rows(out / "results.csv")
    assert [r[:-1] for r in few] == [r[:-1] for r in full[: len(few)]]
    # Another base seed: other numbers.
    runner.run(TOY, ToyConfig(base_seed=1), tmp_path / "c", progress=False)
    _, other = results.read_rows(tmp_path / "c" / "results.csv")
    assert [r[4] for r in other] != [r[4] for r in full]


def test_float64_run(tmp_path):
    config = ToyConfig(seeds=2, scales=(1.0,))
    report = runner.run(TOY, config, tmp_path / "x64", progress=False, dtype="float64")
    assert not jax.config.jax_enable_x64  # the rest of the process keeps float32
    assert json.loads(_read(tmp_path / "x64" / "config.json"))["dtype"] == "float64"
    x64 = results.read_table(tmp_path / "x64" / "results.csv")["x"]
    assert report["rows"] == len(x64) == 4
    assert np.all(x64.astype(np.float32).astype(np.float64) != x64)  # really float64 numbers
    with pytest.raises(ValueError, match="dtype"):
        runner.run(TOY, config, tmp_path / "bad", dtype="float16")


# ----------------------------------------------------------------------------------------------
# Interruption and resumption.


def test_interrupted_run_resumes_to_the_same_file(uninterrupted, tmp_path):
    full, _ = uninterrupted
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        runner.run(TOY, ToyConfig(), out, progress=False, on_chunk=_interrupt_after(3))
    partial = _read(out / "results.csv")
    _, rows = results.read_rows(out / "results.csv")
    config = ToyConfig()
    assert len(rows) == 3 * config.chunk_size * config.width  # three chunks, all complete
    assert not (out / "summary.md").exists()  # written only at the end
    assert (out / "config.json").exists()
    assert _read(full / "results.csv").startswith(partial)

    # Without --resume the finished rows are protected.
    with pytest.raises(runner.ResumeError, match="--resume"):
        runner.run(TOY, config, out, progress=False)
    assert _read(out / "results.csv") == partial

    CALLS.clear()
    report = runner.run(TOY, config, out, resume=True, progress=False)
    assert _read(out / "results.csv") == _read(full / "results.csv")
    assert _read(out / "summary.md") == _read(full / "summary.md")
    # Finished chunks were neither recomputed nor rewritten.
    chunks_per_setting = len(config.chunks())
    assert report["skipped_chunks"] == 3
    assert report["computed_chunks"] == len(config.scales) * chunks_per_setting - 3
    assert (1.0, _key_bytes([0, 1, 2])) not in CALLS  # the first chunk was done
    assert (1.0, _key_bytes([9, 9, 9])) in CALLS  # the last chunk, padded to chunk_size
    assert _read(out / "results.csv").startswith(partial)

    # Resuming a finished run computes nothing and changes nothing.
    CALLS.clear()
    report = runner.run(TOY, config, out, resume=True, progress=False)
    assert report["computed_chunks"] == 0 and not CALLS
    assert _read(out / "results.csv") == _read(full / "results.csv")


def test_resume_rejects_another_configuration(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(_Stop):
        runner.run(TOY, ToyConfig(), out, progress=False, on_chunk=_interrupt_after(1, _Stop))
    with pytest.raises(runner.ResumeError, match=r"config\.width: 2 in the file, 3 now"):
        runner.run(TOY, ToyConfig(width=3), out, resume=True, progress=False)
    with pytest.raises(runner.ResumeError, match="dtype"):
        runner.run(TOY, ToyConfig(), out, resume=True, progress=False, dtype="float64")
    # --resume into an empty directory simply runs.
    report = runner.run(TOY, ToyConfig(seeds=1), tmp_path / "new", resume=True, progress=False)
    assert report["skipped_chunks"] == 0 and report["rows"] == 4


_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    sys.path[:0] = [{root!r}, {tests!r}]  # this checkout's jaxmail, not an installed one
    import jaxmail  # before any JAX work: the XLA guard
    import test_runner as t
    from jaxmail.experiments import runner

    kill_after = int(sys.argv[2])

    def hook(done):
        if done == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    config = t.ToyConfig(sleep=float(sys.argv[3]))
    runner.run(t.TOY, config, sys.argv[1], resume=True, progress=False, on_chunk=hook)
    """
)


def _child(tmp_path, out, kill_after, sleep=0.0):
    script = tmp_path / "child.py"
    script.write_text(_CHILD.format(tests=TESTS_DIR, root=os.path.dirname(TESTS_DIR)))
    return subprocess.Popen(
        [sys.executable, str(script), str(out), str(kill_after), str(sleep)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_sigkilled_run_resumes_to_the_same_file(uninterrupted, tmp_path):
    """A real ``kill -9`` of a run in another process, then a resume there."""
    full, _ = uninterrupted
    out = tmp_path / "killed"
    proc = _child(tmp_path, out, kill_after=2)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err.decode()
    partial = _read(out / "results.csv")
    assert len(results.read_rows(out / "results.csv")[1]) == 2 * 3 * 2
    assert full.joinpath("results.csv").read_bytes().startswith(partial)
    proc = _child(tmp_path, out, kill_after=-1)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    assert _read(out / "results.csv") == _read(full / "results.csv")


def test_killed_at_any_moment_resumes_to_the_same_file(uninterrupted, tmp_path):
    """``kill -9`` from outside, at whatever point the run has reached (even mid-write)."""
    full, _ = uninterrupted
    out = tmp_path / "killed"
    proc = _child(tmp_path, out, kill_after=-1, sleep=0.2)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        if len(results.read_rows(out / "results.csv")[1]) >= 2:
            break
        time.sleep(0.02)
    time.sleep(0.25)
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    _, rows = results.read_rows(out / "results.csv")
    assert 0 < len(rows) < len(results.read_rows(full / "results.csv")[1])
    assert _read(full / "results.csv").startswith(_read(out / "results.csv"))
    report = runner.run(TOY, ToyConfig(sleep=0.2), out, resume=True, progress=False)
    assert report["skipped_chunks"] >= 1
    assert _read(out / "results.csv") == _read(full / "results.csv")
    assert not [n for n in os.listdir(out) if n.endswith(".tmp")]


# ----------------------------------------------------------------------------------------------
# A results directory that cannot be corrupted: the lock, damaged rows, devices, permissions.


def test_a_second_writer_is_locked_out(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with runner.lock_out_dir(out):  # another holder (a second open file: flock conflicts)
        with pytest.raises(
            runner.LockedError, match=rf"in use by another run \(process {os.getpid()}"
        ):
            runner.run(TOY, ToyConfig(seeds=1), out, progress=False)
    assert sorted(os.listdir(out)) == [".lock"]  # nothing else was written
    # The lock is released with its holder; a lock file naming a dead process does not block.
    (out / ".lock").write_text("999999999\n")
    report = runner.run(TOY, ToyConfig(seeds=1), out, progress=False)
    assert report["rows"] == 4  # 2 scales x 1 seed x width 2
    with runner.lock_out_dir(out):  # released again after the run
        pass


@pytest.fixture
def three_chunks(tmp_path):
    """An interrupted run: 3 of the 8 chunks (3 seeds x 2 rows each) on disk."""
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        runner.run(TOY, ToyConfig(), out, progress=False, on_chunk=_interrupt_after(3))
    assert len(results.read_rows(out / "results.csv")[1]) == 3 * 6
    return out


def _resume_after(out, edit, capsys):
    path = out / "results.csv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(edit(lines)))
    report = runner.run(TOY, ToyConfig(), out, resume=True, progress=False)
    return report, capsys.readouterr().err


def test_resume_drops_a_truncated_last_line(uninterrupted, three_chunks, capsys):
    full, _ = uninterrupted
    # The last row loses its checksum and part of a number (and its line end).
    report, err = _resume_after(three_chunks, lambda lines: [*lines[:-1], lines[-1][:-15]], capsys)
    # The third chunk goes: its torn row, and its 5 intact rows that are now an incomplete chunk.
    assert report["dropped_rows"] == 6 and "dropped 6 damaged or incomplete rows" in err
    assert report["skipped_chunks"] == 2
    assert _read(three_chunks / "results.csv") == _read(full / "results.csv")
    # A second resume finds nothing to drop or compute.
    report = runner.run(TOY, ToyConfig(), three_chunks, resume=True, progress=False)
    assert report["dropped_rows"] == 0 and report["computed_chunks"] == 0


def test_resume_drops_a_garbage_line(uninterrupted, three_chunks, capsys):
    full, _ = uninterrupted

    def edit(lines):  # two foreign lines between rows of the second chunk
        return [*lines[:9], "\x00\xff garbage\n", "1.0,4,not,a,row,0000\n", *lines[9:]]

    report, err = _resume_after(three_chunks, edit, capsys)
    assert report["dropped_rows"] == 2 and "dropped 2 " in err  # the chunks stay intact
    assert report["skipped_chunks"] == 3
    assert _read(three_chunks / "results.csv") == _read(full / "results.csv")


def test_resume_recomputes_an_altered_chunk_in_place(uninterrupted, three_chunks, capsys):
    full, _ = uninterrupted

    def edit(lines):  # one digit of a number of the second chunk (rows 7-12, lines 8-13)
        row = lines[9].split(",")
        row[3] = row[3][:-3] + ("1" if row[3][-3] != "1" else "2") + row[3][-2:]
        return [*lines[:9], ",".join(row), *lines[10:]]

    report, err = _resume_after(three_chunks, edit, capsys)
    assert report["dropped_rows"] == 6 and report["skipped_chunks"] == 2
    # recomputed where it belongs: the file is the uninterrupted one
    assert _read(three_chunks / "results.csv") == _read(full / "results.csv")


def test_resume_recomputes_under_a_renamed_column(uninterrupted, three_chunks, capsys):
    full, _ = uninterrupted
    # The checksums cover the header: no row can be trusted, every chunk is recomputed.
    edit = lambda lines: [lines[0].replace(",x,", ",y,"), *lines[1:]]  # noqa: E731
    report, err = _resume_after(three_chunks, edit, capsys)
    assert report["dropped_rows"] == 18 and report["skipped_chunks"] == 0
    assert _read(three_chunks / "results.csv") == _read(full / "results.csv")


@pytest.mark.parametrize(
    "edit",
    [
        lambda lines: [lines[0].replace("scale,seed", "seed,scale"), *lines[1:]],
        lambda lines: [  # a results.csv without the checksum column
            ",".join(line.rstrip("\n").split(",")[:-1]) + "\n" for line in lines
        ],
    ],
)
def test_resume_refuses_a_wrong_header(three_chunks, edit):
    """Setting keys, seed and checksum columns not where this experiment writes them."""
    path = three_chunks / "results.csv"
    path.write_text("".join(edit(path.read_text().splitlines(keepends=True))))
    before = _read(path)
    with pytest.raises(runner.ResumeError, match="its header .* is not one this experiment"):
        runner.check_out_dir(TOY, ToyConfig(), three_chunks, resume=True)
    with pytest.raises(runner.ResumeError, match="header"):
        runner.run(TOY, ToyConfig(), three_chunks, resume=True, progress=False)
    assert _read(path) == before


def test_config_records_devices_and_resume_checks_them(tmp_path):
    out = tmp_path / "run"
    config = ToyConfig(seeds=1)
    runner.run(TOY, config, out, progress=False)
    record = json.loads(_read(out / "config.json"))
    device = jax.devices()[0]
    assert record["device_count"] == jax.device_count() == len(record["devices"])
    assert record["mesh"] == {"axis": "seeds", "shape": [jax.device_count()]}
    assert record["platform"] == device.platform and record["device_kind"] == device.device_kind
    assert record["seeds_per_device"] == config.chunk_size
    # Another device count gives the same numbers (tests/test_sharding.py): a resume is
    # accepted, and config.json notes the devices it ran on.
    edited = {**record, "devices": ["d0", "d1", "d2", "d3"], "device_count": 4}
    edited["mesh"] = {"axis": "seeds", "shape": [4]}
    (out / "config.json").write_text(json.dumps(edited))
    report = runner.run(TOY, config, out, resume=True, progress=False)
    assert report["computed_chunks"] == 0
    resumed = json.loads(_read(out / "config.json"))
    assert resumed["device_count"] == 4
    assert [r["device_count"] for r in resumed["resumes"]] == [jax.device_count()]
    # Another kind of device compiles other code: refused.
    (out / "config.json").write_text(json.dumps({**record, "platform": "gpu"}))
    with pytest.raises(runner.ResumeError, match="platform: 'gpu' in the file, 'cpu' now"):
        runner.run(TOY, config, out, resume=True, progress=False)


def test_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        runner.run(TOY, ToyConfig(seeds=1, scales=(1.0,)), tmp_path / "run", progress=False)
        for name in ("config.json", "results.csv", "summary.md", "findings.json", "x.png"):
            assert os.stat(tmp_path / "run" / name).st_mode & 0o777 == 0o644, name
        os.umask(0o027)
        results.write_text(tmp_path / "other.txt", "x\n")
        assert os.stat(tmp_path / "other.txt").st_mode & 0o777 == 0o640
    finally:
        os.umask(old)


@pytest.mark.parametrize("case", ["file", "below a file", "read-only"])
def test_unusable_out_dir_is_refused(tmp_path, case):
    (tmp_path / "file").write_text("")
    out = {"file": tmp_path / "file", "below a file": tmp_path / "file" / "sub"}.get(case)
    if case == "read-only":
        if os.geteuid() == 0:
            pytest.skip("root may write anywhere")
        (tmp_path / "ro").mkdir(mode=0o555)
        out = tmp_path / "ro" / "run"
    message = {"file": "not a directory", "below a file": "is a file", "read-only": "permission"}
    with pytest.raises(runner.ResumeError, match=message[case]):
        runner.check_out_dir(TOY, ToyConfig(), out, resume=False)
    with pytest.raises(runner.ResumeError, match=message[case]):
        runner.run(TOY, ToyConfig(seeds=1), out, progress=False)


def test_counterexample_learners_share_their_near_programs():
    """A measure-matching learner and its ``-near`` variant differ only in a traced start flag,
    so :func:`map_seeds` (which caches on ``(fn, static)``) compiles one program for both.
    (``jaxmail run counterexamples`` with both variants: 4 -> 2 compiled per-seed programs, the
    same results.csv bytes; benchmarks/README.md.)"""
    from jaxmail.experiments import counterexamples as cx_exp

    programs = cx_exp._PROGRAM_OF
    assert set(programs) == set(cx_exp.LEARNERS)
    for name in ("state-matching", "state-action-matching"):
        (plain, plain_near), (near, near_near) = programs[name], programs[f"{name}-near"]
        assert plain is near and (plain_near, near_near) == (False, True)
    assert programs["state-matching"][0] is not programs["state-action-matching"][0]
