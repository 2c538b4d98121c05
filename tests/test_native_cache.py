"""codegen/native_runtime.py and native_export.py: a warm process runs the machine code of an
earlier one without importing Numba, checks every call's types, and stays correct when Numba
comes in later."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from symgrad.codegen import native_runtime
from symgrad.codegen.native_runtime import guarded

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np, sympy as sp
    import symgrad as sg
    from symgrad import nn
    from symgrad.codegen.native_runtime import EVENTS

    mode = sys.argv[1]
    n = sp.Symbol("n")
    X, W, b = sp.MatrixSymbol("X", n, 4), sp.MatrixSymbol("W", 4, 3), sp.MatrixSymbol("b", 1, 3)
    H = (X * W + sp.OneMatrix(n, 1) * b).applyfunc(sp.tanh)
    f = sg.compile(sp.Trace(H.T * H), [W, b])
    rng = np.random.default_rng(0)
    given = {"X": rng.standard_normal((5, 4)), "W": rng.standard_normal((4, 3)),
             "b": rng.standard_normal((1, 3))}
    value, grads = f.value_and_grad(**given)
    E = sp.MatrixSymbol("E", 7, 2)
    ids = nn.Indices("ids", n, 3)
    g = sg.compile(nn.sum(nn.embedding_bag(E, ids, sp.MatrixSymbol("w", n, 3))), [E])
    table, picks, weights = rng.standard_normal((7, 2)), np.array([[0, 6, -1]]), np.ones((1, 3))
    bag, (dE,) = g.value_and_grad(E=table, ids=picks, w=weights)
    out = {"value": value, "grads": [a.tolist() for a in grads], "bag": bag, "dE": dE.tolist(),
           "native": EVENTS, "numba_imported": "numba" in sys.modules}
    positional = [given[name] for name in f.input_names]
    raw = f._fn["value_and_grad"]
    if mode == "checks":
        # An id past the table, straight into the generated function: its IndexError, no crash.
        raw_g = g._fn["value_and_grad"]
        args = {"E": table, "ids": np.array([[0, 9, 1]]), "w": weights}
        try:
            raw_g(*[args[name] for name in g.input_names])
        except IndexError as exc:
            out["index_error"] = str(exc)
        out["numba_after_raise"] = "numba" in sys.modules
        # Arguments unlike the stored signature go to Numba, which compiles for them.
        fortran = [np.asfortranarray(a) for a in positional]
        out["fortran"] = [float(raw(*fortran)[0]), "numba" in sys.modules]
    if mode in ("plain", "step"):
        # A training step (Adam: in-place parameters and state), run through a bound step.
        from symgrad.runtime import Adam
        opt = Adam(lr=0.05)
        step = sg.compile_step(sp.Trace(H.T * H), [W, b], opt.rule)
        state = {"W": given["W"].copy(), "b": given["b"].copy(), "X": given["X"],
                 **opt.init_state({"W": given["W"], "b": given["b"]}), **opt.hyper_values()}
        run = step.bind(state)
        losses = [float(run({})) for _ in range(3)]
        out["step"] = [losses, state["W"].tolist(), state["b"].tolist()]
        out["numba_after_step"] = "numba" in sys.modules
    if mode == "numba_later":
        import numba

        @numba.njit
        def doubled(x):
            if x[0] < 0:
                raise ValueError("negative first element")
            return x * 2.0

        out["numba_later"] = doubled(np.ones(3)).tolist()
        try:
            doubled(-np.ones(3))
        except ValueError as exc:
            out["numba_raise"] = str(exc)
        forward = f.forward

        @numba.njit
        def value_through_forward(a, b, c):
            return forward(a, b, c)[0]

        out["forward_in_njit"] = value_through_forward(*positional)
        out["again"] = raw(*positional)[0]
    print(json.dumps(out))
    """
)


def _run(cache_dir, mode: str = "plain", native: bool = True) -> dict:
    env = {"SYMGRAD_CACHE_DIR": str(cache_dir), "PATH": "/usr/bin:/bin"}
    if not native:
        env["SYMGRAD_NATIVE"] = "0"
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    """A cache folder filled by a first process, and that process's results."""
    folder = tmp_path_factory.mktemp("native")
    return folder, _run(folder)


