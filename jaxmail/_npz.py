"""Tagged ``.npz`` files: written atomically, read without pickle, checked for their format."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np


def save(path: str | os.PathLike, arrays: Mapping[str, np.ndarray], *, tag: str, kind: str) -> None:
    """Writes ``arrays`` and a ``format`` entry ``tag`` to ``path`` (``.npz``), atomically.

    A partly written file never appears under ``path``: the data goes to a temporary file in the
    same folder that is then renamed (``os.replace``).

    Raises:
      ValueError: ``path`` does not end in ``.npz`` (the message names ``kind``).
    """
    path = os.fspath(path)
    if not path.endswith(".npz"):
        raise ValueError(f"path: a {kind} file must end in .npz, got {path!r}")
    tmp = f"{path}.tmp-{os.getpid()}.npz"
    try:
        np.savez(tmp, **arrays, format=np.asarray(tag))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load(
    path: str | os.PathLike, fields: Sequence[str], *, tag: str, kind: str
) -> dict[str, np.ndarray]:
    """Reads ``fields`` from a file written by :func:`save` with the same ``tag`` (no pickle).

    Raises:
      ValueError: a field or the format entry is missing, or the format is not ``tag``.
    """
    path = os.fspath(path)
    with np.load(path, allow_pickle=False) as data:
        missing = [f for f in (*fields, "format") if f not in data.files]
        if missing:
            raise ValueError(f"{path}: not a jaxmail {kind} file; missing {missing}")
        if str(data["format"]) != tag:
            raise ValueError(f"{path}: unknown format {str(data['format'])!r}, expected {tag!r}")
        return {f: data[f] for f in fields}
