"""The sweep runner: settings x seed chunks, results written atomically, resumable.

``run(experiment, config, out_dir)`` writes into ``out_dir``:

* ``.lock``: held (``fcntl.flock``, exclusive) for the run's life, so that a second run into
  the same directory stops with :class:`LockedError` before touching anything. The kernel
  drops the lock when the process ends, however it ends: a lock file left by a dead process
  does not block.
* ``config.json`` (first): the experiment's name, the full configuration, the dtype, the
  platform and device kind, and the versions of jaxmail, JAX and jaxlib, the devices, their
  count and the mesh the run used; a resume appends its own devices and versions to
  ``resumes``.
* ``results.csv``: one row per seed and setting (``[B, K]`` columns give ``K`` rows per seed, see
  :mod:`.base`); the first columns are the setting's keys and ``seed``. Rewritten atomically
  after every chunk (:mod:`.results`): a run stopped at any moment (Ctrl-C, ``kill -9``, a lost
  machine) keeps every finished chunk, and ``resume=True`` computes the chunks that are not in
  the file. Every row carries its chunk's CRC-32 (:data:`.results.CHECK_COLUMN`); on resume
  each chunk's rows are checked against it, and rows that are malformed, belong to no chunk of
  this configuration, or belong to an incomplete or altered chunk are dropped (the count is
  reported) and their chunks recomputed. Intact rows are copied as they are (the same bytes),
  never recomputed, and chunks are written in the plan's order; since every seed's numbers
  depend on its key alone and every chunk is computed by the same program (the last one is
  padded; see below), the resumed file is byte for byte the uninterrupted one.
* ``summary.md``, ``findings.json`` (:mod:`.findings`: every claim checked, with its counts) and
  the PNG figures, from ``results.csv`` as read back, at the end. The findings are also appended
  to ``summary.md`` as a table.

Seeds become keys here only: seed ``s`` gets ``fold_in(key(config.base_seed), s)``
(:func:`seed_keys`).

Devices: the run hands ``D`` chunks (``D = jax.device_count()``) to each ``run_chunk`` call and
fixes :func:`.sharding.map_seeds`' block to ``chunk_size``, so every device runs one chunk with
the program that runs it on one device: the numbers do not depend on the device count (tested
with 4 forced host devices), and a resume on another device count is accepted. They may depend
on the kind of device and on jaxlib, so a resume on another platform or device kind is
refused.

``dtype="float64"`` runs the whole experiment with ``jax_enable_x64`` on (the
``jax.enable_x64`` context, entered before any computation of the run and left at its end, so
that the rest of the process keeps its setting). All arrays that the experiment creates inside
the run, games included, are then float64.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmail.experiments import findings as findings_lib
from jaxmail.experiments import results
from jaxmail.experiments.base import Config, Experiment, Setting
from jaxmail.experiments.sharding import AXIS, seeds_per_device

DTYPES = ("float32", "float64")
CONFIG_FILE = "config.json"
RESULTS_FILE = "results.csv"
SUMMARY_FILE = "summary.md"
FINDINGS_FILE = findings_lib.FINDINGS_FILE
LOCK_FILE = ".lock"
# config.json entries that may differ between a run and its resumption.
_ENVIRONMENT_KEYS = (
    "jaxmail_version",
    "jax_version",
    "jaxlib_version",
    "devices",
    "device_count",
    "mesh",
    "processes",
    "resumes",
)


class ResumeError(RuntimeError):
    """The output directory cannot take this run: it holds results that this run must not
    overwrite or cannot resume, it is not a writable directory, or another run holds it."""


class LockedError(ResumeError):
    """Another run holds the output directory's lock."""


def seed_keys(base_seed: int, seeds: np.ndarray) -> jax.Array:
    """``[B]`` keys ``fold_in(key(base_seed), s)`` for the seeds ``s``.

    A seed's key depends on that seed alone, so chunking, resuming and the device count leave
    every seed's numbers unchanged.
    """
    seeds = jnp.asarray(np.asarray(seeds, dtype=np.uint32))
    root = jax.random.key(base_seed)
    return jax.vmap(lambda s: jax.random.fold_in(root, s))(seeds)


