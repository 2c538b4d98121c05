"""Print scalar SymPy bodies as Numba-compilable Python expressions.

Only the vocabulary of :mod:`symgrad.ir.ops_elementwise` is printable; anything else raises
:class:`UnsupportedExpressionError` naming the function. Constants are typed for the compile
dtype (float32 code must not silently compute in float64).
"""

from __future__ import annotations

from collections.abc import Callable

import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

from ..ir.errors import UnsupportedExpressionError
from ..ir.functions import logaddexp

#: SymPy class -> Numba spelling; ``{0}``, ``{1}`` are the printed arguments.
FUNCTIONS: dict[type, str] = {
    # Vectorisable kernels (codegen/fastmath.py): pip's llvmlite has no SVML, so a loop calling
    # math.exp stays scalar (13-41 ns/element); these run at 1-3 ns and are within 2 ulp.
    sp.exp: "fast_exp({0})",
    sp.log: "fast_log({0})",
    sp.sin: "math.sin({0})",
    sp.cos: "math.cos({0})",
    sp.tan: "math.tan({0})",
    sp.cot: "(1 / math.tan({0}))",
    sp.sec: "(1 / math.cos({0}))",
    sp.csc: "(1 / math.sin({0}))",
    sp.asin: "math.asin({0})",
    sp.acos: "math.acos({0})",
    sp.atan: "math.atan({0})",
    sp.atan2: "math.atan2({0}, {1})",
    sp.sinh: "math.sinh({0})",
    sp.cosh: "math.cosh({0})",
    sp.tanh: "fast_tanh({0})",
    sp.coth: "(1 / math.tanh({0}))",
    sp.asinh: "math.asinh({0})",
    sp.acosh: "math.acosh({0})",
    sp.atanh: "math.atanh({0})",
    sp.erf: "math.erf({0})",
    sp.erfc: "math.erfc({0})",
    sp.gamma: "math.gamma({0})",
    sp.loggamma: "math.lgamma({0})",
    sp.Abs: "abs({0})",
    sp.sign: "np.sign({0})",
    sp.floor: "np.floor({0})",
    sp.ceiling: "np.ceil({0})",
    log1p: "fast_log1p({0})",
    expm1: "fast_expm1({0})",
}

#: Extra printers for functions that need more than a template (``symgrad.nn`` adds to it).
CUSTOM: dict[type, Callable] = {}


def register_printer(cls: type, template: str | Callable) -> None:
    """Teach the printer a SymPy function: a format template or ``f(printer, expr) -> str``."""
    if callable(template):
        CUSTOM[cls] = template
    else:
        FUNCTIONS[cls] = template


def _print_logaddexp(printer, expr) -> str:
    # max + log(sum exp(a - max)): no overflow, and the largest term contributes exp(0) = 1.
    args = [printer.print(a) for a in expr.args]
    m = args[-1]
    for a in reversed(args[:-1]):
        m = f"max({a}, {m})"
    terms = " + ".join(f"math.exp({a} - {m})" for a in args)
    return f"({m} + math.log({terms}))"


CUSTOM[logaddexp] = _print_logaddexp


