"""On-disk cache of the fastmath kernels' LLVM IR, so that a new process does not recompile them.

Why
---
Generated modules call the kernels of :mod:`symgrad.codegen.fastmath` (``fast_exp``,
``fast_tanh``, ... in float32 and float64). Numba compiled each variant the first time a caller
was lowered, about 0.5 s each, in every new process: a tiny function calling four kernels took
2.4 s to compile instead of 0.5 s, a fixed cost of every cold compile of a user model. Numba's own
``cache=True`` cannot serve here: it stores machine code, and callers need the kernel's LLVM IR to
inline it (their loops vectorise only when no call is left in them, see
:mod:`symgrad.codegen.inline_llvm`).

How
---
The first process that compiles a variant stores the final IR text of the kernel's code library
(already marked ``alwaysinline``) together with what Numba's ``call_internal`` needs to call it
(mangled name, argument names). Later processes parse that text with llvmlite (milliseconds
instead of half a second), build a Numba code library from it and link it into callers exactly
as they would link the compiled kernel. Each variant is built once per process
(:func:`inlinable_kernel`); :data:`EVENTS` records which variants were loaded and which compiled.

An entry is used only when its key matches the running process: the kernel's name and signature;
the Python, Numba, llvmlite and LLVM versions; the CPU LLVM generates code for (host name and
features from llvmlite, and Numba's view of them, which honours ``NUMBA_CPU_NAME`` /
``NUMBA_CPU_FEATURES``); Numba's optimisation level; and a hash of the sources that define the
kernels (``fastmath.py``, ``fastmath_bits.py``, ``inline_llvm.py`` and this file), so that editing
a kernel invalidates its entry. A missing, unreadable, truncated, corrupt or mismatched entry is
ignored: the kernel is compiled by Numba as before and the entry rewritten. Entries are written
atomically (temp file in the same folder, then ``os.replace``), and a folder that cannot be
created or written only means that nothing is stored.

Where
-----
The kernels are library code, compiled once per installation rather than once per model, like
the functions Numba caches for installed libraries. So the cache deliberately stays out of
``$SYMGRAD_CACHE_DIR``: benchmarks empty that folder to time a cold compile of a new model, and
recompiling the library each time would distort it. The folder is the first of:

1. ``$SYMGRAD_KERNEL_CACHE_DIR`` (for tests and benchmarks);
2. ``$NUMBA_CACHE_DIR/symgrad_kernels``;
3. ``__pycache__/symgrad_kernels`` beside this file, if writable (Numba's default for library
   code);
4. ``<user cache dir>/symgrad/kernels`` (``$XDG_CACHE_HOME`` or ``~/.cache`` on Linux).

There is one JSON file per kernel variant and machine, ``<name>-<argtypes>-<digest>.json``. The
digest covers the versions and the CPU, so machines sharing a home folder keep separate entries,
while the source hash is only checked inside the file, so editing a kernel overwrites its entry
instead of leaving the old one behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sys
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import llvmlite
import llvmlite.binding as llvm
import numba
from numba.core import config
from numba.core.compiler_lock import global_compiler_lock

from .inline_llvm import force_inline

__all__ = [
    "EVENTS",
    "KernelDescriptor",
    "cache_dir",
    "entry_key",
    "inlinable_kernel",
    "read_entry",
    "write_entry",
]

#: Version of the entry layout; part of the key.
FORMAT = 1

_HERE = Path(__file__).resolve().parent

# The sources whose code ends up in a kernel's IR, and this file, which writes and reads entries.
_SOURCES = ("fastmath.py", "fastmath_bits.py", "inline_llvm.py", "kernel_cache.py")

#: What happened to each kernel variant in this process, in order, as ``"<name>-<argtypes>"``
#: labels (``"exp-float32"``): "loaded" from a cache entry or "compiled" by Numba. A timing-free
#: signal for tests and benchmarks.
EVENTS: dict[str, list[str]] = {"loaded": [], "compiled": []}

# (name, signature) -> (library, descriptor): each variant is built once per process, and every
# caller links that same library.
_KERNELS: dict = {}


@dataclass(frozen=True)
class KernelDescriptor:
    """The fields of a Numba ``FunctionDescriptor`` that ``BaseContext.call_internal`` reads.

    A kernel built from a cache entry has no Numba compile result and so no real descriptor; this
    stand-in lets callers emit the call with ``context.call_internal``, the same code as for a
    compiled kernel (declaration, calling convention, status check).
    """

    mangled_name: str
    restype: object
    argtypes: tuple
    args: tuple
    noalias: bool = False
    inline: bool = False


def _hash_sources() -> str | None:
    h = hashlib.sha256()
    try:
        for name in _SOURCES:
            h.update(name.encode() + b"\0")
            h.update((_HERE / name).read_bytes())
    except OSError:  # sources not installed (a zipped package): no key, no cache
        return None
    return h.hexdigest()


# Hashed at import, when the kernel code that will be compiled has just been read: a file edited
# later in a long-running session must not label the old code's IR with the new hash.
_SOURCE_HASH = _hash_sources()


@cache
def _environment(codegen) -> dict:
    """The part of the key shared by all kernels: versions and the CPU code is generated for."""
    try:
        host_features = llvm.get_host_cpu_features().flatten()
    except RuntimeError:  # LLVM cannot tell on this platform (Numba then uses no features)
        host_features = ""
    triple, cpu_name, cpu_features = codegen.magic_tuple()
    return {
        "format": FORMAT,
        "python": f"{sys.implementation.name}-{sys.version_info[0]}.{sys.version_info[1]}",
        "numba": numba.__version__,
        "llvmlite": llvmlite.__version__,
        "llvm": ".".join(map(str, llvm.llvm_version_info)),
        "host_cpu": llvm.get_host_cpu_name(),
        "host_features": host_features,
        "numba_target": [triple, cpu_name, cpu_features],
        "opt": str(config.OPT),
    }


def entry_key(codegen, name: str, sig) -> dict | None:
    """The key a cache entry of kernel ``name`` for ``sig`` must carry to be used.

    Parameters
    ----------
    codegen : numba.core.codegen.CPUCodegen
        The code generator the kernel is compiled with (its CPU and features).
    name : str
        The kernel's name.
    sig : numba.core.typing.templates.Signature
        The variant's signature.

    Returns
    -------
    dict or None
        Versions, CPU, optimisation level, kernel name and signature and the hash of the kernel
        sources; None when the sources cannot be read (nothing is cached then).
    """
    if _SOURCE_HASH is None:
        return None
    return {**_environment(codegen), "kernel": name, "signature": str(sig), "sources": _SOURCE_HASH}


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _digest(obj) -> str:
    return _sha256(json.dumps(obj, sort_keys=True))


def _writable(path: Path) -> bool:
    # Numba's own test for its in-tree cache folder: create it and a temporary file in it.
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError:
        return False
    return True


def cache_dir() -> Path:
    """The folder of the kernel cache (see the module docstring for the order of choices).

    Returns
    -------
    pathlib.Path
        The folder; it may not exist yet, and an explicitly chosen one may be read-only (then
        entries are read but not written).
    """
    explicit = os.environ.get("SYMGRAD_KERNEL_CACHE_DIR")
    if explicit:
        return Path(explicit)
    if config.CACHE_DIR:  # NUMBA_CACHE_DIR, as Numba itself reads it
        return Path(config.CACHE_DIR) / "symgrad_kernels"
    in_tree = _HERE / "__pycache__" / "symgrad_kernels"
    if _writable(in_tree):
        return in_tree
    import platformdirs  # the same user cache dir as symgrad's module cache uses by default

    return Path(platformdirs.user_cache_dir("symgrad")) / "kernels"


def _label(name: str, sig) -> str:
    return f"{name}-{'_'.join(str(t) for t in sig.args)}"


def read_entry(path: Path, key: dict) -> dict | None:
    """The cache entry at ``path`` if it is intact and made for ``key``, else None.

    Parameters
    ----------
    path : pathlib.Path
        The entry file.
    key : dict
        The full key the entry must have been stored with.

    Returns
    -------
    dict or None
        The entry (``ir``, ``mangled_name``, ``args``, ``noalias``, ``inline``), or None when the
        file is missing, unreadable, truncated, not an entry, for another key, or its IR text
        does not match its checksum.
    """
    try:
        with open(path, encoding="utf-8") as f:
            entry = json.load(f)
        if not isinstance(entry, dict) or entry.get("key") != key:
            return None
        ir_text = entry.get("ir")
        # A file cut or damaged inside the IR string can still be valid JSON and even valid IR.
        if not isinstance(ir_text, str) or _sha256(ir_text) != entry.get("ir_sha256"):
            return None
    # ValueError: truncated or garbage (JSON or UTF-8 errors, lone surrogates in the IR string);
    # RecursionError: absurdly nested JSON.
    except (OSError, ValueError, RecursionError):
        return None
    args = entry.get("args")
    if not (
        isinstance(entry.get("mangled_name"), str)
        and isinstance(args, list)
        and all(isinstance(a, str) for a in args)
        and isinstance(entry.get("noalias"), bool)
        and isinstance(entry.get("inline"), bool)
    ):
        return None
    return entry


def write_entry(path: Path, entry: dict) -> bool:
    """Write ``entry`` to ``path`` atomically; False (and nothing written) when that fails.

    Parameters
    ----------
    path : pathlib.Path
        The entry file; its folder is created if needed.
    entry : dict
        JSON-serialisable entry.

    Returns
    -------
    bool
        Whether the entry was written. A read-only or otherwise unusable folder is not an error:
        the cache is an optimisation only.
    """
    # A name no other writer uses (not mkstemp: its files are private to the user, and a cache
    # under an installed package or NUMBA_CACHE_DIR may be shared).
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Readers never see a partial file: they see the old entry or the new one. No fsync: an
        # entry damaged by a crash fails its checks and is rebuilt.
        with open(tmp, "x", encoding="utf-8") as f:
            json.dump(entry, f)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return False
    return True


def _load(path: Path, key: dict, codegen, name: str, sig):
    """Build the kernel's library from the entry at ``path``; None if there is no usable entry."""
    entry = read_entry(path, key)
    if entry is None:
        return None
    try:
        module = llvm.parse_assembly(entry["ir"])
        module.verify()
        if module.get_function(entry["mangled_name"]).is_declaration:
            return None
        # Numba's own way to restore a library from its cache: the module is used as it is,
        # already optimised, so callers link exactly the IR a compiling process gives them
        # (add_llvm_module + finalize would optimise it again: 13 ms per kernel instead of 8).
        library = codegen.unserialize_library(
            (f"symgrad_kernel.{_label(name, sig)}", "bitcode", module.as_bitcode())
        )
    except Exception:  # whatever fails here means "compile instead", never an error
        return None
    descriptor = KernelDescriptor(
        mangled_name=entry["mangled_name"],
        restype=sig.return_type,
        argtypes=tuple(sig.args),
        args=tuple(entry["args"]),
        noalias=entry["noalias"],
        inline=entry["inline"],
    )
    return library, descriptor


