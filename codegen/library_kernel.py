"""``library_kernel``: how symgrad's own Numba kernels are compiled (cached once per install)."""

from __future__ import annotations

from numba import njit


def library_kernel(fn):
    """``@njit(cache=True, nogil=True)``, or plain ``@njit`` where Numba finds no writable
    cache folder (a read-only installation): library code generated modules call, compiled once
    per installation and array-type combination instead of once per model."""
    try:
        return njit(cache=True, nogil=True)(fn)
    except RuntimeError:  # Numba: "cannot cache function ...: no locator available"
        return njit(nogil=True)(fn)
