"""The sweep runner: settings x seed chunks, results written atomically, resumable.

``run(experiment, config, out_dir)`` writes into ``out_dir``:

* ``config.json`` (first): the experiment's name, the full configuration, the dtype, and the
  versions of jaxmail, JAX and jaxlib and the devices the run used.
* ``results.csv``: one row per seed and setting (``[B, K]`` columns give ``K`` rows per seed, see
  :mod:`.base`); the first columns are the setting's keys and ``seed``. Rewritten atomically
  after every chunk (:mod:`.results`): a run stopped at any moment (Ctrl-C, ``kill -9``, a lost
  machine) keeps every finished chunk, and ``resume=True`` continues with the first chunk that
  is not in the file. Rows already in the file are copied as they are (the same bytes), never
  recomputed; since every seed's numbers depend on its key alone and every chunk has the same
  shape (the last one is padded), the resumed file is byte for byte the uninterrupted one.
* ``summary.md``, ``findings.json`` (:mod:`.findings`: every claim checked, with its counts) and
  the PNG figures, from ``results.csv`` as read back, at the end. The findings are also appended
  to ``summary.md`` as a table.

Seeds become keys here only: seed ``s`` gets ``fold_in(key(config.base_seed), s)``
(:func:`seed_keys`).

``dtype="float64"`` runs the whole experiment with ``jax_enable_x64`` on (the
``jax.enable_x64`` context, entered before any computation of the run and left at its end, so
that the rest of the process keeps its setting). All arrays that the experiment creates inside
the run, games included, are then float64.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmail.experiments import findings as findings_lib
from jaxmail.experiments import results
from jaxmail.experiments.base import Config, Experiment, Setting
from jaxmail.experiments.sharding import AXIS

DTYPES = ("float32", "float64")
CONFIG_FILE = "config.json"
RESULTS_FILE = "results.csv"
SUMMARY_FILE = "summary.md"
FINDINGS_FILE = findings_lib.FINDINGS_FILE
# config.json entries that may differ between a run and its resumption.
_ENVIRONMENT_KEYS = ("jaxmail_version", "jax_version", "jaxlib_version", "devices", "processes")


class ResumeError(RuntimeError):
    """The output directory holds results that this run must not overwrite or cannot resume."""


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

    return {
        "jaxmail_version": jaxmail.__version__,
        "jax_version": jax.__version__,
        "jaxlib_version": jaxlib.__version__,
        "devices": [str(d) for d in jax.devices()],
        "processes": jax.process_count(),
    }


def _config_record(experiment: Experiment, config: Config, dtype: str) -> dict[str, Any]:
    return {
        "experiment": experiment.name,
        "config": config.to_dict(),
        "dtype": dtype,
        "mesh_axis": AXIS,
        **_environment(),
    }


def _comparable(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in _ENVIRONMENT_KEYS}


def _check_resumable(path: str, record: dict[str, Any]) -> None:
    try:
        with open(path, encoding="utf-8") as f:
            old = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ResumeError(f"{path}: cannot read the previous run's configuration ({e})") from None
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


def _expand(columns: dict[str, np.ndarray], setting: Setting, seeds: np.ndarray) -> list:
    """One chunk's columns ``[B, *extra]`` -> ``(header, rows)`` of formatted strings."""
    if not columns:
        raise ValueError("run_chunk returned no columns")
    names = list(columns)
    clash = sorted(set(names) & (set(setting) | {"seed"}))
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
    header = [*setting, "seed", *names]
    fixed = [results.format_value(v) for v in setting.values()]
    flat = [a.reshape(-1) for a in arrays]
    rows = [
        [*fixed, results.format_value(s), *(results.format_value(a[r]) for a in flat)]
        for r, s in enumerate(seed_column.reshape(-1))
    ]
    return header, rows


def _setting_key(setting: Setting) -> tuple[str, ...]:
    return tuple(results.format_value(v) for v in setting.values())


