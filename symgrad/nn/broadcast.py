"""Scalar functions applied elementwise to matrices, broadcasting like NumPy.

:class:`BroadcastApply` is what a ``symgrad.nn`` activation returns for a matrix argument
(``sigmoid(X*W)``); :func:`broadcast_apply` builds one for any function of the elementwise
vocabulary (``broadcast_apply(sp.log, P)``).
"""

from __future__ import annotations

import sympy as sp
from sympy.core.symbol import Str
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.matrices.expressions.matexpr import MatrixExpr
from sympy.matrices.expressions.special import OneMatrix, ZeroMatrix
from sympy.tensor.array.expressions.arrayexpr_derivatives import array_derive

from ..ir.errors import ShapeError, UnsupportedExpressionError
from ..ir.ops_elementwise import ELEMENTWISE_FUNCTIONS

__all__ = ["BroadcastApply", "broadcast_apply", "explicit_if_concrete", "is_matrix"]


def is_matrix(expr: object) -> bool:
    return bool(getattr(expr, "is_Matrix", False))


def explicit_if_concrete(expr: sp.Basic) -> sp.Basic:
    """``expr.as_explicit()`` if it is a matrix expression of concrete shape without symbolic
    matrices (what ``doit`` means for the ``symgrad.nn`` classes); else ``expr``."""
    if not is_matrix(expr) or isinstance(expr, sp.MatrixBase) or expr.atoms(sp.MatrixSymbol):
        return expr
    if all(sp.sympify(d).is_Integer for d in expr.shape):
        return expr.as_explicit()
    return expr


def _function_named(name: str):
    for cls in ELEMENTWISE_FUNCTIONS:
        if cls.__name__ == name:
            return cls
    raise UnsupportedExpressionError(
        f"{name} is not in the elementwise vocabulary (register_elementwise_function)"
    )


def _broadcast_shape(operands) -> tuple | None:
    """Broadcast shape of the matrix operands (scalars broadcast to anything); None if none."""
    shape = None
    for op in operands:
        if not is_matrix(op):
            continue
        if shape is None:
            shape = tuple(op.shape)
            continue
        dims = []
        for a, b in zip(shape, op.shape):
            if a == b or b == 1:
                dims.append(a)
            elif a == 1:
                dims.append(b)
            else:
                raise ShapeError(f"cannot broadcast shapes {shape} and {op.shape}")
        shape = tuple(dims)
    return shape


def _element(op, i, j):
    """Element ``(i, j)`` of ``op`` broadcast (a scalar is its own every element)."""
    if not is_matrix(op):
        return op
    return op[0 if op.shape[0] == 1 else i, 0 if op.shape[1] == 1 else j]


def broadcast_apply(function: type, *operands: sp.Basic) -> sp.Basic:
    """``function(*operands)`` elementwise, broadcasting matrices and scalars like NumPy.

    ``function`` is a SymPy function class of the elementwise vocabulary (``sp.exp``,
    ``sp.log``, ``sp.Abs``, any ``symgrad.nn`` activation...). Without a matrix operand this is
    the plain call; with explicit matrices only, the explicit result.

    Examples
    --------
    >>> import sympy as sp
    >>> from symgrad import nn
    >>> X = sp.MatrixSymbol("X", 2, 3)
    >>> nn.broadcast_apply(sp.exp, X)
    exp(X)
    >>> nn.broadcast_apply(sp.exp, sp.Matrix([[0, 1]]))
    Matrix([[1, E]])
    """
    operands = tuple(sp.sympify(o) for o in operands)
    shape = _broadcast_shape(operands)
    if shape is None:
        return function(*operands)
    if all(isinstance(o, sp.MatrixBase) or not is_matrix(o) for o in operands):
        rows, cols = shape
        return sp.ImmutableMatrix(
            rows, cols, lambda i, j: function(*(_element(o, i, j) for o in operands))
        )
    return BroadcastApply(function, *operands)


