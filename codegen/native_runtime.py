"""Run machine code Numba compiled in an earlier process, without importing Numba.

Why: a warm start (a new process, the generated module and its machine code already cached) was
bounded below by Numba itself: ``import numba`` and the first call of a cached function, which
builds Numba's typing and target contexts and imports every registry (SciPy's linear algebra
among them), cost ~0.7 s here before any of symgrad's work. Loading the same machine code takes
llvmlite and a few milliseconds.

How: when Numba compiles a generated function, :mod:`symgrad.codegen.native_export` stores its
object code (the function, its CPython wrapper and everything linked into it) beside the
generated module. A later process links that object into an llvmlite MCJIT engine, resolves its
external symbols exactly as Numba does (Numba's C helpers and runtime, CPython's API, symgrad's
GEMM names; Numba's C extension modules are loaded from their files without running the
``numba`` package), points the function's environment at the stored constants, and wraps the
CPython entry point with Numba's ``_dynfunc.make_function``: the call is Numba's own wrapper,
unboxing and boxing included.

What guards it:

- an entry is used only when everything that shaped the code matches the running process: the
  entry format, Python, Numba, llvmlite and LLVM versions, the CPU name and features LLVM sees,
  the ``NUMBA_*`` variables that change code generation, and a hash of the generated source;
- every external symbol the object needs must resolve before it is linked (an unresolved
  symbol would otherwise be called at address 0);
- the machine code was compiled for one signature, and Numba's dispatcher is what normally
  checks types, so each call first checks its arguments against that signature (dtype, number
  of dimensions, C-contiguity, alignment, scalar types) and hands anything else to the Numba
  function itself (imported then).

Anything unexpected while loading means the entry is not used: Numba loads or compiles the
function as before and a new entry is written. ``SYMGRAD_NATIVE=0`` turns the whole mechanism
off.
"""

from __future__ import annotations

import builtins
import ctypes
import glob
import importlib.util
import os
import pickle
import sys
import threading
import types
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np

#: Bump when the entry layout changes.
FORMAT = 1
#: Environment variable; "0" disables native entries (no loading, no writing).
ENV = "SYMGRAD_NATIVE"
#: Numba settings that change the machine code it generates.
_NUMBA_VARIABLES = ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES", "NUMBA_OPT", "NUMBA_LOOP_VECTORIZE",
                    "NUMBA_SLP_VECTORIZE", "NUMBA_ENABLE_AVX", "NUMBA_BOUNDSCHECK",
                    "NUMBA_FASTMATH", "NUMBA_DEBUGINFO", "NUMBA_NRT_STATS")  # fmt: skip

_lock = threading.Lock()
#: Functions loaded in this process, by entry path and source hash.
_LOADED: dict[tuple[str, str], Callable] = {}
#: What loading and exporting did in this process (for tests and benchmarks).
EVENTS: dict[str, list[str]] = {"loaded": [], "exported": [], "rejected": []}


def enabled() -> bool:
    """Whether native entries are read and written: ``SYMGRAD_NATIVE`` is not ``0``, and Numba's
    JIT is not disabled (``NUMBA_DISABLE_JIT=1`` asks for the Python functions, for debugging)."""
    return os.environ.get(ENV, "1") != "0" and os.environ.get("NUMBA_DISABLE_JIT", "0") in ("", "0")


def entry_path(module_path: Path, function: str) -> Path:
    """Where the native entry of ``function`` of the generated module at ``module_path`` lives."""
    return module_path.with_name(f"{module_path.stem}.{function}.native")


def entry_paths(module_path: Path) -> list[Path]:
    """The native entries stored for the generated module at ``module_path`` (any function)."""
    return list(module_path.parent.glob(entry_path(module_path, "*").name))


def has_entries(module_path: Path) -> bool:
    """Whether any native entry was stored for the generated module at ``module_path``."""
    return enabled() and bool(entry_paths(module_path))


@cache
def environment() -> dict:
    """What an entry must have been compiled under to run in this process."""
    import importlib.metadata

    import llvmlite
    import llvmlite.binding as llvm

    _initialise_llvm()
    try:
        features = llvm.get_host_cpu_features().flatten()
    except RuntimeError:  # LLVM cannot tell on this platform
        features = ""
    return {
        "format": FORMAT,
        "python": f"{sys.implementation.name}-{sys.version_info[0]}.{sys.version_info[1]}",
        "numba": importlib.metadata.version("numba"),
        "llvmlite": llvmlite.__version__,
        "llvm": ".".join(map(str, llvm.llvm_version_info)),
        "triple": llvm.get_process_triple(),
        "cpu": llvm.get_host_cpu_name(),
        "features": features,
        "numba_variables": {k: os.environ.get(k) for k in _NUMBA_VARIABLES},
    }


# -- Numba's C runtime, without the numba package -------------------------------------------------
@cache
def _initialise_llvm() -> None:
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()


