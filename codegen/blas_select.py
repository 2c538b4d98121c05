"""Which BLAS generated matrix products call, chosen without importing Numba.

Code generation only needs the name of the product function (:func:`matmul_call`), and the
cache key only the backend's name, so this module opens MKL with ``ctypes`` and nothing more:
``import symgrad`` and a warm start whose calls never reach Numba stay free of Numba's import.
The kernels themselves, and the registration of MKL's symbols with LLVM, are in
:mod:`symgrad.codegen.blas`, which generated modules import.

``SYMGRAD_BLAS`` chooses: ``auto`` (the default: MKL when installed and the CPU is Intel's),
``mkl`` (an error when it is not installed) or ``numpy``.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import os
from functools import lru_cache
from pathlib import Path

from ..ir.errors import SymgradError

ENV = "SYMGRAD_BLAS"
CHOICES = ("auto", "mkl", "numpy")
#: CPUs on which ``auto`` picks MKL. On an AMD EPYC (AVX-512) MKL's GEMM ran 10-55 % slower than
#: OpenBLAS and made MLP training steps 10-53 % slower (``benchmarks/README.md``); on the Intel
#: machines of earlier measurements it was 1.2-1.4x faster. "unknown": no vendor string (not
#: Linux, and ``platform`` knows none), where MKL stays the default as it was.
MKL_VENDORS = ("intel", "unknown")
#: The CBLAS functions generated code needs from MKL.
CBLAS_SYMBOLS = ("cblas_sgemm", "cblas_dgemm")


class BlasBackendError(SymgradError):
    """The BLAS named by ``SYMGRAD_BLAS`` is unknown or not installed."""


def _mkl_runtime_paths() -> list[Path]:
    """``libmkl_rt`` files of the installed ``mkl`` distribution (pip puts them in ``lib/``)."""
    try:
        files = importlib.metadata.distribution("mkl").files or []
    except importlib.metadata.PackageNotFoundError:
        return []
    found = [Path(f.locate()).resolve() for f in files if Path(str(f)).name.startswith("libmkl_rt")]
    return sorted(p for p in found if p.exists())


@lru_cache(maxsize=1)
def open_mkl() -> ctypes.CDLL | None:
    """``libmkl_rt`` with its two GEMMs, opened once; ``None`` when MKL is not installed."""
    for path in _mkl_runtime_paths():
        try:
            lib = ctypes.CDLL(str(path))
            for name in CBLAS_SYMBOLS:
                getattr(lib, name)
        except (OSError, AttributeError):
            continue
        return lib
    return None


def select_backend(choice: str) -> str:
    """The backend a ``SYMGRAD_BLAS`` value selects: ``"mkl"`` or ``"numpy"``.

    Raises
    ------
    BlasBackendError
        For an unknown value, or ``mkl`` when Intel MKL is not installed.
    """
    choice = choice.strip().lower() or "auto"
    if choice not in CHOICES:
        raise BlasBackendError(f"{ENV}={choice!r}: expected one of {', '.join(CHOICES)}")
    if choice == "numpy":
        return "numpy"
    if choice == "auto" and cpu_vendor() not in MKL_VENDORS:
        return "numpy"
    if open_mkl() is not None:
        return "mkl"
    if choice == "mkl":
        raise BlasBackendError(
            f"{ENV}=mkl but Intel MKL is not installed: pip install 'symgrad[mkl]' (or unset {ENV})"
        )
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
    """``"mkl"`` or ``"numpy"``: the matrix product this process's generated code uses.

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


def matmul_call() -> str:
    """The function generated code calls as ``f(a, b, out)`` for a 2-D matrix product."""
    return "gemm" if backend() == "mkl" else "np.dot"