def _done_seeds(header: list[str], rows: list[list[str]], setting: Setting) -> set[str]:
    """The seeds (as written) that already have rows for ``setting``."""
    if not rows:
        return set()
    try:
        index = [header.index(k) for k in setting]
        seed_index = header.index("seed")
    except ValueError:
        return set()
    key = _setting_key(setting)
    return {row[seed_index] for row in rows if tuple(row[j] for j in index) == key}


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
      ``(header, rows)`` of the existing ``results.csv`` when resuming, else ``([], [])``.

    Raises:
      ResumeError: without ``resume``, ``out_dir`` already holds results; with it, the
        configuration in ``out_dir`` differs from this one.
    """
    out_dir = os.fspath(out_dir)
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
    return header, rows


def _x64(dtype: str):
    if dtype not in DTYPES:
        raise ValueError(f"dtype: expected one of {DTYPES}, got {dtype!r}")
    return jax.enable_x64(dtype == "float64")


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
        (apart from versions and devices).
      progress: show a tqdm progress bar (on stderr) over the chunks of all settings.
      dtype: ``"float32"`` (default) or ``"float64"`` (``jax_enable_x64`` for this run).
      on_chunk: called with the number of chunks computed so far after each chunk's rows are
        on disk (a hook for progress reporting and for tests of interruption).

    Returns:
      ``{"out_dir", "computed_chunks", "skipped_chunks", "rows", "summary", "findings",
      "figures"}`` (``findings``: a list of :class:`~jaxmail.experiments.findings.Finding`).

    Raises:
      ResumeError: ``out_dir`` already holds results and ``resume`` is False, or its
        configuration differs from this one.
      TypeError: ``config`` is not an instance of ``experiment.config_type``.
    """
    if not isinstance(config, experiment.config_type):
        raise TypeError(
            f"config: expected {experiment.config_type.__name__} for {experiment.name!r}, got "
            f"{type(config).__name__}"
        )
    out_dir = os.fspath(out_dir)
    writer = jax.process_index() == 0
    config_path = os.path.join(out_dir, CONFIG_FILE)
    results_path = os.path.join(out_dir, RESULTS_FILE)
    with _x64(dtype):
        record = _config_record(experiment, config, dtype)
        header, rows = check_out_dir(experiment, config, out_dir, resume=resume, dtype=dtype)
        if writer:
            os.makedirs(out_dir, exist_ok=True)
            results.remove_stale_temporaries(out_dir)
            if not (resume and os.path.exists(config_path)):  # a resumed run keeps the original
                results.write_text(config_path, json.dumps(record, indent=2) + "\n")

        settings = experiment.settings(config)
        chunks = config.chunks()
        plan = [(setting, seeds) for setting in settings for seeds in chunks]
        bar = _progress_bar(len(plan), experiment.name, enabled=progress and writer)
        computed = skipped = 0
        try:
            for setting, seeds in plan:
                done = _done_seeds(header, rows, setting)
                written = [results.format_value(s) for s in seeds]
                if all(s in done for s in written):
                    skipped += 1
                    bar.update(1)
                    continue
                padded = np.concatenate(
                    [seeds, np.repeat(seeds[-1:], config.chunk_size - len(seeds))]
                )
                keys = seed_keys(config.base_seed, padded)
                columns = experiment.run_chunk(config, dict(setting), keys)
                columns = {k: np.asarray(v)[: len(seeds)] for k, v in columns.items()}
                chunk_header, chunk_rows = _expand(columns, setting, seeds)
                if header and chunk_header != header:
                    raise ValueError(
                        f"{experiment.name}: setting {setting} gives columns {chunk_header}, "
                        f"the file has {header}"
                    )
                seed_index = chunk_header.index("seed")
                header = chunk_header
                rows = rows + [r for r in chunk_rows if r[seed_index] not in done]
                if writer:
                    results.write_text(results_path, results.csv_text(header, rows))
                computed += 1
                bar.set_postfix_str(", ".join(f"{k}={v}" for k, v in setting.items()))
                bar.update(1)
                if on_chunk is not None:
                    on_chunk(computed)
        finally:
            bar.close()

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
