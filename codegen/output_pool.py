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
from collections.abc import Callable, Mapping

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
    """Calls ``functions[name](*args)``, or for long calls ``functions[name + "_into"](*args,
    *outputs)`` with reusable outputs.

    The functions are looked up per call, so neither is loaded before a call needs it.

    Parameters
    ----------
    functions : mapping
        The generated functions by name (``Compiled._fn``, which loads them on first lookup).
    name : str
        The function returning new arrays; ``name + "_into"`` is its version writing into
        arrays passed after the inputs (``codegen.module.into_functions``), same result.
    count : int
        How many output arrays the ``_into`` function takes.
    dtype : numpy.dtype
        Their dtype.

    Examples
    --------
    >>> import numpy as np
    >>> def double_into(x, out0):
    ...     np.multiply(x, 2.0, out=out0)
    ...     return out0
    >>> functions = {"double": lambda x: 2.0 * x, "double_into": double_into}
    >>> pool = OutputPool(functions, "double", 1, np.dtype("float64"))
    >>> first = pool(1 << 20, np.ones(1 << 20))
    >>> address = first.ctypes.data
    >>> del first                      # the caller lets go: the next call reuses the memory
    >>> pool(1 << 20, np.ones(1 << 20)).ctypes.data == address
    True
    """

    __slots__ = ("_functions", "_name", "_into", "_count", "_dtype", "_min_length", "_free",
                 "_lock")  # fmt: skip

    def __init__(self, functions: Mapping[str, Callable], name: str, count: int, dtype: np.dtype):
        self._functions = functions
        self._name = name
        self._into = f"{name}_into"
        self._count = count
        self._dtype = dtype
        self._min_length = MIN_BYTES // dtype.itemsize
        self._free: list[tuple[np.ndarray, ...]] = []
        # Two threads must never take the same set; the lock costs ~0.1 us of a >= 30 us call.
        self._lock = threading.Lock()

    def __call__(self, length: int, *args):
        """The generated function's result for inputs whose points axis is ``length`` long."""
        if length < self._min_length:
            return self._functions[self._name](*args)
        with self._lock:
            outputs = self._take(length)
        result = self._functions[self._into](*args, *outputs)
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