def _extension(qualified: str):
    """Numba's C extension module ``qualified``: the imported one if Numba is loaded, else the
    extension file executed on its own (the ``numba`` package's ``__init__`` does not run).

    CPython keeps one copy of a single-phase extension per file: if Numba is imported later, its
    import of the same module gets the same C state (allocator, helpers) back.
    """
    if qualified in sys.modules:
        return sys.modules[qualified]
    spec = importlib.util.find_spec("numba")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("numba is not installed")
    root = Path(next(iter(spec.submodule_search_locations)))
    relative = qualified.split(".")[1:]
    pattern = str(root.joinpath(*relative[:-1], relative[-1] + ".*"))
    files = [f for f in glob.glob(pattern) if f.endswith((".so", ".pyd"))]
    if not files:
        raise ImportError(f"{qualified} not found under {root}")
    ext_spec = importlib.util.spec_from_file_location(qualified, files[0])
    module = importlib.util.module_from_spec(ext_spec)
    ext_spec.loader.exec_module(module)
    return module


def _numba_unpickle(address, data, hashed, _memo={}):  # noqa: B006 - the memo is the point
    """Numba's ``numba.core.serialize._numba_unpickle``: the same contract (memoised by address
    and hash; Numba's ``cloudpickle.loads`` is ``pickle.loads``), so Numba, imported later, finds
    the behaviour it expects behind its C helper."""
    key = (address, hashed)
    try:
        return _memo[key]
    except KeyError:
        obj = _memo[key] = pickle.loads(data)
        return obj


@cache
def _runtime() -> dict:
    """Numba's helper, function and memory runtime extensions, with every symbol registered."""
    import llvmlite.binding as llvm

    _initialise_llvm()
    helperlib = _extension("numba._helperlib")
    dynfunc = _extension("numba._dynfunc")
    nrt = _extension("numba.core.runtime._nrt_python")
    if "numba.core.runtime.nrt" not in sys.modules:
        nrt.memsys_use_cpython_allocator()  # what Numba's runtime does on import
    # The symbols Numba registers (numba.core.base, numba.core.runtime.nrt).
    llvm.add_symbol("_Py_NoneStruct", id(None))
    for helpers in (helperlib.c_helpers, dynfunc.c_helpers):
        for name, address in helpers.items():
            llvm.add_symbol("numba_" + name, address)
    for obj in builtins.__dict__.values():
        if isinstance(obj, type) and issubclass(obj, BaseException):
            llvm.add_symbol(f"PyExc_{obj.__name__}", id(obj))
    for name, address in nrt.c_helpers.items():
        llvm.add_symbol(name if name.startswith("_") else "NRT_" + name, address)
    from .blas_select import GEMM_SYMBOLS, register_gemm

    for library in GEMM_SYMBOLS:
        register_gemm(library)
    _prime_unpickle(helperlib)
    return {"dynfunc": dynfunc}


def _prime_unpickle(helperlib) -> None:
    """Make Numba's ``numba_unpickle`` C helper ready without importing Numba.

    Boxing a returned array calls it (for the ``ndarray`` class), and on its first call it looks
    up ``numba.core.serialize._numba_unpickle``, importing the whole ``numba`` package (~0.3 s).
    Unless Numba is already imported, the first call is made here with that module standing in
    for the lookup, and the stand-ins are removed at once.
    """
    if "numba.core.serialize" in sys.modules:
        return
    stand_ins = {}
    for name in ("numba", "numba.core", "numba.core.serialize"):
        module = types.ModuleType(name)
        module.__symgrad_stand_in__ = True
        stand_ins[name] = module
    stand_ins["numba.core.serialize"]._numba_unpickle = _numba_unpickle
    unpickle = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p)(
        helperlib.c_helpers["unpickle"]
    )
    data = pickle.dumps(None)
    added = [name for name in stand_ins if name not in sys.modules]
    try:
        for name in added:
            sys.modules[name] = stand_ins[name]
        unpickle(data, len(data), b"\0" * 20)
    finally:
        for name in added:
            if getattr(sys.modules.get(name), "__symgrad_stand_in__", False):
                del sys.modules[name]


@cache
def _process_symbols() -> ctypes.CDLL:
    """The running program and its global libraries (CPython's API, libc, libm), which the JIT
    linker searches for what symgrad and Numba did not register."""
    return ctypes.CDLL(None)


# -- loading one entry -----------------------------------------------------------------------------
def read_entry(path: Path, source_sha: str) -> dict | None:
    """The entry at ``path`` if it is complete and was built for this process and source.

    An unreadable (truncated, corrupt) entry or one built from another source is deleted, so
    later processes do not read it again; Numba then loads the function, and writes a new entry
    when it next compiles it. An entry for another environment stays: a cache folder may be
    shared by machines or Python installations, each reading only its own.
    """
    seen = None
    try:
        with open(path, "rb") as f:
            seen = os.fstat(f.fileno())
            entry = pickle.load(f)
    except FileNotFoundError:
        return None
    except Exception:  # truncated or corrupt
        EVENTS["rejected"].append(f"{path.name}: unreadable")
        _discard(path, seen)
        return None
    if not isinstance(entry, dict) or entry.get("environment") != environment():
        EVENTS["rejected"].append(f"{path.name}: built for another environment")
        return None
    if entry.get("source_sha") != source_sha:
        EVENTS["rejected"].append(f"{path.name}: built from another source")
        _discard(path, seen)
        return None
    return entry