class ScalarPrinter:
    """Prints a scalar body with argument symbols mapped to source names.

    Parameters
    ----------
    names
        Map from the body's argument symbols to Python source (variable names).
    dtype
        ``"float64"`` or ``"float32"``; float32 constants are module-level typed globals.
    constants
        Shared dict ``literal -> global name`` collecting float32 constants for the module.
    """

    def __init__(self, names: dict, dtype: str, constants: dict):
        self.names = names
        self.dtype = dtype
        self.constants = constants

    def number(self, value) -> str:
        v = float(value)
        if v != v:
            text = "np.nan"
        elif v in (float("inf"), float("-inf")):
            text = "np.inf" if v > 0 else "(-np.inf)"
        else:
            text = repr(v)
        if self.dtype == "float64":
            return text if v >= 0 or text.startswith("(") else f"({text})"
        name = self.constants.get(text)
        if name is None:
            name = f"_K{len(self.constants)}"
            self.constants[text] = name
        return name

    def __call__(self, expr) -> str:
        return self.print(expr)

    def print(self, expr) -> str:
        if expr in self.names:
            return self.names[expr]
        if expr.is_Number or isinstance(expr, sp.NumberSymbol):
            return self.number(expr)
        if isinstance(expr, sp.logic.boolalg.BooleanTrue):
            return "True"
        if isinstance(expr, sp.logic.boolalg.BooleanFalse):
            return "False"
        if expr.is_Add:
            return "(" + " + ".join(self.print(a) for a in expr.args) + ")"
        if expr.is_Mul:
            return self._mul(expr)
        if expr.is_Pow:
            return self._pow(expr)
        if isinstance(expr, sp.Piecewise):
            return self._piecewise(expr)
        if isinstance(expr, sp.Heaviside):
            x = self.print(expr.args[0])
            h0 = expr.args[1] if len(expr.args) > 1 else sp.S.Half
            one, zero, half = self.number(1), self.number(0), self.number(h0)
            return f"({one} if {x} > 0 else ({half} if {x} == 0 else {zero}))"
        if isinstance(expr, (sp.Max, sp.Min)):
            fn = "max" if isinstance(expr, sp.Max) else "min"
            args = [self.print(a) for a in expr.args]
            out = args[-1]
            for a in reversed(args[:-1]):
                out = f"{fn}({a}, {out})"
            return out
        if isinstance(expr, sp.polygamma):
            order, x = expr.args
            if order == 0:
                return f"digamma({self.print(x)})"
            if order == 1:
                return f"trigamma({self.print(x)})"
            if order.is_Integer and order > 1:
                return f"polygamma({int(order)}, {self.print(x)})"
            raise UnsupportedExpressionError(f"polygamma of order {order} in {expr}")
        if isinstance(expr, sp.core.relational.Relational):
            op = {"==": "==", "!=": "!=", ">": ">", "<": "<", ">=": ">=", "<=": "<="}[expr.rel_op]
            return f"({self.print(expr.lhs)} {op} {self.print(expr.rhs)})"
        if isinstance(expr, sp.And):
            return "(" + " and ".join(self.print(a) for a in expr.args) + ")"
        if isinstance(expr, sp.Or):
            return "(" + " or ".join(self.print(a) for a in expr.args) + ")"
        if isinstance(expr, sp.Not):
            return f"(not {self.print(expr.args[0])})"
        custom = CUSTOM.get(type(expr))
        if custom is not None:
            return custom(self, expr)
        template = FUNCTIONS.get(type(expr))
        if template is not None:
            return template.format(*[self.print(a) for a in expr.args])
        raise UnsupportedExpressionError(f"no Numba emitter for {type(expr).__name__} (in {expr})")

    def _mul(self, expr) -> str:
        coeff, rest = expr.as_coeff_Mul()
        factors = sp.Mul.make_args(rest)
        numer = [f for f in factors if not (f.is_Pow and f.exp.is_Number and f.exp < 0)]
        denom = [f.base ** (-f.exp) for f in factors if f.is_Pow and f.exp.is_Number and f.exp < 0]
        parts = [self.print(f) for f in numer]
        if coeff == -1:
            text = "-" + (" * ".join(parts) if parts else self.number(1))
        elif coeff != 1 or not parts:
            text = " * ".join([self.number(coeff)] + parts)
        else:
            text = " * ".join(parts)
        if denom:
            text = f"{text if (parts or coeff != 1) else self.number(1)} / "
            text += "(" + " * ".join(self.print(d) for d in denom) + ")"
        return f"({text})"

    def _pow(self, expr) -> str:
        base, exp = expr.args
        b = self.print(base)
        if exp.is_Integer:
            n = int(exp)
            if n == 0:
                return self.number(1)
            if 0 < abs(n) <= 4:
                prod = " * ".join([b] * abs(n))
                return f"({prod})" if n > 0 else f"({self.number(1)} / ({prod}))"
        if exp == sp.S.Half:
            return f"math.sqrt({b})"
        if exp == -sp.S.Half:
            return f"({self.number(1)} / math.sqrt({b}))"
        if base is sp.E:
            return f"fast_exp({self.print(exp)})"
        # math.pow, not **: CPython's float ** gives a complex number for a negative base and a
        # fractional exponent, where math.pow raises (and Numba gives nan, like NumPy).
        return f"math.pow({b}, {self.print(exp)})"

    def _piecewise(self, expr) -> str:
        out = self.number(float("nan"))
        for value, cond in reversed(expr.args):
            v = self.print(value)
            if cond == sp.true:
                out = v
            else:
                out = f"({v} if {self.print(cond)} else {out})"
        return out
