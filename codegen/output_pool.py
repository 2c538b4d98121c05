"""Output memory of vectorised (points) calls, reused once the caller has let go of it.

Why: a value-and-gradient call over a million points returns several new 8 MB arrays, and fresh
memory costs a page fault per page on first write: glibc gives a large freed block back to the
kernel, so every call faulted its whole output again. For ``(x+y)*z`` over 1e6 points that was
more than half of the call (``benchmarks/bench_scalar.py --section points``). PyTorch's caching
allocator solves the same problem for its tensors; here the rule is simpler.

The pool keeps the arrays of the last two calls (two: in ``for ...: r = f(...)`` the previous
result is still bound to ``r`` while the next call runs). A call of the same length reuses a set
only if nothing else references its arrays any more (``sys.getrefcount``: the caller dropped the
results, and no view, no container, no other thread holds one); otherwise it allocates new ones
and the old ones stay the caller's. A result the caller still holds is therefore never written
again. What it costs: up to two calls' outputs stay allocated after the caller drops them, until
later calls replace them or the compiled function itself is freed.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

import numpy as np

#: Outputs smaller than this (bytes each) are allocated per call, as before: glibc reuses small
#: blocks without faulting, and the pool's bookkeeping would cost more than it saves.
MIN_BYTES = 1 << 17

#: Sets of outputs kept for reuse.
KEEP = 2

#: ``sys.getrefcount`` of a pooled array that only the pool references, as seen inside
#: :meth:`OutputPool._unused` (the tuple slot, the loop variable and the call's argument).
_UNUSED_REFS = 3


class OutputPool:
    """Calls ``fn(*args)``, or ``into(*args, *outputs)`` with reusable outputs for long calls.

    Parameters
    ----------
    fn : callable
        The generated function returning new arrays.
    into : callable
        Its ``_into`` version (``codegen.module.into_functions``), same result.
    count : int
        How many output arrays ``into`` takes.
    dtype : numpy.dtype
        Their dtype.

    Examples
    --------
    >>> import numpy as np
    >>> def into(x, out0):
    ...     np.multiply(x, 2.0, out=out0)
    ...     return out0
    >>> pool = OutputPool(lambda x: 2.0 * x, into, 1, np.dtype("float64"))
    >>> first = pool(1 << 20, np.ones(1 << 20))
    >>> address = first.ctypes.data
    >>> del first                      # the caller lets go: the next call reuses the memory
    >>> pool(1 << 20, np.ones(1 << 20)).ctypes.data == address
    True
    """

    __slots__ = ("_fn", "_into", "_count", "_dtype", "_min_length", "_free", "_lock")

    def __init__(self, fn: Callable, into: Callable, count: int, dtype: np.dtype):
        self._fn = fn
        self._into = into
        self._count = count
        self._dtype = dtype
        self._min_length = MIN_BYTES // dtype.itemsize
        self._free: list[tuple[np.ndarray, ...]] = []
        # Two threads must never take the same set; the lock costs ~0.1 us of a >= 30 us call.
        self._lock = threading.Lock()

    def __call__(self, length: int, *args):
        """The generated function's result for inputs whose points axis is ``length`` long."""
        if length < self._min_length:
            return self._fn(*args)
        with self._lock:
            outputs = self._take(length)
        result = self._into(*args, *outputs)
        with self._lock:
            self._free.append(outputs)
            del self._free[:-KEEP]
        return result

    def _take(self, length: int) -> tuple[np.ndarray, ...]:
        """A free set of outputs ``length`` long, else new arrays."""
        for k, outputs in enumerate(self._free):
            if outputs[0].shape[0] == length and self._unused(outputs):
                del self._free[k]
                return outputs
        return tuple(np.empty(length, self._dtype) for _ in range(self._count))

    @staticmethod
    def _unused(outputs: tuple[np.ndarray, ...]) -> bool:
        for a in outputs:
            if sys.getrefcount(a) > _UNUSED_REFS:
                return False
        return True
