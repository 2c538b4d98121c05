"""Transparent huge pages for the long arrays of vectorised (points) calls.

A value-and-gradient call over a million points returns several new 8 MB arrays. Fresh memory is
mapped in 4 KiB pages, one page fault each on first write, and glibc hands a large freed block
back to the kernel, so every call faults all of its output again: for ``(x+y)*z`` over 1e6
points ~7,800 faults took about as long as the arithmetic. NumPy asks the kernel for 2 MiB pages
on arrays of 4 MiB and more (``madvise(MADV_HUGEPAGE)``); generated code does the same for
arrays along the vectorised axis, cutting the faults of such a call ~5x
(``benchmarks/bench_scalar.py --section points``).

On systems without ``madvise`` the hint is a no-op.
"""

from __future__ import annotations

import sys

from numba import types

from .library_kernel import library_kernel

#: Arrays at least this large get the hint (NumPy's threshold).
HUGE_BYTES = 1 << 22
#: ``MADV_HUGEPAGE`` on Linux.
_MADV_HUGEPAGE = 14
_PAGE = 4096


if sys.platform.startswith("linux"):
    _madvise = types.ExternalFunction("madvise", types.intc(types.intp, types.uintp, types.intc))

    @library_kernel
    def advise_hugepages(a):
        """Ask for huge pages under ``a`` when it is at least ``HUGE_BYTES`` long (a hint:
        its result is ignored, and the array is usable whatever the kernel decides)."""
        nbytes = a.size * a.itemsize
        if nbytes >= HUGE_BYTES:
            base = a.ctypes.data
            start = (base + _PAGE - 1) & ~(_PAGE - 1)
            _madvise(start, base + nbytes - start, _MADV_HUGEPAGE)

else:

    @library_kernel
    def advise_hugepages(a):
        """No-op where ``madvise(MADV_HUGEPAGE)`` does not exist."""
        return None
