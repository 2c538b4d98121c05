"""Which BLAS generated matrix products call, chosen without importing Numba.

Code generation only needs the name of the product function (:func:`matmul_call`), and the
cache key only the backend's name, so this module opens MKL with ``ctypes`` and nothing more:
``import symgrad`` and a warm start whose calls never reach Numba stay free of Numba's import.
The kernels themselves, and the registration of the libraries' symbols with LLVM, are in
:mod:`symgrad.codegen.blas`, which generated modules import.

``SYMGRAD_BLAS`` chooses one of three libraries:

- ``mkl``: Intel MKL (the optional ``mkl`` package; an error when it is not installed);
- ``openblas``: the OpenBLAS that NumPy's wheels bundle (``libscipy_openblas64_``, 64-bit
  integers), called through its CBLAS interface;
- ``numpy``: Numba's ``np.dot``, which goes through SciPy's OpenBLAS (``scipy.linalg.cython_blas``).

``auto`` (the default) picks MKL when it is installed and the CPU is Intel's, else NumPy's
OpenBLAS when NumPy bundles one, else ``numpy``.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import os
from functools import cache, lru_cache
from pathlib import Path

from ..ir.errors import SymgradError

ENV = "SYMGRAD_BLAS"
CHOICES = ("auto", "mkl", "openblas", "numpy")
#: CPUs on which ``auto`` picks MKL. On an AMD EPYC (AVX-512) MKL's GEMM ran 10-55 % slower than
#: OpenBLAS and made MLP training steps 10-53 % slower (``benchmarks/README.md``); on the Intel
#: machines of earlier measurements it was 1.2-1.4x faster. "unknown": no vendor string (not
#: Linux, and ``platform`` knows none), where MKL stays the default as it was.
MKL_VENDORS = ("intel", "unknown")
#: The CBLAS functions generated code needs from MKL.
CBLAS_SYMBOLS = ("cblas_sgemm", "cblas_dgemm")
#: The same functions in NumPy's bundled OpenBLAS (the ``scipy-openblas64`` build: ILP64, its
#: symbols renamed so that it never clashes with another BLAS in the process).
OPENBLAS_SYMBOLS = ("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_")


class BlasBackendError(SymgradError):
    """The BLAS named by ``SYMGRAD_BLAS`` is unknown or not installed."""


def _distribution_libraries(distribution: str, prefix: str) -> list[Path]:
    """Shared libraries named ``prefix*`` that pip installed with ``distribution``."""
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        return []
    found = [Path(f.locate()).resolve() for f in files if Path(str(f)).name.startswith(prefix)]
    return sorted(p for p in found if p.exists())


def _open_with(paths: list[Path], symbols: tuple[str, ...]) -> ctypes.CDLL | None:
    """The first of ``paths`` that opens and exports every one of ``symbols``."""
    for path in paths:
        try:
            lib = ctypes.CDLL(str(path))
            for name in symbols:
                getattr(lib, name)
        except (OSError, AttributeError):
            continue
        return lib
    return None


@lru_cache(maxsize=1)
def open_mkl() -> ctypes.CDLL | None:
    """``libmkl_rt`` with its two GEMMs, opened once; ``None`` when MKL is not installed."""
    return _open_with(_distribution_libraries("mkl", "libmkl_rt"), CBLAS_SYMBOLS)


@lru_cache(maxsize=1)
def open_numpy_openblas() -> ctypes.CDLL | None:
    """NumPy's bundled ILP64 OpenBLAS, opened once; ``None`` when NumPy bundles none.

    NumPy has loaded it already, so this only looks the library up; a NumPy built against
    another BLAS (a distribution package, conda's MKL build) has no such file.
    """
    import numpy

    prefix = "libscipy_openblas64_"
    # Where NumPy's wheels put it (Linux and Windows: beside the package; macOS: inside it),
    # looked up before the package's file list, which takes ~20 ms to read.
    here = Path(numpy.__file__).resolve().parent
    paths = sorted([*here.parent.glob(f"numpy.libs/{prefix}*"), *here.glob(f".dylibs/{prefix}*")])
    lib = _open_with(paths, OPENBLAS_SYMBOLS)
    if lib is None:
        lib = _open_with(_distribution_libraries("numpy", prefix), OPENBLAS_SYMBOLS)
    return lib


def select_backend(choice: str) -> str:
    """The backend a ``SYMGRAD_BLAS`` value selects: ``"mkl"``, ``"openblas"`` or ``"numpy"``.

    Raises
    ------
    BlasBackendError
        For an unknown value, ``mkl`` when Intel MKL is not installed, or ``openblas`` when
        NumPy bundles no OpenBLAS.
    """
    choice = choice.strip().lower() or "auto"
    if choice not in CHOICES:
        raise BlasBackendError(f"{ENV}={choice!r}: expected one of {', '.join(CHOICES)}")
    if choice == "numpy":
        return "numpy"
    if choice == "mkl" and open_mkl() is None:
        raise BlasBackendError(
            f"{ENV}=mkl but Intel MKL is not installed: pip install 'symgrad[mkl]' (or unset {ENV})"
        )
    if choice == "openblas" and open_numpy_openblas() is None:
        raise BlasBackendError(
            f"{ENV}=openblas but this NumPy bundles no OpenBLAS (no libscipy_openblas64_ among "
            f"its files: a NumPy built against another BLAS); use {ENV}=numpy or unset it"
        )
    if choice != "auto":
        return choice
    if cpu_vendor() in MKL_VENDORS and open_mkl() is not None:
        return "mkl"
    if open_numpy_openblas() is not None:
        return "openblas"
    return "numpy"


@lru_cache(maxsize=1)
def cpu_vendor() -> str:
    """``"intel"``, ``"amd"``, ``"other"`` (another x86 vendor) or ``"unknown"``.

    Read from ``/proc/cpuinfo`` on Linux and from ``platform.processor()`` elsewhere.
    """
    text = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("vendor_id"):
                    text = line
                    break
    except OSError:
        pass
    if not text:
        import platform

        text = platform.processor()
    if "GenuineIntel" in text:
        return "intel"
    if "AuthenticAMD" in text:
        return "amd"
    return "other" if "vendor_id" in text else "unknown"


@lru_cache(maxsize=1)
def backend() -> str:
    """``"mkl"``, ``"openblas"`` or ``"numpy"``: the matrix product of generated code here.

    Read once per process from ``SYMGRAD_BLAS`` (see :func:`select_backend`).
    """
    return select_backend(os.environ.get(ENV, "auto"))


def mkl_version() -> str | None:
    """MKL's version string when it is installed (whether or not it is the backend), else None."""
    lib = open_mkl()
    if lib is None:
        return None
    buf = ctypes.create_string_buffer(256)
    lib.mkl_get_version_string(buf, len(buf))
    return buf.value.decode()


def openblas_config() -> str | None:
    """NumPy's bundled OpenBLAS's build string (version, kernel, threads), else None."""
    lib = open_numpy_openblas()
    if lib is None:
        return None
    config = lib.scipy_openblas_get_config64_
    config.restype = ctypes.c_char_p
    return config().decode()


#: library -> (its symbol, the name LLVM knows it by) for the two GEMMs
GEMM_SYMBOLS = {
    "mkl": {"cblas_sgemm": "symgrad_mkl_sgemm", "cblas_dgemm": "symgrad_mkl_dgemm"},
    "openblas": {
        "scipy_cblas_sgemm64_": "symgrad_openblas_sgemm",
        "scipy_cblas_dgemm64_": "symgrad_openblas_dgemm",
    },
}
_OPENERS = {"mkl": open_mkl, "openblas": open_numpy_openblas}


@cache
def register_gemm(library: str) -> ctypes.CDLL | None:
    """``library`` with its GEMMs registered with LLVM under our names; None when not installed.

    Needs llvmlite only, not Numba: code loaded straight from symgrad's native cache
    (``codegen/native_runtime.py``) links against these names too.
    """
    import llvmlite.binding as llvm

    lib = _OPENERS[library]()
    if lib is None:
        return None
    for name, ours in GEMM_SYMBOLS[library].items():
        llvm.add_symbol(ours, ctypes.cast(getattr(lib, name), ctypes.c_void_p).value)
    return lib


def matmul_call() -> str:
    """The function generated code calls as ``f(a, b, out)`` for a 2-D matrix product."""
    return "np.dot" if backend() == "numpy" else "gemm"