def _discard(path: Path, seen: os.stat_result | None) -> None:
    """Delete ``path`` unless another process has replaced it since it was read."""
    if seen is None:  # not even opened (permissions): leave it
        return
    try:
        now = os.stat(path)
        if (now.st_ino, now.st_mtime_ns, now.st_size) == (
            seen.st_ino,
            seen.st_mtime_ns,
            seen.st_size,
        ):
            path.unlink()
    except OSError:  # gone already, or a read-only cache folder: only speed is lost
        pass


def load(path: Path, source_sha: str, fallback: Callable[[], Callable]) -> Callable | None:
    """The function stored at ``path``, checked against its signature, or None.

    ``fallback()`` returns the Numba function; it is called (once) only when an argument does
    not match the stored signature.
    """
    if not enabled():
        return None
    key = (str(path), source_sha)
    known = _LOADED.get(key)
    if known is not None:  # another Compiled object of the same module: share the code
        return known
    entry = read_entry(path, source_sha)
    if entry is None:
        return None
    try:
        with _lock:
            native = _link(entry)
    except Exception as exc:  # noqa: BLE001 - any failure: Numba loads it instead
        EVENTS["rejected"].append(f"{path.name}: {type(exc).__name__}: {exc}")
        return None
    EVENTS["loaded"].append(path.name)
    function = _LOADED[key] = guarded(native, entry["signature"], fallback, entry["name"])
    return function


def _link(entry: dict) -> Callable:
    import llvmlite.binding as llvm

    runtime = _runtime()
    process = _process_symbols()
    missing = [
        s for s in entry["externals"] if not llvm.address_of_symbol(s) and not hasattr(process, s)
    ]
    if missing:
        raise LookupError(f"unresolved symbols {missing[:5]}")
    target = llvm.Target.from_triple(entry["environment"]["triple"])
    machine = target.create_target_machine(
        cpu=entry["environment"]["cpu"], features=entry["environment"]["features"], jit=True
    )
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), machine)
    engine.add_object_file(llvm.ObjectFileRef.from_data(entry["object"]))
    engine.finalize_object()
    address = engine.get_function_address(entry["wrapper"])
    env_address = engine.get_global_value_address(entry["env_name"])
    if not address or not env_address:
        raise LookupError("entry point or environment not found in the object")
    dynfunc = runtime["dynfunc"]
    env = dynfunc.Environment({"__name__": entry["module"]})
    env.consts[:] = pickle.loads(entry["consts"])
    # What Numba's set_env does: the function reads its environment through this global.
    (ctypes.c_void_p * 1).from_address(env_address)[0] = id(env)
    module = types.ModuleType(entry["module"])
    doc = f"symgrad native code of {entry['name']}"
    # The closure keeps the engine (the code's memory) and the environment alive.
    return dynfunc.make_function(module, entry["name"], doc, address, env, (engine, machine, env))


# -- argument checks ------------------------------------------------------------------------------
def guarded(native: Callable, signature: list, fallback: Callable[[], Callable], name: str):
    """``native`` behind a check of its arguments against ``signature``; others go to Numba.

    ``signature`` lists per argument ``["array", dtype, ndim]`` (C-contiguous and aligned) or
    ``["scalar", dtype]``.
    """
    params = [f"a{k}" for k in range(len(signature))]
    args = ", ".join(params)
    namespace: dict = {"_native": native, "_nd": np.ndarray, "_numba": None}
    lines = [f"def {name}({args}):"]
    for k, (p, spec) in enumerate(zip(params, signature)):
        if spec[0] == "array":
            dtype = np.dtype(spec[1])
            namespace[f"_d{k}"] = dtype
            lines.append(
                f"    if type({p}) is not _nd or {p}.ndim != {int(spec[2])} or "
                f"({p}.dtype is not _d{k} and {p}.dtype != _d{k}):"
            )
            lines.append(f"        return _slow({args})")
            lines.append(f"    _f = {p}.flags")
            lines.append("    if not (_f.c_contiguous and _f.aligned):")
            lines.append(f"        return _slow({args})")
        elif spec[1] == "float64":
            lines.append(f"    if not isinstance({p}, float):")
            lines.append(f"        return _slow({args})")
        else:
            namespace[f"_t{k}"] = np.dtype(spec[1]).type
            kind = "int" if spec[1] == "int64" else None
            test = f"type({p}) is not _t{k}" + (f" and type({p}) is not int" if kind else "")
            lines.append(f"    if {test}:")
            lines.append(f"        return _slow({args})")
    lines.append(f"    return _native({args})")

    def slow(*values):
        numba_fn = namespace["_numba"]
        if numba_fn is None:
            numba_fn = namespace["_numba"] = fallback()
        return numba_fn(*values)

    namespace["_slow"] = slow
    exec(compile("\n".join(lines), f"<symgrad native {name}>", "exec"), namespace)
    function = namespace[name]
    function.native = native
    return function
