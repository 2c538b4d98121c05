"""The on-disk cache: a second process loads machine code; corrupt entries are rebuilt."""

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
    dispatcher = f._fn["value_and_grad"]
    print(json.dumps({
        "value": value,
        "grads": list(grads),
        "built": calls["build"],
        "numba_hits": sum(dispatcher.stats.cache_hits.values()),
        "numba_misses": sum(dispatcher.stats.cache_misses.values()),
    }))
    """
)


def _run(cache_dir) -> dict:
    env = {"SYMGRAD_CACHE_DIR": str(cache_dir), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_second_process_loads_machine_code_without_rebuilding(tmp_path):
    first = _run(tmp_path)
    assert first["built"] == 1
    assert first["numba_misses"] >= 1
    second = _run(tmp_path)
    assert second["built"] == 0, "the graph was lowered again instead of read from the cache"
    assert second["numba_misses"] == 0, "Numba recompiled instead of loading machine code"
    assert second["numba_hits"] >= 1
    assert second["value"] == first["value"]
    assert second["grads"] == first["grads"]


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
