"""Checkpoints: arrays and JSON metadata in one ``.npz`` file, written atomically, read without
pickle.

The file is written to a temporary file in the target folder, flushed to disk, then moved over
the target with ``os.replace`` (atomic on POSIX and Windows), so a crash mid-write leaves the
previous checkpoint intact, never a partial one. Reading uses ``np.load(allow_pickle=False)``:
arrays are stored under positional keys (parameter names never become file names) and the
metadata is UTF-8 JSON bytes, so loading a checkpoint cannot run code.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..ir.errors import SymgradError

__all__ = ["Checkpoint", "CheckpointError", "atomic_write", "load_checkpoint", "save_checkpoint"]

FORMAT = "symgrad-checkpoint/1"
_META_KEY = "meta_json"


class CheckpointError(SymgradError):
    """A checkpoint file is missing, corrupt or not a symgrad checkpoint."""


@dataclass
class Checkpoint:
    """The contents of a checkpoint.

    Attributes
    ----------
    groups
        Named groups of named arrays, e.g. ``{"params": {...}, "state": {...}}``.
    meta
        JSON metadata: epoch, step count, RNG state, history, optimiser configuration ...
    """

    groups: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    @property
    def params(self) -> dict[str, np.ndarray]:
        return self.groups.get("params", {})

    @property
    def state(self) -> dict[str, np.ndarray]:
        return self.groups.get("state", {})


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not possible on every platform, hence best effort.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it onto ``path``.

    If ``write`` (or anything before the rename) fails, the temporary file is removed and
    ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def save_checkpoint(
    path: str | os.PathLike,
    groups: Mapping[str, Mapping[str, np.ndarray]],
    meta: Mapping | None = None,
) -> Path:
    """Write named groups of arrays and JSON metadata to ``path`` atomically.

    Examples
    --------
    >>> import tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> p = save_checkpoint(os.path.join(folder, "c.npz"), {"params": {"W": np.eye(2)}},
    ...                     {"epoch": 3})
    >>> ck = load_checkpoint(p)
    >>> ck.meta["epoch"], ck.params["W"].tolist()
    (3, [[1.0, 0.0], [0.0, 1.0]])
    """
    arrays: dict[str, np.ndarray] = {}
    layout: dict[str, list[str]] = {}
    for group, named in groups.items():
        layout[group] = []
        for name, value in named.items():
            arrays[f"a{len(arrays)}"] = np.ascontiguousarray(value)
            layout[group].append(name)
    document = {"format": FORMAT, "layout": layout, "meta": dict(meta or {})}
    text = json.dumps(document, sort_keys=True)
    arrays[_META_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint` (no pickle is ever loaded)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            document = json.loads(bytes(data[_META_KEY]).decode("utf-8"))
            if document.get("format") != FORMAT:
                raise CheckpointError(
                    f"{path} is not a {FORMAT} file (format {document.get('format')!r})"
                )
            groups: dict[str, dict[str, np.ndarray]] = {}
            k = 0
            for group, names in document["layout"].items():
                groups[group] = {}
                for name in names:
                    groups[group][name] = data[f"a{k}"]
                    k += 1
    except CheckpointError:
        raise
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    return Checkpoint(groups, document["meta"])
