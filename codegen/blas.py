"""The matrix product generated code calls: Intel MKL's ``cblas_?gemm`` when available.

Numba's ``np.dot`` goes through SciPy's OpenBLAS. On the shapes of a training step (a batch of
64-256 rows times 256-1024 columns) MKL's single-threaded GEMM runs 64-92 GFLOP/s on these
machines against 52-72 for that OpenBLAS (``benchmarks/bench_gemm.py``), so when the optional
``mkl`` package is installed (``pip install symgrad[mkl]``) generated code calls
:func:`gemm`, which goes straight to ``cblas_sgemm``/``cblas_dgemm``; otherwise it keeps
``np.dot(a, b, out)``.

``SYMGRAD_BLAS`` chooses: ``auto`` (the default: MKL when installed and the CPU is Intel's; see
:data:`symgrad.codegen.blas_select.MKL_VENDORS`), ``mkl`` (an error when it is not installed) or
``numpy``. The choice is part of the cache key of generated modules
(:func:`symgrad.codegen.cache.library_fingerprint`), because Numba's machine cache of a
generated function does not know which GEMM it was linked against.

The MKL functions are registered under symgrad's own symbol names (``llvmlite``'s
``add_symbol``), which LLVM resolves when it links a function, freshly compiled or loaded from
Numba's cache, so another copy of MKL in the process (PyTorch links one in) is never picked up by
accident. MKL's threads follow ``MKL_NUM_THREADS`` and ``threadpoolctl`` like any BLAS.

Compile cost: a call of :func:`gemm` is a one-line call of a kernel per dtype and operand
layout (C- or F-contiguous, or any strides), and the kernels are cached on disk by Numba once
per installation, so a new model's cold compile spends ~0.1 s per array-type combination on
them instead of ~0.2 s.
"""

from __future__ import annotations

import ctypes
from functools import lru_cache

import numpy as np
from numba import njit, types
from numba.core.errors import TypingError
from numba.extending import overload

from .blas_select import (  # noqa: F401  (re-exported: the backend API lives beside gemm)
    CHOICES,
    ENV,
    BlasBackendError,
    backend,
    cpu_vendor,
    matmul_call,
    mkl_version,
    open_mkl,
    select_backend,
)
from .library_kernel import library_kernel

# CBLAS enums.
_ROW_MAJOR = 101
_NO_TRANS = 111
_TRANS = 112

_SYMBOLS = {"cblas_sgemm": "symgrad_mkl_sgemm", "cblas_dgemm": "symgrad_mkl_dgemm"}


@lru_cache(maxsize=1)
def _load_mkl() -> ctypes.CDLL | None:
    """MKL, with its GEMMs registered with LLVM under our names; ``None`` when not installed."""
    import llvmlite.binding as llvm

    lib = open_mkl()
    if lib is None:
        return None
    for name, ours in _SYMBOLS.items():
        llvm.add_symbol(ours, ctypes.cast(getattr(lib, name), ctypes.c_void_p).value)
    return lib


# Registered on import: a generated function loaded from Numba's cache links against these
# symbols without typing ``gemm`` again.
_load_mkl()


def _cblas_signature(real):
    # Pointers travel as intp (``array.ctypes.data``): the same register as a void* on every
    # 64-bit ABI, and it spares each call site Numba's ctypes-object lowering.
    i, p = types.intc, types.intp
    return types.void(i, i, i, i, i, i, real, p, i, p, i, real, p, i)


_sgemm = types.ExternalFunction(_SYMBOLS["cblas_sgemm"], _cblas_signature(types.float32))
_dgemm = types.ExternalFunction(_SYMBOLS["cblas_dgemm"], _cblas_signature(types.float64))


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


def gemm(a, b, out):
    """``out[...] = a @ b`` for 2-D float arrays of one dtype (callable from ``@njit`` code).

    Parameters
    ----------
    a, b : ndarray
        ``(m, k)`` and ``(k, n)`` float32 or float64 arrays, any strides (C or Fortran order and
        transposed views go to MKL as they are; other layouts are copied).
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


@overload(gemm, jit_options={"nogil": True})
def _gemm_impl(a, b, out):
    if _load_mkl() is None:
        raise TypingError("gemm calls Intel MKL, not installed: pip install 'symgrad[mkl]'")
    arrays = (a, b, out)
    if not all(isinstance(t, types.Array) and t.ndim == 2 for t in arrays):
        raise TypingError(f"gemm takes three 2-D arrays, got {a}, {b}, {out}")
    dtypes = {t.dtype for t in arrays}
    if len(dtypes) != 1 or dtypes.pop() not in (types.float32, types.float64):
        raise TypingError(f"gemm needs one float dtype (float32 or float64), got {a}, {b}, {out}")
    single = a.dtype == types.float32
    if a.layout in "CF" and b.layout in "CF" and out.layout == "C":
        kernel = _sgemm_contiguous if single else _dgemm_contiguous
    else:
        kernel = _sgemm_any if single else _dgemm_any

    def impl(a, b, out):
        kernel(a, b, out)

    return impl
