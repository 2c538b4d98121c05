"""symgrad: SymPy expressions compiled to Numba value, gradient and JVP functions.

Examples
--------
>>> import sympy as sp, symgrad as sg
>>> x, y, z = sp.symbols("x y z")
>>> f = sg.compile((x + y) * z, wrt=[x, y, z])
>>> f.grad(x=-2.0, y=5.0, z=-4.0)
(-4.0, -4.0, 3.0)
"""

from .api import Hessian, compile, compile_step, hessian
from .codegen.compiled import Compiled
from .explain import Equations, explain, forward_equations, gradient_equations
from .ir.errors import (
    CacheError,
    InputError,
    ShapeError,
    SymgradError,
    UnsupportedExpressionError,
)
from .recurrence import Sequence, scan

__version__ = "0.1.0"

__all__ = [
    "compile", "compile_step", "hessian", "Compiled", "Hessian", "CacheError", "InputError",
    "ShapeError", "SymgradError", "Sequence", "scan", "Equations", "explain",
    "forward_equations", "gradient_equations", "UnsupportedExpressionError", "__version__",
]  # fmt: skip