@pytest.mark.slow
def test_the_first_process_stores_and_the_next_runs_without_numba(warm):
    folder, first = warm
    assert first["numba_imported"]
    assert len(first["native"]["exported"]) >= 2
    assert len(list(folder.glob("symgrad_*.native"))) >= 2
    second = _run(folder)
    assert not second["numba_imported"]
    assert len(second["native"]["loaded"]) >= 2 and not second["native"]["rejected"]
    # The same machine code: bit-identical results, the training step's included.
    for key in ("value", "grads", "bag", "dE", "step"):
        assert second[key] == first[key], key
    assert not second["numba_after_step"]


@pytest.mark.slow
def test_calls_are_checked_and_errors_raised(warm):
    folder, first = warm
    out = _run(folder, "checks")
    assert "past the rows" in out["index_error"]
    assert not out["numba_after_raise"], "raising from native code should not need Numba"
    value, numba_imported = out["fortran"]
    assert numba_imported, "Fortran-ordered arrays are not the stored signature: Numba takes them"
    assert value == pytest.approx(first["value"], rel=1e-12)


@pytest.mark.slow
def test_numba_imported_after_native_code_works(warm):
    folder, first = warm
    out = _run(folder, "numba_later")
    assert out["numba_later"] == [2.0, 2.0, 2.0]
    assert out["numba_raise"] == "negative first element"
    assert out["forward_in_njit"] == pytest.approx(first["value"], rel=1e-12)
    assert out["again"] == first["value"]


@pytest.mark.slow
def test_bad_entries_are_ignored(warm):
    folder, first = warm
    entries = sorted(folder.glob("symgrad_*.native"))
    saved = {p: p.read_bytes() for p in entries}
    try:
        entries[0].write_bytes(saved[entries[0]][:1000])  # truncated
        entry = pickle.loads(saved[entries[1]])
        entry["environment"] = dict(entry["environment"], cpu="another-cpu")
        entries[1].write_bytes(pickle.dumps(entry))
        out = _run(folder)
        assert len(out["native"]["rejected"]) == 2
        assert out["numba_imported"]
        for key in ("value", "grads", "bag", "dE"):
            assert out[key] == first[key], key
        # The unreadable entry is deleted (not read again by every process); the other
        # environment's entry stays for that environment.
        assert not entries[0].exists()
        assert pickle.loads(entries[1].read_bytes())["environment"]["cpu"] == "another-cpu"
    finally:
        for p, data in saved.items():
            p.write_bytes(data)


def test_the_guard_passes_the_stored_signature_only():
    calls = []
    signature = [["array", "float64", 2], ["scalar", "float64"], ["scalar", "int64"]]
    fn = guarded(lambda *a: "native", signature, lambda: lambda *a: "numba", "f")
    ok = np.ones((2, 3))
    assert fn(ok, 1.0, 3) == "native"
    assert fn(ok, np.float64(1.0), np.int64(3)) == "native"
    for bad in (
        (np.ones((2, 3), np.float32), 1.0, 3),  # dtype
        (np.ones(3), 1.0, 3),  # ndim
        (np.ones((3, 2)).T, 1.0, 3),  # layout
        (ok.tolist(), 1.0, 3),  # not an array
        (ok, 1, 3),  # an int for a float
        (ok, 1.0, 3.0),  # a float for an int
    ):
        calls.append(fn(*bad))
    assert calls == ["numba"] * 6


def test_native_entries_can_be_switched_off(monkeypatch, tmp_path):
    monkeypatch.setenv(native_runtime.ENV, "0")
    assert not native_runtime.enabled()
    assert native_runtime.load(tmp_path / "x.native", "sha", lambda: None) is None


def test_disabling_numba_jit_disables_native_code(monkeypatch):
    monkeypatch.setenv("NUMBA_DISABLE_JIT", "1")
    assert not native_runtime.enabled()
    monkeypatch.setenv("NUMBA_DISABLE_JIT", "0")
    assert native_runtime.enabled()
