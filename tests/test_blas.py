"""The matrix product of generated code: MKL's or NumPy's OpenBLAS's GEMM, or ``np.dot``.

``gemm``'s kernels are checked against NumPy, for each installed library, for every layout they
accept (C, Fortran, transposed views, strided slices, zero-sized dimensions); the choice of
backend is checked for each ``SYMGRAD_BLAS`` value; and a model compiled under every backend, in
new processes, gives the same loss and gradients.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from symgrad.codegen import blas, blas_select

#: The libraries ``gemm`` can call here.
LIBRARIES = [lib for lib in ("mkl", "openblas") if blas.register_gemm(lib) is not None]
#: Every backend this installation offers.
BACKENDS = [*LIBRARIES, "numpy"]


@njit
def _gemm(a, b, out):
    blas.gemm(a, b, out)


def _library_gemm(library, a, b, out):
    """What ``gemm`` does with these arrays when it calls ``library``: the same kernel choice."""
    kernel = blas.gemm_kernel(library, numba.typeof(a), numba.typeof(b), numba.typeof(out))
    kernel(a, b, out)


def _layout(x: np.ndarray, kind: str) -> np.ndarray:
    """``x``'s values in the memory layout ``kind``."""
    if kind == "C":
        return np.ascontiguousarray(x)
    if kind == "F":
        return np.asfortranarray(x)
    if kind == "T":  # a transposed view of a C array
        return np.ascontiguousarray(x.T).T
    # "strided": every other row and every third column of a larger array
    big = np.zeros((2 * x.shape[0] + 1, 3 * x.shape[1] + 1), dtype=x.dtype)
    view = big[::2, ::3][: x.shape[0], : x.shape[1]]
    view[...] = x
    return view


# Layout triples (a, b, out): each array type Numba sees is compiled once, so the suite covers
# every branch of gemm's operand handling without compiling all 4³ combinations.
LAYOUTS = [
    ("C", "C", "C"),
    ("T", "C", "C"),
    ("C", "T", "C"),
    ("F", "F", "C"),
    ("strided", "C", "C"),
    ("C", "strided", "C"),
    ("C", "C", "strided"),
    ("C", "C", "F"),
]


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", LAYOUTS, ids=["-".join(x) for x in LAYOUTS])
@settings(max_examples=25, deadline=None, derandomize=True)
@given(m=st.integers(0, 9), k=st.integers(0, 9), n=st.integers(0, 9), seed=st.integers(0, 2**16))
def test_gemm_matches_numpy_for_every_layout(library, dtype, layout, m, k, n, seed):
    rng = np.random.default_rng(seed)
    a = _layout(rng.standard_normal((m, k)).astype(dtype), layout[0])
    b = _layout(rng.standard_normal((k, n)).astype(dtype), layout[1])
    out = _layout(np.full((m, n), np.nan, dtype=dtype), layout[2])
    _library_gemm(library, a, b, out)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, a.astype(np.float64) @ b, rtol=tol, atol=tol * max(k, 1))


@pytest.mark.skipif(not LIBRARIES, reason="neither MKL nor a NumPy-bundled OpenBLAS")
def test_gemm_rejects_mixed_dtypes_and_bad_shapes():
    from numba.core.errors import TypingError

    a = np.ones((2, 3), np.float32)
    with pytest.raises(TypingError, match="one float dtype"):
        _gemm(a, np.ones((3, 2)), np.empty((2, 2), np.float32))
    with pytest.raises(ValueError, match="shapes"):
        _gemm(a, np.ones((4, 2), np.float32), np.empty((2, 2), np.float32))


def test_backend_choice_by_environment(monkeypatch):
    assert blas.select_backend("numpy") == "numpy"
    assert blas.select_backend(" NumPy ") == "numpy"
    with pytest.raises(blas.BlasBackendError, match="'blis'.*auto, mkl, openblas, numpy"):
        blas.select_backend("blis")
    has_mkl = blas.register_gemm("mkl") is not None
    has_openblas = blas.open_numpy_openblas() is not None
    fallback = "openblas" if has_openblas else "numpy"
    # auto: MKL on Intel CPUs (and where the vendor is unknown), else NumPy's OpenBLAS.
    for vendor, auto in (
        ("intel", "mkl" if has_mkl else fallback),
        ("unknown", "mkl" if has_mkl else fallback),
        ("amd", fallback),
        ("other", fallback),
    ):
        monkeypatch.setattr(blas_select, "cpu_vendor", lambda vendor=vendor: vendor)
        assert blas.select_backend("auto") == auto, vendor
        assert blas.select_backend("") == auto, vendor
        # An explicit request is honoured on any CPU.
        for library in LIBRARIES:
            assert blas.select_backend(library) == library
    # Without the libraries, auto falls back and an explicit request says what is missing.
    monkeypatch.setattr(blas_select, "cpu_vendor", lambda: "intel")
    monkeypatch.setattr(blas_select, "open_mkl", lambda: None)
    assert blas.select_backend("auto") == fallback
    with pytest.raises(blas.BlasBackendError, match=r"pip install 'symgrad\[mkl\]'"):
        blas.select_backend("mkl")
    monkeypatch.setattr(blas_select, "open_numpy_openblas", lambda: None)
    assert blas.select_backend("auto") == "numpy"
    with pytest.raises(blas.BlasBackendError, match="NumPy bundles no OpenBLAS"):
        blas.select_backend("openblas")


