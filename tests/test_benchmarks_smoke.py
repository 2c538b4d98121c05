"""Smoke test of ``benchmarks/bench_scalar.py``: it runs and writes its results file.

Only the contenders that need nothing beyond symgrad's own dependencies are run (symgrad and
SymPy's lambdify), so the test passes without the optional peers (PyTorch, JAX, PyTensor).
Timings are never asserted: they depend on the machine and its load.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_scalar.py"


@pytest.mark.slow
def test_bench_scalar_quick_latency_writes_json(tmp_path):
    out = tmp_path / "scalar.json"
    env = dict(os.environ, SYMGRAD_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--section", "latency",
         "--only", "symgrad,lambdify", "--output", str(out)],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "latency" in proc.stdout

    data = json.loads(out.read_text())
    for key in ("benchmark", "schema", "quick", "thread_env", "machine", "examples", "latency"):
        assert key in data, key
    assert data["benchmark"] == "scalar" and data["quick"] is True
    assert data["thread_env"]["NUMBA_NUM_THREADS"] == "1"
    assert set(data["examples"]) == {"add_mul", "neuron", "transcendental"}
    assert "points" not in data and "compile" not in data  # only the section asked for

    rows = data["latency"]["rows"]
    assert {r["family"] for r in rows} == {"symgrad", "lambdify"}
    for example in data["examples"]:
        mine = [r for r in rows if r["example"] == example]
        api = next(r for r in mine if r["contender"] == "symgrad value_and_grad(kw)")
        assert api["status"] == "ok", api
        assert api["check"] == "ok", api  # symgrad agrees with sympy.diff
        assert api["ratio_to_symgrad"] == 1.0
        for r in mine:
            assert {"example", "contender", "family", "status"} <= set(r)
            if r["status"] == "ok":
                assert {"median_us", "min_us", "number", "repeat", "ratio_to_symgrad"} <= set(r)


@pytest.mark.slow
def test_bench_mlp_quick_runs_symgrad_rows(tmp_path):
    """The MLP benchmark's own symgrad contenders (bound raw step and checked call) still run."""
    out = tmp_path / "mlp.json"
    script = SCRIPT.parent / "bench_mlp.py"
    env = dict(os.environ, SYMGRAD_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--threads", "1", "--only", "symgrad,numpy",
         "--no-compile", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())["threads"]["1"]["sizes"]["small"]["rows"]
    symgrad_rows = {k: v for k, v in rows.items() if k.startswith("symgrad")}
    assert len(symgrad_rows) == 2
    assert all(r["status"] == "ok" for r in symgrad_rows.values()), symgrad_rows


def test_numba_floor_measures_a_cached_load(tmp_path):
    """The warm-start floor the compile tables quote: a second process loads from the cache."""
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import common
    finally:
        sys.path.remove(str(SCRIPT.parent))
    floor = common.numba_floor(str(tmp_path), dict(os.environ))
    assert set(floor) == {"import_numba_s", "first_cached_call_s", "total_s"}, floor
    assert floor["total_s"] == floor["import_numba_s"] + floor["first_cached_call_s"] > 0
    cache = tmp_path / "numba-floor" / "cache"
    assert any(p.suffix == ".nbi" for p in cache.rglob("*")), "the trivial function was not cached"
