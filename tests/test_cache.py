"""The on-disk cache: a second process loads machine code (symgrad's native entry, or Numba's cache
with ``SYMGRAD_NATIVE=0``); corrupt entries are rebuilt."""

import json
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import sympy as sp
    import symgrad as sg
    import symgrad.compiler.program as program

    calls = {"build": 0}
    original = program.build_programs

    def counting(*args, **kwargs):
        calls["build"] += 1
        return original(*args, **kwargs)

    import symgrad.api
    symgrad.api.build_programs = counting

    x, y = sp.symbols("x y")
    f = sg.compile(sp.sin(x) * sp.exp(y), wrt=[x, y])
    value, grads = f.value_and_grad({x: 0.5, y: -1.0})
    from symgrad.codegen.native_runtime import EVENTS
    numba_imported = "numba" in sys.modules
    dispatcher = f._module.value_and_grad  # the Numba function (imports Numba)
    print(json.dumps({
        "value": value,
        "grads": list(grads),
        "built": calls["build"],
        "native": EVENTS,
        "numba_imported": numba_imported,
        "numba_hits": sum(dispatcher.stats.cache_hits.values()),
        "numba_misses": sum(dispatcher.stats.cache_misses.values()),
    }))
    """
)


def _run(cache_dir, native: bool = True) -> dict:
    env = {"SYMGRAD_CACHE_DIR": str(cache_dir), "PATH": "/usr/bin:/bin"}
    if not native:
        env["SYMGRAD_NATIVE"] = "0"
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_second_process_loads_machine_code_without_rebuilding(tmp_path):
    first = _run(tmp_path)
    assert first["built"] == 1
    assert first["numba_misses"] >= 1
    assert any(".value_and_grad.native" in name for name in first["native"]["exported"])
    second = _run(tmp_path)
    assert second["built"] == 0, "the graph was lowered again instead of read from the cache"
    assert any(".value_and_grad.native" in name for name in second["native"]["loaded"])
    assert not second["numba_imported"], "the native entry should run without importing Numba"
    assert second["value"] == first["value"]
    assert second["grads"] == first["grads"]
    # Without native entries Numba's own cache serves the machine code.
    third = _run(tmp_path, native=False)
    assert third["built"] == 0
    assert not third["native"]["loaded"] and third["numba_imported"]
    assert third["numba_misses"] == 0, "Numba recompiled instead of loading machine code"
    assert third["numba_hits"] >= 1
    assert third["grads"] == first["grads"]


@pytest.mark.slow
def test_corrupt_entries_are_rebuilt(tmp_path):
    first = _run(tmp_path)
    sources = list(tmp_path.glob("symgrad_*.py"))
    assert sources
    for path in sources:
        path.write_text(path.read_text()[:100])  # a half-written module
    second = _run(tmp_path)
    assert second["built"] == 1
    assert second["value"] == first["value"]
    for meta in tmp_path.glob("symgrad_*.json"):
        meta.write_text("{not json")
    third = _run(tmp_path)
    assert third["built"] == 1
    assert third["grads"] == first["grads"]
    assert all(json.loads(m.read_text()) for m in tmp_path.glob("symgrad_*.json"))


LAZY_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import sympy as sp
    import symgrad as sg

    x, y = sp.symbols("x y")
    f = sg.compile(sp.sin(x) * sp.exp(y), wrt=[x, y])
    after_import = "numba" in sys.modules
    value, grads = f.value_and_grad(x=0.5, y=-1.0)
    after_float_call = "numba" in sys.modules
    array_value, _ = f.value_and_grad(x=[0.5, 0.25], y=-1.0)
    print(json.dumps({
        "after_import": after_import,
        "after_float_call": after_float_call,
        "after_array_call": "numba" in sys.modules,
        "value": value,
        "grads": list(grads),
        "array_value": list(array_value),
    }))
    """
)


@pytest.mark.slow
def test_warm_float_calls_do_not_import_numba(tmp_path):
    """A warm start whose calls are all-float runs the plain-Python twins; its array calls run
    the native entries the cold process stored; Numba stays unloaded throughout (and comes in
    for the array call when native entries are off). Every path agrees."""
    env = {"SYMGRAD_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}

    def run() -> dict:
        out = subprocess.run(
            [sys.executable, "-c", LAZY_SCRIPT], env=env, capture_output=True, text=True, check=True
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    cold = run()
    warm = run()
    assert not warm["after_import"] and not warm["after_float_call"]
    assert not warm["after_array_call"]
    assert warm["value"] == cold["value"] == pytest.approx(warm["array_value"][0])
    assert warm["grads"] == cold["grads"]
    env["SYMGRAD_NATIVE"] = "0"
    through_numba = run()
    assert not through_numba["after_float_call"] and through_numba["after_array_call"]
    assert through_numba["array_value"] == warm["array_value"]


def test_a_module_removed_before_its_first_numba_use_is_written_back(tmp_path, monkeypatch):
    """Clearing the cache folder while a process holds a not-yet-imported module is harmless."""
    import numpy as np
    import sympy as sp

    import symgrad as sg

    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path))
    a, b = sp.symbols("a_removed b_removed")
    f = sg.compile(sp.cos(a) * b**3, wrt=[a, b])
    assert f.value_and_grad(a_removed=0.5, b_removed=2.0)[0] == pytest.approx(8 * np.cos(0.5))
    assert not f._module.imported
    for path in tmp_path.glob("symgrad_*"):
        path.unlink()
    value, grads = f.value_and_grad({a: 0.5, b: 2.0})  # the Numba path: imported now
    assert f._module.imported
    assert value == pytest.approx(8 * np.cos(0.5))
    assert grads == pytest.approx((-8 * np.sin(0.5), 12 * np.cos(0.5)))
    assert f._module.path.read_text() == f._module.source_text
