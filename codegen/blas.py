"""The matrix product generated code calls: a CBLAS ``?gemm`` of Intel MKL or NumPy's OpenBLAS.

Numba's ``np.dot`` goes through SciPy's OpenBLAS (``scipy.linalg.cython_blas``). Two other
libraries are often faster on the shapes of a training step (a batch of 64-256 rows times
256-1024 columns), so generated code can call :func:`gemm` instead, which goes straight to a
``cblas_sgemm``/``cblas_dgemm``:

- Intel MKL (the optional ``mkl`` package, ``pip install symgrad[mkl]``): 64-92 GFLOP/s against
  52-72 for SciPy's OpenBLAS on the Intel machines of earlier measurements, slower on an AMD
  EPYC (``benchmarks/bench_gemm.py``);
- the OpenBLAS that NumPy's wheels bundle (``libscipy_openblas64_``, ILP64): often a newer
  release than SciPy's, and the library NumPy's own ``@`` uses.

``SYMGRAD_BLAS`` chooses (:mod:`symgrad.codegen.blas_select`): ``auto``, ``mkl``, ``openblas``
or ``numpy``. The choice is part of the cache key of generated modules
(:func:`symgrad.codegen.cache.library_fingerprint`), because Numba's machine cache of a
generated function does not know which GEMM it was linked against.

The functions are registered under symgrad's own symbol names (``llvmlite``'s ``add_symbol``),
which LLVM resolves when it links a function, freshly compiled or loaded from Numba's cache, so
another copy of the library in the process (PyTorch links an MKL in) is never picked up by
accident. Their threads follow ``MKL_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` and
``threadpoolctl`` like any BLAS.

Compile cost: a call of :func:`gemm` is a one-line call of a kernel per library, dtype and
operand layout (C- or F-contiguous, or any strides), and the kernels are cached on disk by Numba
once per installation, so a new model's cold compile spends ~0.1 s per array-type combination on
them instead of ~0.2 s.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.core.errors import TypingError
from numba.extending import overload

from .blas_select import (  # noqa: F401  (re-exported: the backend API lives beside gemm)
    CHOICES,
    ENV,
    GEMM_SYMBOLS,
    BlasBackendError,
    backend,
    cpu_vendor,
    matmul_call,
    mkl_version,
    open_mkl,
    open_numpy_openblas,
    openblas_config,
    register_gemm,
    select_backend,
)
from .library_kernel import library_kernel

# CBLAS enums.
_ROW_MAJOR = 101
_NO_TRANS = 111
_TRANS = 112

# Registered on import: a generated function loaded from Numba's cache links against these
# symbols without typing ``gemm`` again.
for _library in GEMM_SYMBOLS:
    register_gemm(_library)


def _cblas_signature(real, integer):
    # Pointers travel as intp (``array.ctypes.data``): the same register as a void* on every
    # 64-bit ABI, and it spares each call site Numba's ctypes-object lowering. The enums are C
    # ints in both libraries; sizes are ``integer`` (MKL's LP64 int, OpenBLAS64's int64).
    i, p, n = types.intc, types.intp, integer
    return types.void(i, i, i, n, n, n, real, p, n, p, n, real, p, n)


def _external(library: str, name: str, real, integer):
    return types.ExternalFunction(GEMM_SYMBOLS[library][name], _cblas_signature(real, integer))


_sgemm = _external("mkl", "cblas_sgemm", types.float32, types.intc)
_dgemm = _external("mkl", "cblas_dgemm", types.float64, types.intc)
_ob_sgemm = _external("openblas", "scipy_cblas_sgemm64_", types.float32, types.int64)
_ob_dgemm = _external("openblas", "scipy_cblas_dgemm64_", types.float64, types.int64)


# The GEMM kernels. Generated code calls ``gemm``, whose overload is a one-line call of these,
# so what Numba compiles per model and array types is that call; the kernels are library code,
# cached on disk (``cache=True``, beside this file like any cached library) once per array-type
# combination, so a new process loads them instead of compiling each in ~0.2 s. Operands reach
# CBLAS through ``_?gemm_arrays``, whose arguments they are, so they stay alive for the call.


@njit(inline="always")
def _check_shapes(a, b, out):
    m, k = a.shape
    n = b.shape[1]
    if b.shape[0] != k or out.shape[0] != m or out.shape[1] != n:
        raise ValueError("gemm: shapes of a, b and out do not match")
    return m, n, k


@njit(inline="always")
def _contiguous_operand(x):
    """``(transpose flag, leading dimension)`` of a C- or F-contiguous ``x`` (known by its type).

    BLAS checks ``ld >= max(1, columns of what it reads)`` even for empty products.
    """
    rows, cols = x.shape
    if x.flags.c_contiguous:
        return _NO_TRANS, max(cols, 1)
    return _TRANS, max(rows, 1)


@njit(nogil=True)
def _sgemm_arrays(ta, tb, m, n, k, a, lda, b, ldb, c, ldc):
    _sgemm(_ROW_MAJOR, ta, tb, m, n, k, np.float32(1.0), a.ctypes.data, lda, b.ctypes.data, ldb,
           np.float32(0.0), c.ctypes.data, ldc)  # fmt: skip


@njit(nogil=True)
def _dgemm_arrays(ta, tb, m, n, k, a, lda, b, ldb, c, ldc):
    _dgemm(_ROW_MAJOR, ta, tb, m, n, k, 1.0, a.ctypes.data, lda, b.ctypes.data, ldb, 0.0,
           c.ctypes.data, ldc)  # fmt: skip


@njit(nogil=True)
def _ob_sgemm_arrays(ta, tb, m, n, k, a, lda, b, ldb, c, ldc):
    _ob_sgemm(_ROW_MAJOR, ta, tb, m, n, k, np.float32(1.0), a.ctypes.data, lda, b.ctypes.data,
              ldb, np.float32(0.0), c.ctypes.data, ldc)  # fmt: skip


@njit(nogil=True)
def _ob_dgemm_arrays(ta, tb, m, n, k, a, lda, b, ldb, c, ldc):
    _ob_dgemm(_ROW_MAJOR, ta, tb, m, n, k, 1.0, a.ctypes.data, lda, b.ctypes.data, ldb, 0.0,
              c.ctypes.data, ldc)  # fmt: skip


@njit(inline="always")
def _gemm_contiguous(a, b, out, arrays_call):
    """C- or F-contiguous operands (known by their types) and a C-contiguous ``out``."""
    # BLAS returns at once for m = 0 or n = 0 and writes zeros for k = 0 (beta = 0).
    m, n, k = _check_shapes(a, b, out)
    ta, lda = _contiguous_operand(a)
    tb, ldb = _contiguous_operand(b)
    arrays_call(ta, tb, m, n, k, a, lda, b, ldb, out, max(n, 1))


@library_kernel
def _sgemm_contiguous(a, b, out):
    _gemm_contiguous(a, b, out, _sgemm_arrays)


@library_kernel
def _dgemm_contiguous(a, b, out):
    _gemm_contiguous(a, b, out, _dgemm_arrays)


@library_kernel
def _ob_sgemm_contiguous(a, b, out):
    _gemm_contiguous(a, b, out, _ob_sgemm_arrays)


@library_kernel
def _ob_dgemm_contiguous(a, b, out):
    _gemm_contiguous(a, b, out, _ob_dgemm_arrays)


@njit(inline="always")
def _operand(x, itemsize):
    """``(transpose flag, leading dimension, array)`` presenting ``x`` to row-major CBLAS.

    Rows of unit stride go as they are, columns of unit stride as the transpose; anything else
    (a strided slice, a negative stride) is copied first.
    """
    rows, cols = x.shape
    s0, s1 = x.strides
    if (cols == 1 or s1 == itemsize) and s0 > 0 and s0 % itemsize == 0:
        ld = s0 // itemsize
        if rows == 1:
            ld = max(ld, cols)
        if ld >= cols:
            return _NO_TRANS, ld, x
    if (rows == 1 or s0 == itemsize) and s1 > 0 and s1 % itemsize == 0:
        ld = s1 // itemsize
        if cols == 1:
            ld = max(ld, rows)
        if ld >= rows:
            return _TRANS, ld, x
    return _NO_TRANS, max(cols, 1), np.ascontiguousarray(x)


@njit(inline="always")
def _gemm_any(a, b, out, itemsize, arrays_call):
    """Any strides: operands CBLAS cannot read as they are are copied, and so is a strided out."""
    m, n, k = _check_shapes(a, b, out)
    if m == 0 or n == 0:
        return
    if k == 0:
        out[:, :] = 0
        return
    ta, lda, a2 = _operand(a, itemsize)
    tb, ldb, b2 = _operand(b, itemsize)
    s0, s1 = out.strides
    direct = (n == 1 or s1 == itemsize) and s0 > 0 and s0 % itemsize == 0
    if direct and (m == 1 or s0 // itemsize >= n):
        arrays_call(ta, tb, m, n, k, a2, lda, b2, ldb, out, max(s0 // itemsize, n))
    else:
        c = np.empty((m, n), dtype=out.dtype)
        arrays_call(ta, tb, m, n, k, a2, lda, b2, ldb, c, n)
        out[:, :] = c


@library_kernel
def _sgemm_any(a, b, out):
    _gemm_any(a, b, out, 4, _sgemm_arrays)


@library_kernel
def _dgemm_any(a, b, out):
    _gemm_any(a, b, out, 8, _dgemm_arrays)


@library_kernel
def _ob_sgemm_any(a, b, out):
    _gemm_any(a, b, out, 4, _ob_sgemm_arrays)


@library_kernel
def _ob_dgemm_any(a, b, out):
    _gemm_any(a, b, out, 8, _ob_dgemm_arrays)


#: library -> {(single precision, contiguous operands): kernel}
_KERNELS = {
    "mkl": {
        (True, True): _sgemm_contiguous,
        (False, True): _dgemm_contiguous,
        (True, False): _sgemm_any,
        (False, False): _dgemm_any,
    },
    "openblas": {
        (True, True): _ob_sgemm_contiguous,
        (False, True): _ob_dgemm_contiguous,
        (True, False): _ob_sgemm_any,
        (False, False): _ob_dgemm_any,
    },
}


def gemm_library() -> str:
    """The library :func:`gemm` calls: the backend when it is ``mkl`` or ``openblas``; with the
    ``numpy`` backend (generated code calls ``np.dot`` then), MKL if installed, else OpenBLAS.

    Raises
    ------
    BlasBackendError
        When neither library is available.
    """
    chosen = backend()
    if chosen in _KERNELS:
        return chosen
    for library in _KERNELS:
        if register_gemm(library) is not None:
            return library
    raise BlasBackendError(
        "gemm needs Intel MKL (pip install 'symgrad[mkl]') or a NumPy that bundles OpenBLAS"
    )


def gemm(a, b, out):
    """``out[...] = a @ b`` for 2-D float arrays of one dtype (callable from ``@njit`` code).

    Calls the CBLAS GEMM of :func:`gemm_library` (MKL or NumPy's OpenBLAS).

    Parameters
    ----------
    a, b : ndarray
        ``(m, k)`` and ``(k, n)`` float32 or float64 arrays, any strides (C or Fortran order and
        transposed views go to the library as they are; other layouts are copied).
    out : ndarray
        ``(m, n)`` array of the same dtype, written in full; it must not overlap ``a`` or ``b``.

    Examples
    --------
    >>> import numpy as np
    >>> from numba import njit
    >>> from symgrad.codegen.blas import gemm
    >>> @njit
    ... def product(a, b):
    ...     out = np.empty((a.shape[0], b.shape[1]))
    ...     gemm(a, b, out)
    ...     return out
    >>> product(np.ones((2, 3)), np.ones((3, 2)))
    array([[3., 3.],
           [3., 3.]])
    """
    raise NotImplementedError("gemm is called from @njit code")


def _check_gemm_types(a, b, out) -> bool:
    """Whether all three are C/F-contiguous (``out`` C); TypingError for anything gemm refuses."""
    arrays = (a, b, out)
    if not all(isinstance(t, types.Array) and t.ndim == 2 for t in arrays):
        raise TypingError(f"gemm takes three 2-D arrays, got {a}, {b}, {out}")
    dtypes = {t.dtype for t in arrays}
    if len(dtypes) != 1 or dtypes.pop() not in (types.float32, types.float64):
        raise TypingError(f"gemm needs one float dtype (float32 or float64), got {a}, {b}, {out}")
    return a.layout in "CF" and b.layout in "CF" and out.layout == "C"


def gemm_kernel(library: str, a, b, out):
    """The library kernel computing ``gemm(a, b, out)`` for these Numba array types."""
    contiguous = _check_gemm_types(a, b, out)
    return _KERNELS[library][(a.dtype == types.float32, contiguous)]


@overload(gemm, jit_options={"nogil": True})
def _gemm_impl(a, b, out):
    try:
        library = gemm_library()
    except BlasBackendError as exc:
        raise TypingError(str(exc)) from None
    kernel = gemm_kernel(library, a, b, out)

    def impl(a, b, out):
        kernel(a, b, out)

    return impl