def _kernel_only(ir_text: str, function_name: str) -> str:
    """``ir_text`` without the functions that ``function_name`` does not use.

    A kernel's library also holds the wrappers Numba generates to call it from Python and C
    (``cpython.*``, ``cfunc.*``), twice the size of the kernel. Callers never use them, and
    without them a later process generates machine code for a third as much: loading takes about
    8 instead of 20 ms per kernel. The other definitions are made internal, then LLVM's global
    dead code elimination drops those nothing calls. With an llvmlite that lacks these passes
    (before 0.44), the text is returned unchanged.
    """
    try:
        module = llvm.parse_assembly(ir_text)
        for fn in module.functions:
            if not fn.is_declaration and fn.name != function_name:
                fn.linkage = "internal"
        machine = llvm.Target.from_triple(module.triple).create_target_machine()
        builder = llvm.create_pass_builder(machine, llvm.create_pipeline_tuning_options())
        passes = llvm.ModulePassManager()
        passes.add_global_dead_code_eliminate_pass()
        passes.add_strip_dead_prototype_pass()
        passes.run(module, builder)
        module.verify()
        if module.get_function(function_name).is_declaration:
            return ir_text
    except (AttributeError, NameError, RuntimeError):
        return ir_text
    return str(module)


def _compile(dispatcher, key: dict | None, sig, path: Path | None):
    """Compile the kernel with Numba, mark it ``alwaysinline`` and store its entry at ``path``."""
    marked = force_inline(dispatcher, tuple(sig.args))
    cres = dispatcher.overloads[tuple(sig.args)]
    fndesc = cres.fndesc
    # Only a kernel that callers will inline, with the signature the key claims, is worth storing.
    if path is not None and marked and cres.signature.return_type == sig.return_type:
        try:
            ir_text = _kernel_only(cres.library.get_llvm_str(), fndesc.mangled_name)
            entry = {
                "key": key,
                "mangled_name": fndesc.mangled_name,
                "args": list(fndesc.args),
                "noalias": bool(fndesc.noalias),
                "inline": bool(fndesc.inline),
                "ir_sha256": _sha256(ir_text),
                "ir": ir_text,
            }
            write_entry(path, entry)
        except Exception:  # the kernel is compiled and usable; only storing it failed
            pass
    return cres.library, fndesc


