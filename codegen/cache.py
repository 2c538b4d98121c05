"""The on-disk cache of generated modules.

Each compiled graph is one Python module ``symgrad_<key>.py`` plus a metadata file
``symgrad_<key>.json``, in ``$SYMGRAD_CACHE_DIR`` (default: the user cache dir). Files are written
atomically (temp file + rename) and the metadata, written last, holds a hash of the source: a
half-written or corrupt entry fails the check and is rebuilt instead of crashing. Modules are
imported by name and registered in ``sys.modules`` before they run, which Numba's
``cache=True`` needs to find its machine code again in a new process.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

from . import native_runtime
from .generated_module import GeneratedModule

PREFIX = "symgrad_"


def cache_dir() -> Path:
    """The cache folder (created on first use)."""
    env = os.environ.get("SYMGRAD_CACHE_DIR")
    if env:
        path = Path(env)
    else:
        import platformdirs

        path = Path(platformdirs.user_cache_dir("symgrad"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@lru_cache(maxsize=1)
def library_fingerprint() -> str:
    """Hash of symgrad's own sources and the versions that shape generated code."""
    import numpy
    import sympy

    from .blas_select import backend

    # Numba's version from its metadata: importing Numba costs ~0.3 s, which a warm start whose
    # calls never reach Numba (all-float scalar calls) does not otherwise pay.
    numba_version = importlib.metadata.version("numba")
    h = hashlib.sha256()
    h.update(
        f"{sys.version_info[:3]}|{numba_version}|{numpy.__version__}|{sympy.__version__}".encode()
    )
    # Numba's machine cache of a generated function does not record which GEMM it linked.
    h.update(f"|blas={backend()}".encode())
    root = Path(__file__).resolve().parent.parent
    for folder in ("ir", "compiler", "codegen", "symgrad"):
        base = root / folder
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.py")):
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def make_key(*parts: str) -> str:
    h = hashlib.sha256()
    h.update(library_fingerprint().encode())
    for p in parts:
        h.update(b"\0")
        h.update(p.encode())
    return h.hexdigest()[:40]


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` through a temp file in the same folder and
    ``os.replace``: readers see the old file or the whole new one, never a part."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _paths(key: str) -> tuple[Path, Path]:
    base = cache_dir()
    return base / f"{PREFIX}{key}.py", base / f"{PREFIX}{key}.json"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _import(key: str, path: Path):
    name = f"{PREFIX}{key}"
    module = sys.modules.get(name)
    if module is not None:
        return module
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _deferred_import(key: str, path: Path, source: str):
    """The importer of a :class:`GeneratedModule`: runs later, maybe after the cache folder was
    cleared by another process, so a missing or changed file is first written back from the
    (hash-checked) source already read."""

    def importer():
        try:
            current = path.read_text(encoding="utf-8")
        except OSError:
            current = None
        if current != source:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, source)
        return _import(key, path)

    return importer


def load(key: str):
    """``(module, metadata)`` for a valid cache entry, else ``None`` (a bad entry is removed).

    ``module`` is a :class:`GeneratedModule`: a module with plain-Python twins is imported only
    when one of its Numba functions is first needed.
    """
    src_path, meta_path = _paths(key)
    if not meta_path.exists() or not src_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        source = src_path.read_text(encoding="utf-8")
        if meta.get("source_sha256") != _sha(source):
            raise ValueError("source hash mismatch")
        module = GeneratedModule(src_path, source, _deferred_import(key, src_path, source))
    except Exception:
        evict(key)
        return None
    return module, meta


def store(key: str, source: str, meta: dict):
    """Write an entry atomically: returns ``(module, metadata)`` as :func:`load` does."""
    src_path, meta_path = _paths(key)
    meta = dict(meta, source_sha256=_sha(source), key=key)
    atomic_write(src_path, source)
    atomic_write(meta_path, json.dumps(meta, indent=1, sort_keys=True))
    sys.modules.pop(f"{PREFIX}{key}", None)
    return GeneratedModule(src_path, source, _deferred_import(key, src_path, source)), meta


def evict(key: str) -> None:
    """Remove an entry and Numba's machine code for it."""
    src_path, meta_path = _paths(key)
    sys.modules.pop(f"{PREFIX}{key}", None)
    for p in (src_path, meta_path, *native_runtime.entry_paths(src_path)):
        p.unlink(missing_ok=True)
    pycache = src_path.parent / "__pycache__"
    if pycache.is_dir():
        for p in pycache.glob(f"{PREFIX}{key}*"):
            p.unlink(missing_ok=True)
