"""Result files: atomic writes, ``results.csv`` rows, Markdown tables, PNG figures.

Every file is written to a temporary file in the same directory, flushed to disk and moved over
the target with ``os.replace`` (atomic on POSIX and Windows): a reader, or a run killed at any
moment, sees either the old file or the new one, never a torn one. Temporary files are named
``.<target>.<random>.tmp``; one left behind by a killed process is removed by the next run
(:func:`remove_stale_temporaries`).

CSV values are written with the ``csv`` module; floats as ``repr(float(x))`` (the shortest string
that reads back to the same float64; a float32 value is converted exactly), ints as ints,
booleans as ``True``/``False``. The same numbers therefore give the same bytes, which is what
lets a resumed run produce a file identical to an uninterrupted one.

The last column of ``results.csv``, :data:`CHECK_COLUMN`, holds on every row the CRC-32 of the
header and its chunk's rows (:func:`chunk_checksum`), so that a resumed run can tell a complete,
intact chunk from a damaged one; :func:`read_table` leaves it out.

Files are created with the permissions ``0o666`` less the process's umask (``0o644`` under the
usual umask ``022``), as ``open`` would create them.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

_TMP_SUFFIX = ".tmp"
CHECK_COLUMN = "chunk_crc32"


def _umask() -> int:
    """The process's umask (read by setting it and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yields a temporary path beside ``path``; on success moves it over ``path`` atomically.

    On any exception (``KeyboardInterrupt`` included) the temporary file is removed and
    ``path`` is left as it was.
    """
    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=_TMP_SUFFIX, dir=directory)
    try:  # mkstemp creates 0o600; give the file the mode that open() would
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o666 & ~_umask())
    finally:
        os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    """Writes ``text`` (UTF-8, ``\\n`` line ends) to ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def remove_stale_temporaries(directory: str | os.PathLike) -> list[str]:
    """Removes temporary files of :func:`atomic_path` left by a killed run; returns their names."""
    removed = []
    if not os.path.isdir(directory):
        return removed
    for name in os.listdir(directory):
        if name.startswith(".") and name.endswith(_TMP_SUFFIX):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(directory, name))
                removed.append(name)
    return removed


def format_value(value: Any) -> str:
    """The CSV text of one value (module docstring)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, (bool, np.bool_)):
        return "True" if value else "False"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, str):
        return value
    raise TypeError(f"cannot write {type(value).__name__} {value!r} to results.csv")


def parse_value(text: str) -> bool | int | float | str:
    """Inverse of :func:`format_value` (strings that are not numbers stay strings)."""
    if text in ("True", "False"):
        return text == "True"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def csv_text(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """``header`` and ``rows`` (already formatted strings) as CSV text with ``\\n`` line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def chunk_checksum(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """The :data:`CHECK_COLUMN` value of a chunk, 8 hex digits.

    CRC-32 of the CSV text of the file's ``header`` (check column included) and the chunk's
    formatted ``rows`` without the check column, in file order: a changed header, a changed,
    missing or extra row all change it.
    """
    return f"{zlib.crc32(csv_text(header, rows).encode('utf-8')):08x}"


def read_rows(path: str | os.PathLike) -> tuple[list[str], list[list[str]]]:
    """``(header, rows)`` of a CSV file as strings; ``([], [])`` if it is missing or empty.

    Bytes that are not UTF-8 read as U+FFFD and a line that is not CSV becomes a one-field row:
    a damaged file still reads, and the resume check drops the damaged rows. (Values never
    hold line breaks, so every line is one row.)
    """
    if not os.path.exists(path):
        return [], []
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        text = f.read().replace("\0", "\ufffd")
    lines = []
    for line in text.splitlines():  # one line at a time: a damaged line cannot spill over
        try:
            lines.append(next(csv.reader([line]), []))
        except csv.Error:
            lines.append([line])
    if not lines:
        return [], []
    return lines[0], lines[1:]


def table_from_rows(header: Sequence[str], rows: Sequence[Sequence[str]]) -> dict[str, np.ndarray]:
    """Columns of parsed values: a NumPy int, float, bool or string array per column.

    :data:`CHECK_COLUMN` is left out.
    """
    table = {}
    for j, name in enumerate(header):
        if name == CHECK_COLUMN:
            continue
        values = [parse_value(row[j]) for row in rows]
        if values and all(isinstance(v, bool) for v in values):
            table[name] = np.asarray(values, dtype=bool)
        elif values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            table[name] = np.asarray(values, dtype=np.int64)
        elif values and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
        ):
            table[name] = np.asarray(values, dtype=np.float64)
        else:
            table[name] = np.asarray([str(v) for v in values], dtype=object)
    return table


def read_table(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """``results.csv`` as a dict of columns (:func:`table_from_rows`)."""
    return table_from_rows(*read_rows(path))


def select(table: dict[str, np.ndarray], **where: Any) -> dict[str, np.ndarray]:
    """The rows of ``table`` whose columns equal the given values (floats compared closely)."""
    n = len(next(iter(table.values()))) if table else 0
    keep = np.ones(n, dtype=bool)
    for name, value in where.items():
        column = table[name]
        if column.dtype.kind == "f":
            keep &= np.isclose(column, float(value), rtol=1e-12, atol=0.0)
        else:
            keep &= column == value
    return {k: v[keep] for k, v in table.items()}


def format_number(x: float, digits: int = 3) -> str:
    """A number for a Markdown table: ``16.667``, ``9.000``, ``0.00444``, ``nan`` as ``—``."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    if x == 0.0:
        return "0"
    if abs(x) >= 0.1 and abs(x) < 1e6:
        return f"{x:.{digits}f}"
    return f"{x:.{digits}g}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table; numbers go through :func:`format_number`."""

    def cell(v):
        if isinstance(v, (float, np.floating)):
            return format_number(float(v))
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def new_figure(**kwargs):
    """A matplotlib ``Figure`` that renders with Agg, without pyplot (no global backend state,
    no display needed); ``kwargs`` go to ``Figure`` (``figsize``, ``layout``...)."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def save_figure(fig, path: str | os.PathLike, *, dpi: int = 120) -> str:
    """Saves a figure as PNG atomically and returns ``path``."""
    path = os.fspath(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path


def violation_tolerance(discount):
    """Rounding allowance when testing ``NashGap <= bound``: values are of size 1/(1-gamma).

    ``1e-4 / (1 - gamma)``: float32 value and best-response solves carry errors of about 1e-4
    relative to values of size ``1/(1-gamma)``.
    """
    return 1e-4 / (1.0 - np.asarray(discount))
