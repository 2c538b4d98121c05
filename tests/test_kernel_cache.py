"""The on-disk cache of the fastmath kernels' LLVM IR (``symgrad.codegen.kernel_cache``).

Loading happens once per process, so the end-to-end test runs child processes against one
temporary cache folder: the first compiles and stores, the next loads, and one more finds damaged
or mismatched entries and rebuilds them. ``kernel_cache.EVENTS``, printed by each child, says
which variants were loaded and which compiled, without relying on timings. The other tests run in
this process and use a kernel of their own.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from numba import njit, types

from symgrad.codegen import kernel_cache as kc
from symgrad.codegen.fastmath_bits import JIT_OPTIONS

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, re
import numpy as np
from numba import njit
from symgrad.codegen import fastmath as fm
from symgrad.codegen import kernel_cache as kc

@njit
def f(x, y, out32, out64):
    for i in range(x.shape[0]):
        out32[i] = fm.fast_sigmoid(x[i])
    for i in range(y.shape[0]):
        out64[i] = fm.fast_exp(y[i])

x = np.linspace(-20.0, 20.0, 257).astype(np.float32)
y = np.linspace(-20.0, 20.0, 257)
out32, out64 = np.empty_like(x), np.empty_like(y)
f(x, y, out32, out64)
(llvm_ir,) = f.inspect_llvm().values()
print(json.dumps({
    "events": kc.EVENTS,
    "out32": out32.tobytes().hex(),
    "out64": out64.tobytes().hex(),
    "inlined": not re.search(r"call [^\n]*fastmath", llvm_ir),
    "vectorised": all(re.search(rf"<\d+ x {t}>", llvm_ir) for t in ("float", "double")),
}))
"""

VARIANTS = ["sigmoid-float32", "exp-float64"]


