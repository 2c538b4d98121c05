"""Store the machine code of a freshly compiled generated function for Numba-free warm starts.

The reader is :mod:`symgrad.codegen.native_runtime`, which explains why and what is checked. An
entry is a pickle of a dict: the object code of the function's Numba code library (its CPython
wrapper and every linked library included), the wrapper and environment symbols, the
environment's constants, the signature, the external symbols the object needs, the environment
key and the hash of the generated source. It is written atomically (``cache.atomic_write``:
temp file, then ``os.replace``); a function Numba loaded from its own cache has no object code to
hand out, so nothing is written for it.
"""

from __future__ import annotations

import pickle
import pickletools
import struct
from collections.abc import Callable
from pathlib import Path

from numba.core import types
from numba.np import numpy_support

from . import native_runtime
from .cache import atomic_write


def signature_spec(sig) -> list | None:
    """The stored form of a Numba signature, or None if the native guard cannot check it."""
    spec = []
    for t in sig:  # the argument types (a dispatcher signature)
        if isinstance(t, types.Array):
            if t.layout != "C" or not t.aligned:
                return None
            spec.append(["array", str(numpy_support.as_dtype(t.dtype)), t.ndim])
        elif isinstance(t, types.Float) or (
            isinstance(t, types.Integer) and t.bitwidth == 64 and t.signed
        ):
            spec.append(["scalar", str(numpy_support.as_dtype(t))])
        else:
            return None
    return spec


def undefined_symbols(obj: bytes) -> list[str] | None:
    """Names of the undefined symbols of an ELF64 little-endian object; None for other formats."""
    if obj[:4] != b"\x7fELF" or obj[4] != 2 or obj[5] != 1:
        return None
    (shoff,) = struct.unpack_from("<Q", obj, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", obj, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", obj, shoff + k * shentsize) for k in range(shnum)]
    names = []
    for _, sh_type, _, _, offset, size, link, _, _, entsize in sections:
        if sh_type != 2:  # SHT_SYMTAB
            continue
        strtab_offset = sections[link][4]
        for k in range(size // entsize):
            st_name, _, _, st_shndx, _, _ = struct.unpack_from("<IBBHQQ", obj, offset + k * entsize)
            if st_shndx == 0 and st_name:
                end = obj.index(b"\0", strtab_offset + st_name)
                names.append(obj[strtab_offset + st_name : end].decode())
    return names


def _mentions_numba(data: bytes) -> bool:
    """Whether unpickling ``data`` would import Numba (a Numba object among the constants)."""
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name in ("GLOBAL", "STACK_GLOBAL", "SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            if isinstance(arg, str) and arg.split(" ")[0].split(".")[0] == "numba":
                return True
    return False


def export(dispatcher, path: Path, source_sha: str) -> bool:
    """Write the entry of ``dispatcher``'s first compiled signature to ``path``; True if written."""
    if not native_runtime.enabled() or not dispatcher.signatures:
        return False
    sig = dispatcher.signatures[0]
    spec = signature_spec(sig)
    if spec is None:
        return False
    cres = dispatcher.overloads[sig]
    try:
        obj = cres.library._get_compiled_object()
    except (ValueError, RuntimeError):  # loaded from Numba's cache: no object code here
        return False
    externals = undefined_symbols(obj)
    consts = pickle.dumps(list(cres.environment.consts))
    if externals is None or _mentions_numba(consts):
        return False
    entry = {
        "environment": native_runtime.environment(),
        "source_sha": source_sha,
        "name": dispatcher.py_func.__name__,
        "module": dispatcher.py_func.__module__,
        "signature": spec,
        "wrapper": cres.fndesc.llvm_cpython_wrapper_name,
        "env_name": cres.fndesc.env_name,
        "consts": consts,
        "externals": externals,
        "object": bytes(obj),
    }
    try:
        atomic_write(path, pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL))
    except OSError:  # a read-only cache folder: nothing is stored
        return False
    native_runtime.EVENTS["exported"].append(path.name)
    return True


class ExportAfterCompile:
    """A Numba function that stores its native entry after its first successful call.

    ``on_exported(dispatcher)`` is then called, so the holder can drop this wrapper.
    """

    __slots__ = ("dispatcher", "_path", "_source_sha", "_on_exported", "_done")

    def __init__(self, dispatcher, path: Path, source_sha: str, on_exported: Callable):
        self.dispatcher = dispatcher
        self._path = path
        self._source_sha = source_sha
        self._on_exported = on_exported
        self._done = False

    def __call__(self, *args):
        result = self.dispatcher(*args)
        if not self._done:
            self._done = True
            try:
                export(self.dispatcher, self._path, self._source_sha)
            except Exception:  # noqa: BLE001 - storing is an optimisation, never an error
                pass
            self._on_exported(self.dispatcher)
        return result