class BroadcastApply(MatrixExpr):
    """A scalar function applied elementwise to matrix (and scalar) operands, with broadcasting.

    ``args = (Str(name), *operands)``: the function is named rather than stored as a ``Lambda``,
    so the expression has no dummy symbols and its ``srepr`` (symgrad's cache key) is the same in
    every process. It prints as the call, ``sigmoid(X*W)``. SymPy differentiates it with respect
    to scalars (elementwise chain rule, giving Hadamard products of applied derivatives) and, for
    one operand, with respect to matrices (SymPy's matrix calculus, as ``ElementwiseApplyFunction``
    would); symgrad differentiates every case when it compiles.
    """

    def __new__(cls, function, *operands):
        name = function.name if isinstance(function, Str) else getattr(function, "__name__", None)
        if not isinstance(name, str):
            raise TypeError(
                f"BroadcastApply needs a SymPy function class, got {function!r} "
                "(for a Lambda, use ElementwiseApplyFunction or Matrix.applyfunc)"
            )
        _function_named(name)
        operands = tuple(sp.sympify(o) for o in operands)
        if _broadcast_shape(operands) is None:
            raise ShapeError(f"{name} applied elementwise needs a matrix operand")
        return super().__new__(cls, Str(name), *operands)

    @property
    def function(self):
        return _function_named(self.args[0].name)

    @property
    def operands(self) -> tuple:
        return self.args[1:]

    @property
    def shape(self) -> tuple:
        return _broadcast_shape(self.operands)

    def _entry(self, i, j, **kwargs):
        return self.function(*(_element(o, i, j) for o in self.operands))

    def doit(self, **hints):
        deep = hints.get("deep", True)
        operands = [o.doit(**hints) if deep else o for o in self.operands]
        return explicit_if_concrete(broadcast_apply(self.function, *operands))

    def _sympystr(self, printer) -> str:
        return f"{self.args[0].name}({', '.join(printer._print(o) for o in self.operands)})"

    def _latex(self, printer) -> str:
        name = self.args[0].name.replace("_", r"\_")
        inner = ", ".join(printer._print(o) for o in self.operands)
        return rf"\operatorname{{{name}}}\left({inner}\right)"

    def _pretty(self, printer):
        name = self.args[0].name
        return printer._helper_print_function(name, self.operands, func_name=name)

    def _eval_derivative(self, s):
        shape = self.shape
        symbols = _PLACEHOLDERS[: len(self.operands)]
        body = self.function(*symbols)
        env = {v: _broadcast_to(o, shape) for v, o in zip(symbols, self.operands)}
        terms = []
        for v, op in zip(symbols, self.operands):
            d_op = sp.diff(op, s)
            if d_op == 0 or isinstance(d_op, ZeroMatrix) or getattr(d_op, "is_zero_matrix", 0):
                continue
            partial = _lift(sp.diff(body, v), env, shape)
            terms.append(_hadamard(partial, _broadcast_to(d_op, shape)))
        if not terms:
            return ZeroMatrix(*shape)
        return terms[0] if len(terms) == 1 else sp.MatAdd(*terms)


@array_derive.register(BroadcastApply)
def _derive_by_matrix(expr: BroadcastApply, x):
    """SymPy's matrix calculus (``sp.diff(expr, W)``), through ``ElementwiseApplyFunction``."""
    if len(expr.operands) != 1:
        raise NotImplementedError(
            f"SymPy cannot differentiate {expr} with respect to the matrix {x}; differentiate "
            "with respect to scalars, or let symgrad.compile do it"
        )
    d = sp.Dummy("d", real=True)
    return array_derive(ElementwiseApplyFunction(sp.Lambda(d, expr.function(d)), *expr.operands), x)


#: Placeholders for the scalar body while deriving (never stored in an expression).
_PLACEHOLDERS = tuple(sp.Symbol(f"_operand{i}", real=True) for i in range(8))


def _broadcast_to(op, shape):
    """``op`` as a matrix of ``shape`` via ``OneMatrix`` products; scalars stay scalars."""
    if not is_matrix(op) or tuple(op.shape) == tuple(shape):
        return op
    factors = [op]
    if op.shape[0] == 1 and shape[0] != 1:
        factors.insert(0, OneMatrix(shape[0], 1))
    if op.shape[1] == 1 and shape[1] != 1:
        factors.append(OneMatrix(1, shape[1]))
    return sp.MatMul(*factors)


def _hadamard(a, b):
    if not is_matrix(a) or not is_matrix(b):
        return a * b
    return HadamardProduct(a, b)


def _lift(expr, env: dict, shape):
    """Write a scalar body over placeholders as a matrix expression over their operands."""
    matrices = [v for v, o in env.items() if is_matrix(o)]
    if not expr.has(*matrices):
        return expr.xreplace(env)
    if expr in env:
        return env[expr]
    parts = [_lift(a, env, shape) for a in expr.args]
    if expr.is_Add:
        return sp.MatAdd(*(p if is_matrix(p) else p * OneMatrix(*shape) for p in parts))
    if expr.is_Mul:
        scalar = sp.Mul(*(p for p in parts if not is_matrix(p)))
        mats = [p for p in parts if is_matrix(p)]
        product = mats[0] if len(mats) == 1 else HadamardProduct(*mats)
        return product if scalar == 1 else scalar * product
    if expr.is_Pow and not is_matrix(parts[1]):
        return HadamardPower(parts[0], parts[1])
    if isinstance(expr, sp.Function):
        return broadcast_apply(type(expr), *parts)
    raise NotImplementedError(f"cannot write {expr} elementwise over matrices")
