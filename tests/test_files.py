"""Game and dataset files: durable atomic writes, no litter after a crash, clear load errors.

A writer killed with SIGKILL between writing its temporary file and renaming it leaves the
temporary file behind; the next save into the same folder must remove it. Saved files follow the
umask. Every file that is not a jaxmail ``.npz`` (a ``.npy``, an empty, text or truncated file, a
damaged member, a pickled entry) raises one ``ValueError`` that names the file.
"""

import os
import signal
import subprocess
import sys
import zipfile

import helpers as h
import numpy as np
import pytest

import jaxmail as jm
from jaxmail import _npz
from jaxmail import data as jd

NPZ = os.path.join(os.path.dirname(jm.__file__), "_npz.py")


def _game():
    return h.matrix_game(np.stack([np.eye(2), -np.eye(2)]))


def _dataset():
    return jd.Dataset(
        states=np.zeros((2, 3), np.int32),
        actions=np.zeros((2, 3, 2), np.int32),
        mask=np.ones((2, 3), bool),
        weights=np.ones((2, 3)),
    )


# ---------------------------------------------------------------------------------------------
# Writing.
# ---------------------------------------------------------------------------------------------

# A writer that dies by SIGKILL where a kill -9 hurts most: the temporary file is complete and
# the rename has not happened. Only jaxmail/_npz.py is loaded (NumPy, no JAX): 0.2 s.
_KILLED_WRITER = """
import importlib.util, os, signal, sys
import numpy as np
spec = importlib.util.spec_from_file_location("npz", sys.argv[1])
npz = importlib.util.module_from_spec(spec)
spec.loader.exec_module(npz)
os.replace = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
npz.save(sys.argv[2], {"x": np.ones(3)}, tag="t", kind="game")
"""


def test_a_killed_writer_leaves_no_litter_after_the_next_save(tmp_path):
    target = tmp_path / "game.npz"
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_WRITER, NPZ, str(target)], capture_output=True, timeout=60
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    left = sorted(os.listdir(tmp_path))
    assert len(left) == 1 and left[0].startswith("game.npz.tmp-"), left  # the crash's litter
    jm.save_game(target, _game())
    assert sorted(os.listdir(tmp_path)) == ["game.npz"]
    np.testing.assert_array_equal(jm.load_game(target).reward, _game().reward)


def test_temporaries_of_live_writers_and_other_hosts_are_kept(tmp_path):
    # This process is alive; "elsewhere" is another host, whose processes cannot be checked.
    live = f"a.npz.tmp-{os.getpid()}-{_npz._HOST}-0123abcd.npz"
    remote = "b.npz.tmp-1-elsewhere.example-0123abcd.npz"
    unrelated = "c.npz.tmp-notes.txt"
    for name in (live, remote, unrelated):
        (tmp_path / name).write_bytes(b"x")
    # A writer that has exited: its pid is free (reuse within this test is vanishingly unlikely).
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait(timeout=60)
    dead = f"d.npz.tmp-{done.pid}-{_npz._HOST}-0123abcd.npz"
    legacy = f"e.npz.tmp-{done.pid}.npz"  # the name older versions used
    for name in (dead, legacy):
        (tmp_path / name).write_bytes(b"x")
    jd.save_dataset(tmp_path / "data.npz", _dataset())
    assert sorted(os.listdir(tmp_path)) == sorted([live, remote, unrelated, "data.npz"])