def run_child(cache: Path) -> dict:
    env = {**os.environ, "SYMGRAD_KERNEL_CACHE_DIR": str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def entries(cache: Path) -> dict[str, Path]:
    return {p.name.rsplit("-", 1)[0]: p for p in cache.glob("*.json")}


def test_entries_are_stored_loaded_and_rebuilt(tmp_path):
    cache = tmp_path / "kernels"

    # 1. Empty cache: both variants are compiled and stored.
    cold = run_child(cache)
    assert cold["events"] == {"loaded": [], "compiled": VARIANTS}
    assert sorted(entries(cache)) == sorted(VARIANTS)
    x = np.linspace(-20.0, 20.0, 257)
    out32 = np.frombuffer(bytes.fromhex(cold["out32"]), np.float32)
    out64 = np.frombuffer(bytes.fromhex(cold["out64"]), np.float64)
    np.testing.assert_allclose(out32, 1 / (1 + np.exp(-x.astype(np.float32))), rtol=1e-6)
    np.testing.assert_allclose(out64, np.exp(x), rtol=1e-15)
    assert cold["inlined"] and cold["vectorised"]

    # 2. A new process loads both, and its caller inlines them and vectorises as before.
    warm = run_child(cache)
    assert warm["events"] == {"loaded": VARIANTS, "compiled": []}
    assert (warm["out32"], warm["out64"]) == (cold["out32"], cold["out64"])
    assert warm["inlined"] and warm["vectorised"]

    # 3. A truncated entry and an entry for other sources are not used, but rebuilt.
    paths = entries(cache)
    keys = {v: json.loads(paths[v].read_text())["key"] for v in VARIANTS}
    text = paths["sigmoid-float32"].read_text()
    paths["sigmoid-float32"].write_text(text[: len(text) // 2])
    stale = json.loads(paths["exp-float64"].read_text())
    stale["key"]["sources"] = "0" * 64
    paths["exp-float64"].write_text(json.dumps(stale))
    rebuilt = run_child(cache)
    assert rebuilt["events"] == {"loaded": [], "compiled": VARIANTS}
    assert (rebuilt["out32"], rebuilt["out64"]) == (cold["out32"], cold["out64"])
    for v in VARIANTS:
        assert kc.read_entry(paths[v], keys[v]) is not None, v
    assert sorted(p.name for p in cache.iterdir()) == sorted(p.name for p in paths.values())


# ---- in this process: entries, folders, and a kernel of the tests' own ----------------------


@njit(**JIT_OPTIONS)
def _twice(x):
    return x * 2.0


SIG = types.float64(types.float64)


def _forget(name):
    kc._KERNELS.pop((name, SIG), None)


def test_a_kernel_is_stored_then_loaded(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMGRAD_KERNEL_CACHE_DIR", str(tmp_path))
    _forget("test_twice")
    library, fndesc = kc.inlinable_kernel("test_twice", _twice, SIG)
    assert kc.EVENTS["compiled"][-1] == "test_twice-float64"
    assert kc.inlinable_kernel("test_twice", _twice, SIG) == (library, fndesc)  # once a process
    (path,) = tmp_path.glob("test_twice-float64-*.json")
    entry = json.loads(path.read_text())
    # Only the kernel is kept, not Numba's wrappers for calls from Python and C.
    assert entry["ir"].count("\ndefine ") == 1
    assert "alwaysinline" in entry["ir"]

    _forget("test_twice")  # as if in a new process
    loaded, descriptor = kc.inlinable_kernel("test_twice", _twice, SIG)
    assert kc.EVENTS["loaded"][-1] == "test_twice-float64"
    assert loaded is not library
    assert descriptor.mangled_name == fndesc.mangled_name
    assert (descriptor.restype, descriptor.argtypes) == (types.float64, (types.float64,))
    assert not loaded.get_function(fndesc.mangled_name).is_declaration
    _forget("test_twice")


def test_an_unusable_folder_does_not_stop_compilation(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    # A folder below a regular file can be neither created nor read (even by root).
    monkeypatch.setenv("SYMGRAD_KERNEL_CACHE_DIR", str(blocker / "kernels"))
    _forget("test_twice_nowhere")
    library, fndesc = kc.inlinable_kernel("test_twice_nowhere", _twice, SIG)
    assert kc.EVENTS["compiled"][-1] == "test_twice_nowhere-float64"
    assert not library.get_function(fndesc.mangled_name).is_declaration
    assert kc.write_entry(blocker / "kernels" / "entry.json", {"key": {}}) is False
    _forget("test_twice_nowhere")


def _entry(ir="define void @k() {\n  ret void\n}\n", key=None):
    return {
        "key": key or {"kernel": "k"},
        "mangled_name": "k",
        "args": ["x"],
        "noalias": False,
        "inline": False,
        "ir_sha256": hashlib.sha256(ir.encode()).hexdigest(),
        "ir": ir,
    }


def test_damaged_or_foreign_entries_are_rejected(tmp_path):
    path = tmp_path / "k.json"
    key = {"kernel": "k"}
    assert kc.read_entry(path, key) is None  # missing
    assert kc.write_entry(path, _entry())
    assert kc.read_entry(path, key) == _entry()
    assert [p.name for p in tmp_path.iterdir()] == ["k.json"]  # no temporary file left
    assert kc.read_entry(path, {"kernel": "other"}) is None

    text = path.read_text()
    damaged = {
        "truncated": text[:-10],
        "garbage": "\x00\xff garbage",
        "not an entry": "[1, 2, 3]",
        "edited IR": text.replace("ret void", "unreachable"),
        "missing field": json.dumps({k: v for k, v in _entry().items() if k != "args"}),
        "lone surrogate": json.dumps({**_entry(), "ir": "\ud800"}),
    }
    for what, content in damaged.items():
        path.write_text(content, encoding="latin-1")
        assert kc.read_entry(path, key) is None, what


def test_cache_folder_choice(tmp_path, monkeypatch):
    from numba.core import config

    monkeypatch.setenv("SYMGRAD_KERNEL_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setattr(config, "CACHE_DIR", str(tmp_path / "numba"))
    assert kc.cache_dir() == tmp_path / "explicit"

    monkeypatch.delenv("SYMGRAD_KERNEL_CACHE_DIR")
    assert kc.cache_dir() == tmp_path / "numba" / "symgrad_kernels"

    monkeypatch.setattr(config, "CACHE_DIR", "")
    monkeypatch.setattr(kc, "_HERE", tmp_path / "package")
    assert kc.cache_dir() == tmp_path / "package" / "__pycache__" / "symgrad_kernels"

    # The package folder is not writable: the user's cache folder.
    (tmp_path / "read_only_package").write_text("")
    monkeypatch.setattr(kc, "_HERE", tmp_path / "read_only_package")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    chosen = kc.cache_dir()
    assert chosen.parts[-2:] == ("symgrad", "kernels")
    if sys.platform.startswith("linux"):
        assert chosen == tmp_path / "xdg" / "symgrad" / "kernels"
    # Never below the module cache that benchmarks empty to time a cold compile.
    assert "SYMGRAD_CACHE_DIR" not in os.environ or not chosen.is_relative_to(
        os.environ["SYMGRAD_CACHE_DIR"]
    )


def test_the_key_covers_versions_machine_and_sources():
    from numba.core.registry import cpu_target

    key = kc.entry_key(cpu_target.target_context.codegen(), "exp", SIG)
    for field in ("python", "numba", "llvmlite", "llvm", "host_cpu", "host_features", "opt"):
        assert key[field], field
    assert (key["kernel"], key["signature"]) == ("exp", "(float64,) -> float64")
    sources = hashlib.sha256()
    for name in ("fastmath.py", "fastmath_bits.py", "inline_llvm.py", "kernel_cache.py"):
        sources.update(name.encode() + b"\0" + (ROOT / "codegen" / name).read_bytes())
    assert key["sources"] == sources.hexdigest()
