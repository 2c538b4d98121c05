"""CPython spellings of the fast kernels that ``math`` lacks, for the plain-Python scalar twins.

The scalar twins (``codegen/module.py``) run in CPython, where a Numba kernel would cost a
dispatch per call; these give the same stable forms with ``math`` alone.
"""

from __future__ import annotations

import math


def py_sigmoid(x: float) -> float:
    """``1/(1+e^-x)``, evaluated so that the exponential never overflows."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def py_softplus(x: float) -> float:
    """``log(1 + e^x)`` as ``max(x, 0) + log1p(e^-|x|)``."""
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))