def _environment() -> dict[str, Any]:
    import jaxlib

    import jaxmail

    devices = jax.devices()
    return {
        "jaxmail_version": jaxmail.__version__,
        "jax_version": jax.__version__,
        "jaxlib_version": jaxlib.__version__,
        "devices": [str(d) for d in devices],
        "device_count": len(devices),
        "mesh": {"axis": AXIS, "shape": [len(devices)]},
        "processes": jax.process_count(),
    }


def _config_record(experiment: Experiment, config: Config, dtype: str) -> dict[str, Any]:
    device = jax.devices()[0]
    return {
        "experiment": experiment.name,
        "config": config.to_dict(),
        "dtype": dtype,
        "mesh_axis": AXIS,
        "seeds_per_device": config.chunk_size,
        "platform": device.platform,
        "device_kind": device.device_kind,
        **_environment(),
    }


def _comparable(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in _ENVIRONMENT_KEYS}


def _check_resumable(path: str, record: dict[str, Any]) -> dict[str, Any]:
    """The previous run's record; raises :class:`ResumeError` if it differs from ``record``."""
    try:
        with open(path, encoding="utf-8") as f:
            old = json.load(f)
    except (OSError, ValueError) as e:
        raise ResumeError(f"{path}: cannot read the previous run's configuration ({e})") from None
    if not isinstance(old, dict):
        raise ResumeError(f"{path}: expected a JSON object, got {type(old).__name__}")
    old_c, new_c = _comparable(old), _comparable(record)
    if old_c != new_c:
        diffs = []
        for key in sorted(set(old_c) | set(new_c)):
            a, b = old_c.get(key), new_c.get(key)
            if key == "config" and isinstance(a, dict) and isinstance(b, dict):
                for k in sorted(set(a) | set(b)):
                    if a.get(k) != b.get(k):
                        diffs.append(f"config.{k}: {a.get(k)!r} in the file, {b.get(k)!r} now")
            elif a != b:
                diffs.append(f"{key}: {a!r} in the file, {b!r} now")
        raise ResumeError(
            f"cannot resume into {os.path.dirname(path)}: its configuration differs from this "
            f"run's ({'; '.join(diffs)}). Use the same options, or another --out."
        )
    return old


def _expand(columns: dict[str, np.ndarray], setting: Setting, seeds: np.ndarray) -> list:
    """One chunk's columns ``[B, *extra]`` -> ``(header, rows)`` of formatted strings."""
    if not columns:
        raise ValueError("run_chunk returned no columns")
    names = list(columns)
    clash = sorted(set(names) & (set(setting) | {"seed", results.CHECK_COLUMN}))
    if clash:
        raise ValueError(f"run_chunk returned columns {clash} that clash with the setting/seed")
    arrays = [np.asarray(columns[k]) for k in names]
    shape = arrays[0].shape
    for name, a in zip(names, arrays):
        if a.shape != shape:
            raise ValueError(
                f"run_chunk: column {name!r} has shape {a.shape}, {names[0]!r} has {shape}"
            )
    if not shape or shape[0] != len(seeds):
        raise ValueError(f"run_chunk: columns must be [B={len(seeds)}, ...], got {shape}")
    seed_column = np.broadcast_to(np.asarray(seeds).reshape((-1,) + (1,) * (len(shape) - 1)), shape)
    header = [*setting, "seed", *names, results.CHECK_COLUMN]
    fixed = [results.format_value(v) for v in setting.values()]
    flat = [a.reshape(-1) for a in arrays]
    rows = [
        [*fixed, results.format_value(s), *(results.format_value(a[r]) for a in flat)]
        for r, s in enumerate(seed_column.reshape(-1))
    ]
    check = results.chunk_checksum(header, rows)
    return header, [[*row, check] for row in rows]


def _setting_key(setting: Setting) -> tuple[str, ...]:
    return tuple(results.format_value(v) for v in setting.values())


Plan = list[tuple[Setting, np.ndarray]]