def _locate(codegen, name: str, sig) -> tuple[dict | None, Path | None]:
    """The key and file of the variant's entry; (None, None) when it cannot be cached here."""
    try:
        key = entry_key(codegen, name, sig)
        if key is None:
            return None, None
        digest = _digest(_environment(codegen))[:16]
        return key, cache_dir() / f"{_label(name, sig)}-{digest}.json"
    except Exception:  # e.g. a codegen without magic_tuple, no home folder: compile, don't cache
        return None, None


def inlinable_kernel(name: str, dispatcher, sig):
    """The code library of kernel ``dispatcher`` for ``sig`` and the descriptor to call it with.

    Loaded from the kernel cache when a valid entry exists, else compiled by Numba (and marked
    ``alwaysinline`` by :func:`~symgrad.codegen.inline_llvm.force_inline`) and stored. Either way
    the result is built once per process and callers inline the kernel.

    Parameters
    ----------
    name : str
        The kernel's name, unique among cached kernels (``"exp"``).
    dispatcher : numba.core.registry.CPUDispatcher
        The ``@njit`` kernel; compiled only when the cache has no valid entry.
    sig : numba.core.typing.templates.Signature
        The variant's signature (``float32(float32)``).

    Returns
    -------
    library : numba.core.codegen.CodeLibrary
        For the caller's linking libraries (``context.add_linking_libs([library])``).
    fndesc : numba.core.funcdesc.FunctionDescriptor or KernelDescriptor
        For ``context.call_internal(builder, fndesc, sig, args)``.
    """
    memo = (name, sig)
    found = _KERNELS.get(memo)
    if found is not None:
        return found
    # Lowering already holds Numba's (reentrant) compiler lock. Taking it here as well keeps
    # look-up and build one step for a caller outside a compilation (tests), so that no variant
    # is ever built twice.
    with global_compiler_lock:
        found = _KERNELS.get(memo)
        if found is not None:
            return found
        codegen = dispatcher.targetctx.codegen()
        key, path = _locate(codegen, name, sig)
        if path is not None:
            found = _load(path, key, codegen, name, sig)
        if found is not None:
            EVENTS["loaded"].append(_label(name, sig))
        else:
            found = _compile(dispatcher, key, sig, path)
            EVENTS["compiled"].append(_label(name, sig))
        _KERNELS[memo] = found
    return found