def test_save_syncs_the_file_it_renames(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def record(fd):
        synced.append(os.fstat(fd))
        real(fd)

    monkeypatch.setattr(_npz.os, "fsync", record)
    target = tmp_path / "game.npz"
    jm.save_game(target, _game())
    final = os.stat(target)
    # The synced descriptor is the data file itself (the rename keeps its inode), not only the
    # folder.
    assert any(s.st_ino == final.st_ino and s.st_dev == final.st_dev for s in synced), synced


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_saved_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        jm.save_game(tmp_path / "game.npz", _game())
        jd.save_dataset(tmp_path / "data.npz", _dataset())
    finally:
        os.umask(old)
    for name in ("game.npz", "data.npz"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == mode, name


# ---------------------------------------------------------------------------------------------
# Reading.
# ---------------------------------------------------------------------------------------------


def _valid_bytes(tmp_path, kind):
    path = tmp_path / f"valid-{kind}.npz"
    if kind == "game":
        jm.save_game(path, _game())
    else:
        jd.save_dataset(path, _dataset())
    return path.read_bytes()


def _bad_files(tmp_path, kind):
    """``(name, bytes, words the message must hold)`` for files that are not readable."""
    valid = _valid_bytes(tmp_path, kind)
    npy = tmp_path / "array.npy"
    np.save(npy, np.ones(3))
    damaged = bytearray(valid)
    start = valid.index(b"\x93NUMPY") + 128  # inside the first member's data
    damaged[start : start + 8] = b"\xff" * 8
    return [
        ("npy", npy.read_bytes(), "single .npy array"),
        ("empty", b"", "the file is empty"),
        ("text", b"transition,reward\n1,2\n", "not an .npz (zip) archive"),
        ("truncated", valid[: len(valid) // 2], "truncated or damaged"),
        ("tail", valid[:-10], "truncated or damaged"),
        ("damaged", bytes(damaged), "truncated or damaged"),
    ]


@pytest.mark.parametrize("kind", ["game", "dataset"])
def test_unreadable_files_raise_one_clear_error(tmp_path, kind):
    load = jm.load_game if kind == "game" else jd.load_dataset
    for name, content, words in _bad_files(tmp_path, kind):
        path = tmp_path / f"{name}.npz"
        path.write_bytes(content)
        with pytest.raises(ValueError) as info:
            load(path)
        message = str(info.value)
        assert message.startswith(f"{path}: not a readable jaxmail {kind} file"), (name, message)
        assert words in message, (name, message)
        assert "pickle" not in message, (name, message)  # nothing here holds pickled data


@pytest.mark.parametrize("kind", ["game", "dataset"])
def test_pickled_entries_are_refused_by_name(tmp_path, kind):
    load = jm.load_game if kind == "game" else jd.load_dataset
    path = tmp_path / "pickled.npz"
    valid = tmp_path / "valid.npz"
    valid.write_bytes(_valid_bytes(tmp_path, kind))
    with np.load(valid) as f:
        arrays = {k: f[k] for k in f.files}
    field = "reward" if kind == "game" else "weights"
    arrays[field] = np.array([{"x": 1}], dtype=object)
    np.savez(path, **arrays)  # np.savez pickles object arrays
    with pytest.raises(ValueError, match=rf"entry '{field}' is a pickled object array"):
        load(path)


def test_a_zip_without_the_fields_and_a_missing_file(tmp_path):
    path = tmp_path / "other.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match=r"not a jaxmail game file; missing \['transition'"):
        jm.load_game(path)
    with pytest.raises(FileNotFoundError):
        jm.load_game(tmp_path / "absent.npz")


def test_invalid_content_names_the_file(tmp_path):
    game = _game()
    arrays = {f: np.asarray(getattr(game, f)) for f in ("transition", "reward", "initial")}
    path = tmp_path / "bad.npz"
    np.savez(path, format=np.asarray("jaxmail.MarkovGame/1"), discount=np.asarray(1.5), **arrays)
    with pytest.raises(ValueError, match=r"bad\.npz: discount: must lie in \[0, 1\), got 1\.5"):
        jm.load_game(path)
    arrays["discount"] = np.asarray("0.9")
    np.savez(path, format=np.asarray("jaxmail.MarkovGame/1"), **arrays)
    with pytest.raises(TypeError, match=r"bad\.npz: discount: expected a real numeric array"):
        jm.load_game(path)