def _plan(experiment: Experiment, config: Config) -> Plan:
    """Every ``(setting, seeds)`` chunk of the run, in the order of ``results.csv``."""
    return [(s, seeds) for s in experiment.settings(config) for seeds in config.chunks()]


def _check_header(path: str, header: list[str], plan: Plan) -> None:
    keys = [*plan[0][0], "seed"] if plan else ["seed"]
    if (
        header[: len(keys)] != keys
        or header[-1:] != [results.CHECK_COLUMN]
        or len(header) < len(keys) + 2
        or len(set(header)) != len(header)
    ):
        raise ResumeError(
            f"{path}: its header {header} is not one this experiment writes ({keys} first, "
            f"{results.CHECK_COLUMN!r} last, no repeats). Move the file away, or choose another "
            "--out."
        )


def _intact_chunks(
    path: str, header: list[str], rows: list[list[str]], plan: Plan
) -> tuple[dict[int, list[list[str]]], int]:
    """The chunks of ``plan`` whose rows in the file are complete and intact.

    A chunk's rows are those with its setting and one of its seeds, in file order; the chunk is
    kept if its rows with ``len(header)`` fields that carry its most common check value have
    that CRC-32 with ``header`` (:func:`.results.chunk_checksum`). Every other row is dropped:
    malformed, not of this plan, carrying another check value, or of a chunk with a missing or
    altered row, or under an altered header (then every chunk is recomputed).

    Returns:
      ``({plan index: rows}, number of rows dropped)``.
    """
    if not header and not rows:
        return {}, 0
    _check_header(path, header, plan)
    width, num_keys = len(header), len(plan[0][0]) if plan else 0
    owner = {}  # (setting fields..., seed) -> plan index
    for p, (setting, seeds) in enumerate(plan):
        fixed = _setting_key(setting)
        for seed in seeds:
            owner[(*fixed, results.format_value(seed))] = p
    grouped: dict[int, list[list[str]]] = {}
    dropped = 0
    for row in rows:
        p = owner.get(tuple(row[: num_keys + 1])) if len(row) == width else None
        if p is None:
            dropped += 1
        else:
            grouped.setdefault(p, []).append(row)
    intact = {}
    for p, chunk in grouped.items():
        # The rows that carry the chunk's most common check value are its candidates; a row
        # with another value (a foreign or altered row) is dropped on its own.
        values = [row[-1] for row in chunk]
        value = max(set(values), key=values.count)
        candidates = [row for row in chunk if row[-1] == value]
        if results.chunk_checksum(header, [row[:-1] for row in candidates]) == value:
            intact[p] = candidates
            dropped += len(chunk) - len(candidates)
        else:
            dropped += len(chunk)
    return intact, dropped


