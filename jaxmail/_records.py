"""Validated records: the pytree protocol and file loading that games and datasets share.

A record is a frozen dataclass whose fields are arrays. Built from arrays, it validates them in
``__post_init__``; rebuilt by JAX from leaves (``vmap`` outputs, ``jax.tree_util``), it trusts
them, so a batch of records is the same class with a leading axis on every leaf.
"""

from __future__ import annotations

import dataclasses
import functools
import os

import numpy as np

from jaxmail import _npz


class Record:
    """Base of a frozen dataclass whose fields, in order, are its pytree leaves.

    Register the subclass with ``jax.tree_util.register_pytree_node_class``.
    :meth:`tree_unflatten` builds the object without calling ``__init__``: leaves are not
    validated again (they may be tracers or carry batch axes).
    """

    __slots__ = ()

    @classmethod
    @functools.cache
    def _leaf_names(cls) -> tuple[str, ...]:
        """The names of the fields, in order."""
        return tuple(field.name for field in dataclasses.fields(cls))

    def tree_flatten(self):
        return tuple(getattr(self, name) for name in self._leaf_names()), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        del aux
        obj = object.__new__(cls)
        for name, value in zip(cls._leaf_names(), children):
            object.__setattr__(obj, name, value)
        return obj


def check_path(path: str | os.PathLike, *, kind: str) -> None:
    """Raises ``ValueError`` unless ``path`` names a ``.npz`` file (the only format written)."""
    if not os.fspath(path).endswith(".npz"):
        raise ValueError(f"path: a {kind} file must end in .npz, got {os.fspath(path)!r}")


def save(path: str | os.PathLike, record: Record, *, tag: str, kind: str) -> None:
    """Writes ``record``'s leaves to ``path`` with ``_npz.save`` (no pickle, atomically)."""
    arrays = {name: np.asarray(getattr(record, name)) for name in record._leaf_names()}
    _npz.save(path, arrays, tag=tag, kind=kind)


def load(path: str | os.PathLike, cls: type[Record], *, tag: str, kind: str) -> Record:
    """Reads a record that ``_npz.save`` wrote and validates it like a new one.

    Raises:
      FileNotFoundError: no file at ``path``.
      ValueError: the file is not a readable ``kind`` file, or the record it holds is invalid;
        the message starts with the path.
      TypeError: a field has the wrong dtype; the message starts with the path.
    """
    fields = _npz.load(path, cls._leaf_names(), tag=tag, kind=kind)
    try:
        return cls(**fields)
    except (ValueError, TypeError) as e:
        raise type(e)(f"{os.fspath(path)}: {e}") from e
