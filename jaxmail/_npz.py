"""Tagged ``.npz`` files: written atomically and durably, read without pickle, checked.

Writing: the arrays go to a temporary file in the target folder, named
``<path>.tmp-<pid>-<host>-<token>.npz``, which is flushed to disk (``fsync``) and then renamed
over ``path`` (``os.replace``, atomic on POSIX); the folder is synced too, so that the rename
survives a power cut. A writer killed between the two (``kill -9``) leaves its temporary file
behind: the next save into the same folder removes every such file whose writer is gone (same
host, process no longer alive). The temporary file is created with mode ``0o666`` filtered by
the umask, like any file the user writes, so a saved file is as readable as ``open()`` would
make it (``0o644`` under umask ``022``).

Reading: the file must be a zip archive holding the fields and a ``format`` entry naming the
kind of file; anything else (a ``.npy`` array, an empty, text or truncated file, pickled
entries) raises one ``ValueError`` that names the file and what is wrong with it.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
import struct
import zipfile
import zlib
from collections.abc import Mapping, Sequence

import numpy as np

_HOST = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname()) or "host"
# <name>.npz.tmp-<pid>.npz (older writers) or <name>.npz.tmp-<pid>-<host>-<token>.npz
_TEMPORARY = re.compile(r"^.+\.npz\.tmp-(?P<pid>\d+)(?:-(?P<host>[A-Za-z0-9_.]+)-[0-9a-f]+)?\.npz$")


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (a process of another user counts)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # exists but is not ours, or the check is impossible: keep its file
    return True


def clean_temporaries(folder: str | os.PathLike) -> list[str]:
    """Removes the temporary files that dead writers of this host left in ``folder``.

    A file counts as left behind when its name has the temporary pattern of :func:`save`, it was
    written on this host (or by an older writer that did not record the host) and its writer's
    process no longer exists. Files of live writers and of other hosts are kept.

    Returns:
      The names of the removed files.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if match is None or not entry.is_file(follow_symlinks=False):
            continue
        host = match["host"]
        if (host is not None and host != _HOST) or _alive(int(match["pid"])):
            continue
        with contextlib.suppress(FileNotFoundError):  # another cleaner got there first
            os.remove(entry.path)
            removed.append(entry.name)
    return removed


def _fsync_folder(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # some systems cannot open a folder; the file itself is synced
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save(path: str | os.PathLike, arrays: Mapping[str, np.ndarray], *, tag: str, kind: str) -> None:
    """Writes ``arrays`` and a ``format`` entry ``tag`` to ``path`` (``.npz``), atomically.

    A partly written file never appears under ``path``, and a complete one is on disk when this
    returns (module docstring). Temporary files of dead writers in the folder are removed first.

    Raises:
      ValueError: ``path`` does not end in ``.npz`` (the message names ``kind``).
    """
    path = os.fspath(path)
    if not path.endswith(".npz"):
        raise ValueError(f"path: a {kind} file must end in .npz, got {path!r}")
    folder = os.path.dirname(os.path.abspath(path))
    clean_temporaries(folder)
    tmp = f"{path}.tmp-{os.getpid()}-{_HOST}-{secrets.token_hex(4)}.npz"
    # O_EXCL: never write through a file or link someone else placed there; 0o666 & ~umask.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays, format=np.asarray(tag))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_folder(folder)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)


# Errors numpy and zipfile raise on a damaged archive or member: a bad CRC or header, a flipped
# compression-method or encryption flag (NotImplementedError, RuntimeError), a truncated struct,
# a header whose shape asks for absurd memory.
_DAMAGED = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    KeyError,
    NotImplementedError,
    RuntimeError,
    struct.error,
    MemoryError,
    OverflowError,
)


def load(
    path: str | os.PathLike, fields: Sequence[str], *, tag: str, kind: str
) -> dict[str, np.ndarray]:
    """Reads ``fields`` from a file written by :func:`save` with the same ``tag`` (no pickle).

    Raises:
      FileNotFoundError: there is no file at ``path``.
      ValueError: naming the file: it is not a zip archive (a ``.npy`` array, an empty or a
        text file), it is truncated or damaged, an entry is a pickled object array, a field or
        the format entry is missing, or the format is not ``tag``.
    """
    path = os.fspath(path)
    what = f"{path}: not a readable jaxmail {kind} file"
    with open(path, "rb") as f:
        head = f.read(6)
    if not head:
        raise ValueError(f"{what}: the file is empty")
    if head == b"\x93NUMPY":
        raise ValueError(f"{what}: it is a single .npy array, not an .npz archive")
    if head[:4] not in (b"PK\x03\x04", b"PK\x05\x06"):
        raise ValueError(f"{what}: not an .npz (zip) archive; it starts with {head!r}")
    try:
        data = np.load(path, allow_pickle=False)
    except _DAMAGED as e:
        raise ValueError(f"{what}: the archive is truncated or damaged ({e})") from e
    with data:
        missing = [f for f in (*fields, "format") if f not in data.files]
        if missing:
            raise ValueError(f"{path}: not a jaxmail {kind} file; missing {missing}")
        out = {}
        for name in ("format", *fields):
            try:
                out[name] = data[name]
            except ValueError as e:
                if "pickle" in str(e):
                    raise ValueError(
                        f"{what}: entry {name!r} is a pickled object array, which is refused"
                    ) from e
                raise ValueError(f"{what}: entry {name!r} is truncated or damaged ({e})") from e
            except _DAMAGED as e:
                raise ValueError(f"{what}: entry {name!r} is truncated or damaged ({e})") from e
    fmt = out.pop("format")
    if fmt.dtype.kind != "U" or fmt.shape != () or str(fmt) != tag:
        raise ValueError(f"{path}: unknown format {str(fmt)!r}, expected {tag!r}")
    return out