def _check_path(out_dir: str) -> None:
    """Raises :class:`ResumeError` unless ``out_dir`` is, or can be made, a writable directory."""
    where = f"output directory {out_dir!r}"
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ResumeError(f"{where}: it exists and is not a directory")
    existing = os.path.abspath(out_dir)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ResumeError(f"{where}: {existing!r} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ResumeError(f"{where}: no permission to write in {existing!r}")


def check_out_dir(
    experiment: Experiment,
    config: Config,
    out_dir: str | os.PathLike,
    *,
    resume: bool,
    dtype: str = "float32",
) -> tuple[list[str], list[list[str]]]:
    """Checks that :func:`run` may write into ``out_dir``; returns the rows to keep.

    Returns:
      ``(header, rows)`` of the existing ``results.csv`` when resuming (every row, damaged ones
      included: :func:`run` checks them), else ``([], [])``.

    Raises:
      ResumeError: ``out_dir`` is not a directory that can be written (it is a file, lies below
        a file, or in a folder without write permission); without ``resume``, it already
        holds results; with it, its configuration differs from this one (the device count
        may differ) or the header of its ``results.csv`` is not this experiment's.
    """
    out_dir = os.fspath(out_dir)
    _check_path(out_dir)
    config_path = os.path.join(out_dir, CONFIG_FILE)
    results_path = os.path.join(out_dir, RESULTS_FILE)
    header, rows = results.read_rows(results_path)
    if not resume:
        if rows:
            raise ResumeError(
                f"{results_path} already holds {len(rows)} rows. Pass --resume to continue that "
                "run, or choose another --out."
            )
        return [], []
    record = _config_record(experiment, config, dtype)
    if os.path.exists(config_path):
        _check_resumable(config_path, record)
    elif rows:
        raise ResumeError(f"cannot resume into {out_dir}: {results_path} has no {CONFIG_FILE}")
    if header or rows:
        _check_header(results_path, header, _plan(experiment, config))
    return header, rows


@contextlib.contextmanager
def lock_out_dir(out_dir: str | os.PathLike) -> Iterator[None]:
    """Holds an exclusive lock on ``out_dir/.lock`` (created if missing) within the context.

    ``fcntl.flock`` with ``LOCK_NB``: a second holder fails at once. The kernel releases the
    lock when its process ends, so a lock file left by a dead process does not block. The file
    holds the holder's process id, for the message. (No lock where ``fcntl`` is missing.)

    Raises:
      LockedError: another process holds the lock.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    path = os.path.join(os.fspath(out_dir), LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            raise LockedError(
                f"output directory {os.fspath(out_dir)!r} is in use by another run (process "
                f"{holder}); wait for it to end, or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _x64(dtype: str):
    if dtype not in DTYPES:
        raise ValueError(f"dtype: expected one of {DTYPES}, got {dtype!r}")
    return jax.enable_x64(dtype == "float64")


def _groups(pending: list[int], plan: Plan, size: int) -> list[list[int]]:
    """``pending`` plan indices in runs of at most ``size`` chunks of one setting."""
    groups: list[list[int]] = []
    for p in pending:
        if groups and len(groups[-1]) < size and plan[groups[-1][-1]][0] == plan[p][0]:
            groups[-1].append(p)
        else:
            groups.append([p])
    return groups


def run(
    experiment: Experiment,
    config: Config,
    out_dir: str | os.PathLike,
    *,
    resume: bool = False,
    progress: bool = True,
    dtype: str = "float32",
    on_chunk: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Runs ``experiment`` with ``config`` into ``out_dir`` (module docstring for the files).

    Args:
      experiment: a registered :class:`~jaxmail.experiments.base.Experiment`.
      config: an instance of ``experiment.config_type``.
      out_dir: the output directory (created if missing).
      resume: continue a run stopped in ``out_dir``; its ``config.json`` must match this one
        (apart from versions and the device count).
      progress: show a tqdm progress bar (on stderr) over the chunks of all settings.
      dtype: ``"float32"`` (default) or ``"float64"`` (``jax_enable_x64`` for this run).
      on_chunk: called with the number of chunks computed so far after each chunk's rows are
        on disk (a hook for progress reporting, for honouring a stop request at a chunk
        boundary, and for tests of interruption).

    Returns:
      ``{"out_dir", "computed_chunks", "skipped_chunks", "dropped_rows", "rows", "summary",
      "findings", "figures"}`` (``dropped_rows``: damaged rows of a resumed ``results.csv``
      that were dropped and recomputed; ``findings``: a list of
      :class:`~jaxmail.experiments.findings.Finding`).

    Raises:
      ResumeError: ``out_dir`` is not a writable directory, already holds results and
        ``resume`` is False, or its configuration differs from this one.
      LockedError: another run holds ``out_dir``.
      TypeError: ``config`` is not an instance of ``experiment.config_type``.
    """
    if not isinstance(config, experiment.config_type):
        raise TypeError(
            f"config: expected {experiment.config_type.__name__} for {experiment.name!r}, got "
            f"{type(config).__name__}"
        )
    out_dir = os.fspath(out_dir)
    writer = jax.process_index() == 0
    if writer:
        _check_path(out_dir)
        try:
            os.makedirs(out_dir, exist_ok=True)
        except OSError as e:
            raise ResumeError(f"output directory {out_dir!r}: cannot create it ({e})") from None
    lock = lock_out_dir(out_dir) if writer else contextlib.nullcontext()
    with lock, _x64(dtype):
        return _run_locked(experiment, config, out_dir, resume, progress, dtype, on_chunk, writer)


def _run_locked(experiment, config, out_dir, resume, progress, dtype, on_chunk, writer):
    config_path = os.path.join(out_dir, CONFIG_FILE)
    results_path = os.path.join(out_dir, RESULTS_FILE)
    record = _config_record(experiment, config, dtype)
    header, rows = check_out_dir(experiment, config, out_dir, resume=resume, dtype=dtype)
    plan = _plan(experiment, config)
    done, dropped = _intact_chunks(results_path, header, rows, plan)
    if not done:  # the header comes from the first chunk computed
        header = []
    if writer:
        results.remove_stale_temporaries(out_dir)
        if resume and os.path.exists(config_path):  # keep the original, note this resume
            with open(config_path, encoding="utf-8") as f:
                old = json.load(f)
            old.setdefault("resumes", []).append(_environment())
            results.write_text(config_path, json.dumps(old, indent=2) + "\n")
        else:
            results.write_text(config_path, json.dumps(record, indent=2) + "\n")
        if dropped:
            print(
                f"jaxmail: {results_path}: dropped {dropped} damaged or incomplete rows; their "
                "chunks are recomputed",
                file=sys.stderr,
            )

    def write():
        if writer:
            ordered = [row for p in sorted(done) for row in done[p]]
            results.write_text(results_path, results.csv_text(header, ordered))

    if dropped and writer:  # the file holds only intact chunks from here on
        write()
    pending = [p for p in range(len(plan)) if p not in done]
    skipped = len(plan) - len(pending)
    bar = _progress_bar(len(plan), experiment.name, enabled=progress and writer)
    bar.update(skipped)
    computed = 0
    size = config.chunk_size
    try:
        with seeds_per_device(size):
            for group in _groups(pending, plan, jax.device_count()):
                setting = plan[group[0]][0]
                padded = [
                    np.concatenate([seeds, np.repeat(seeds[-1:], size - len(seeds))])
                    for _, seeds in (plan[p] for p in group)
                ]
                keys = seed_keys(config.base_seed, np.concatenate(padded))
                columns = experiment.run_chunk(config, dict(setting), keys)
                columns = {k: np.asarray(v) for k, v in columns.items()}
                for j, p in enumerate(group):
                    seeds = plan[p][1]
                    part = {k: v[j * size : j * size + len(seeds)] for k, v in columns.items()}
                    chunk_header, done[p] = _expand(part, setting, seeds)
                    if header and chunk_header != header:
                        raise ResumeError(
                            f"{experiment.name}: setting {setting} gives columns "
                            f"{chunk_header}, {results_path} has {header}. Move the file "
                            "away, or choose another --out."
                        )
                    header = chunk_header
                write()
                bar.set_postfix_str(", ".join(f"{k}={v}" for k, v in setting.items()))
                for _ in group:
                    computed += 1
                    bar.update(1)
                    if on_chunk is not None:
                        on_chunk(computed)
    finally:
        bar.close()

    rows = [row for p in sorted(done) for row in done[p]]
    table = results.table_from_rows(header, rows)
    summary = figures = found = None
    if writer:
        summary = experiment.summarize(config, table, out_dir)
        found = list(experiment.findings(config, table)) if experiment.findings else []
        summary = summary.rstrip("\n") + "\n" + findings_lib.section(found)
        findings_lib.write(os.path.join(out_dir, FINDINGS_FILE), found)
        results.write_text(os.path.join(out_dir, SUMMARY_FILE), summary)
        figures = experiment.plot(config, table, out_dir)
    return {
        "out_dir": out_dir,
        "computed_chunks": computed,
        "skipped_chunks": skipped,
        "dropped_rows": dropped,
        "rows": len(rows),
        "summary": summary,
        "findings": found,
        "figures": figures,
    }


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, name: str, *, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=name, unit="chunk", dynamic_ncols=True)