@pytest.mark.skipif("openblas" not in LIBRARIES, reason="NumPy bundles no OpenBLAS here")
def test_numpy_openblas_is_the_library_numpy_uses():
    """The file found is the ILP64 OpenBLAS NumPy reports (its build string names 64-bit ints)."""
    config = blas.openblas_config()
    assert "USE64BITINT" in config
    libraries = str(np.show_config(mode="dicts")["Build Dependencies"]["blas"])
    assert "scipy-openblas" in libraries or "openblas" in libraries.lower()


def test_cpu_vendor_is_one_of_the_known_answers():
    assert blas_select.cpu_vendor() in ("intel", "amd", "other", "unknown")


def test_generated_code_calls_the_chosen_product():
    import sympy as sp

    import symgrad as sg

    n = sp.Symbol("n")
    X, W = sp.MatrixSymbol("X", n, 3), sp.MatrixSymbol("W", 3, 2)
    f = sg.compile(sp.Trace((X * W).T * (X * W)), wrt=[W], cache_enabled=False)
    call = blas.matmul_call()
    assert call == ("np.dot" if blas.backend() == "numpy" else "gemm")
    assert f"{call}(" in f.source
    if call == "gemm":
        assert "from symgrad.codegen.blas import gemm" in f.source
        assert "np.dot(" not in f.source


# A model with products in every position (forward, both gradients, inside a scan), computed
# by a child process under a given SYMGRAD_BLAS.
_CHILD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import sympy as sp
    import symgrad as sg
    from symgrad.codegen import blas

    T, n = sp.symbols("T n")
    X = sg.Sequence("X", T, n, 3)
    x, h, h0 = (sp.MatrixSymbol(s, *shape) for s, shape in
                (("x_t", (n, 3)), ("h", (n, 4)), ("h0", (n, 4))))
    W, U, V = sp.MatrixSymbol("W", 3, 4), sp.MatrixSymbol("U", 4, 4), sp.MatrixSymbol("V", 4, 2)
    h_new = (x * W + h * U).applyfunc(sp.tanh)
    out = h_new * V
    rnn = sg.scan([(x, X)], [(h, h_new, h0)], [sp.Trace(out.T * out) / 2])
    loss = rnn.total()
    rng = np.random.default_rng(0)
    vals = {"X": rng.standard_normal((5, 6, 3)), "h0": rng.standard_normal((6, 4)),
            "W": rng.standard_normal((3, 4)), "U": 0.5 * rng.standard_normal((4, 4)),
            "V": rng.standard_normal((4, 2))}
    result = {"backend": blas.backend()}
    for dtype in ("float64", "float32"):
        f = sg.compile(loss, wrt=[W, U, V], dtype=dtype, cache_enabled=False)
        value, grads = f.value_and_grad(**vals)
        result[dtype] = {"value": float(value),
                         "grads": [np.asarray(g, dtype=float).tolist() for g in grads]}
    print(json.dumps(result))
    """
)


def _run_children(*backends: str) -> list[dict]:
    """The child's output under each backend; the children run side by side."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD],
            env=dict(os.environ, SYMGRAD_BLAS=backend),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for backend in backends
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


@pytest.mark.skipif(not LIBRARIES, reason="neither MKL nor a NumPy-bundled OpenBLAS")
@pytest.mark.slow
def test_every_backend_gives_the_same_loss_and_gradients():
    results = dict(zip(BACKENDS, _run_children(*BACKENDS)))
    reference = results["numpy"]
    for name, result in results.items():
        assert result["backend"] == name
        for dtype, tol in (("float64", 1e-10), ("float32", 1e-4)):
            assert result[dtype]["value"] == pytest.approx(reference[dtype]["value"], rel=tol)
            for g, g_ref in zip(result[dtype]["grads"], reference[dtype]["grads"]):
                np.testing.assert_allclose(g, g_ref, rtol=tol, atol=tol)


_KERNEL_CHILD = textwrap.dedent(
    """
    import json
    import numba
    import numpy as np
    from numba import njit
    from symgrad.codegen import blas

    @njit
    def product(a, b, out):
        blas.gemm(a, b, out)

    a = np.ones((3, 4), dtype=np.float32)
    out = np.empty((4, 4), dtype=np.float32)
    product(a.T, a, out)  # an F-contiguous and a C-contiguous operand
    assert (out == 3).all()
    kernel = blas.gemm_kernel(blas.gemm_library(), *map(numba.typeof, (a.T, a, out)))
    stats = kernel.stats
    print(json.dumps({"hits": sum(stats.cache_hits.values()),
                      "misses": sum(stats.cache_misses.values())}))
    """
)


@pytest.mark.parametrize("library", LIBRARIES)
def test_gemm_kernels_are_compiled_once_per_installation(library, tmp_path):
    """A new process loads the GEMM kernel from Numba's cache instead of compiling it again."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), SYMGRAD_BLAS=library)
    runs = []
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-c", _KERNEL_CHILD], env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert runs == [{"hits": 0, "misses": 1}, {"hits": 1, "misses": 0}]
