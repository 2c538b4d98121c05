"""A generated module from the cache, imported on first use of one of its Numba functions.

Importing a generated module imports Numba and runs its ``@njit`` decorators, ~0.3 s in a new
process before anything is compiled or loaded. An all-scalar float64 graph is mostly called
with Python floats, which its plain-Python twins (``py_value``, ``py_value_and_grad``) answer
without Numba; so the twins are executed straight from the module's source, and the module
itself is imported only when something asks for a Numba function (an array call, ``f.forward``,
a twin's overflow falling back to Numba). A warm start of such a function then costs the
imports of SymPy, NumPy and symgrad and reading two small files.
"""

from __future__ import annotations

import ast
import builtins
import functools
import hashlib
import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import native_runtime, python_math
from .module import KERNEL_MODULES

#: What the twins may read besides their own locals: the module's imports they use.
_TWIN_GLOBALS = {
    "math": math,
    "np": np,
    **{name: getattr(python_math, name) for name in KERNEL_MODULES[python_math.__name__]},
}


class GeneratedModule:
    """The generated module at ``path``: twins now, everything else on first attribute access.

    Attributes other than the ones below are looked up on the imported module, so this stands in
    for the module object wherever one is expected.
    """

    def __init__(self, path: Path, source: str, importer: Callable):
        self.path = path
        self.source_text = source
        self._importer = importer
        self._imported = None
        self._twins = _python_twins(source, path)
        if not self._twins and not native_runtime.has_entries(path):
            self._imported = importer()  # Numba is needed anyway: fail (and rebuild) now

    @property
    def module(self):
        """The imported module (imported, with Numba, on first access)."""
        if self._imported is None:
            self._imported = self._importer()
        return self._imported

    @property
    def imported(self) -> bool:
        """Whether the module (and so Numba) has been imported yet."""
        return self._imported is not None

    def twin(self, name: str) -> Callable | None:
        """The plain-Python function ``name`` (``py_value``...), without importing the module."""
        return self._twins.get(name)

    @functools.cached_property
    def _source_sha(self) -> str:
        """SHA-256 of the source, which a native entry must have been built from."""
        return hashlib.sha256(self.source_text.encode()).hexdigest()

    def function(self, name: str, on_exported: Callable | None = None) -> Callable:
        """Generated function ``name`` for symgrad's own calls: its native entry when one was
        stored for this process (no Numba import, ``codegen/native_runtime.py``), else the Numba
        function, which stores the entry after its first call when it compiled there.

        ``on_exported(dispatcher)`` is called once that happened (to drop the storing wrapper).
        """
        if not native_runtime.enabled():
            return getattr(self.module, name)
        path = native_runtime.entry_path(self.path, name)
        sha = self._source_sha
        if self._imported is None and self.path.stem not in sys.modules:
            # (Once the module is imported, Numba holds the code already.)
            native = native_runtime.load(path, sha, lambda: getattr(self.module, name))
            if native is not None:
                return native
        dispatcher = getattr(self.module, name)
        if path.exists() or not hasattr(dispatcher, "signatures"):
            return dispatcher
        from .native_export import ExportAfterCompile

        return ExportAfterCompile(dispatcher, path, sha, on_exported or (lambda d: None))

    def __getattr__(self, name: str):
        # Only reached for names not set in __init__: the generated functions.
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.module, name)

    def __repr__(self) -> str:
        state = "imported" if self.imported else "not imported yet"
        return f"<generated module {self.path.name} ({state})>"


def _python_twins(source: str, path: Path) -> dict[str, Callable]:
    """The ``py_*`` functions of ``source``, executed without the rest of the module.

    Empty when there are none, or when a twin reads a global other than ``math``, ``np``, the
    ``python_math`` helpers and the module's own constants (then the module is imported and the
    twins are taken from it).
    """
    if "\ndef py_" not in source:
        return {}
    tree = ast.parse(source, filename=str(path))
    twins = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("py_")]
    constants = [n for n in tree.body if isinstance(n, ast.Assign)]
    defined = {t.id for n in constants for t in n.targets if isinstance(t, ast.Name)}
    available = set(_TWIN_GLOBALS) | defined | set(dir(builtins))
    for function in twins:
        local = {a.arg for a in function.args.args}
        names = [n for n in ast.walk(function) if isinstance(n, ast.Name)]
        local |= {n.id for n in names if isinstance(n.ctx, ast.Store)}
        loads = {n.id for n in names if isinstance(n.ctx, ast.Load)}
        if loads - local - available:
            return {}
    namespace = dict(_TWIN_GLOBALS)
    # Line numbers stay those of the file, so inspect.getsource finds each twin's text.
    code = compile(ast.Module(body=constants + twins, type_ignores=[]), str(path), "exec")
    try:
        exec(code, namespace)
    except Exception:  # a constant this namespace cannot build: import the module instead
        return {}
    return {f.name: namespace[f.name] for f in twins}
