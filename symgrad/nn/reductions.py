"""Reductions and row-wise normalisations: ``sum``, ``mean``, ``logsumexp``, ``softmax``,
``log_softmax``.

For a ``(n, k)`` matrix of logits (one row per example, one column per class), ``axis=1`` (the
default for the normalisations) works along each row and ``axis=0`` down each column; a reduced
axis is kept with size 1, so ``sum(X, axis=1)`` is an ``(n, 1)`` column, and ``axis=None``
reduces everything to a scalar. Each is a SymPy expression class with a shape that prints as
the call, has explicit entries for concrete shapes (``.as_explicit()``) and differentiates in
SymPy with respect to scalars. symgrad compiles them shifted by the maximum ``m`` along the
axis (:mod:`symgrad.ir.ops_nn`): ``log_softmax(X) = (X - m) - log(sum(exp(X - m)))`` and
``softmax(X) = exp(X - m) / sum(exp(X - m))`` never overflow and stay accurate in float32.
"""

from __future__ import annotations

import builtins

import sympy as sp
from sympy.matrices.expressions.hadamard import HadamardProduct
from sympy.matrices.expressions.matexpr import MatrixExpr
from sympy.matrices.expressions.special import OneMatrix, ZeroMatrix
from sympy.tensor.array.expressions.arrayexpr_derivatives import array_derive

from .broadcast import broadcast_apply, explicit_if_concrete, is_matrix

__all__ = [
    "LogSoftmax", "LogSumExp", "LogSumExpAll", "ReduceSum", "Softmax", "SumAll",
    "log_softmax", "logsumexp", "mean", "softmax", "sum",
]  # fmt: skip


def _is_zero(expr) -> bool:
    return expr == 0 or isinstance(expr, ZeroMatrix) or bool(getattr(expr, "is_zero_matrix", 0))


def _axis_args(X, axis) -> tuple:
    X = sp.sympify(X)
    if not is_matrix(X):
        raise TypeError(f"expected a matrix expression, got {X}")
    if axis not in (0, 1):
        raise ValueError(f"axis must be 0 or 1, got {axis!r}")
    return X, sp.Integer(axis)


def _total(entries) -> sp.Expr:
    return sp.Add(*entries)


def _indices(dim):
    if not sp.sympify(dim).is_Integer:
        raise ValueError(f"explicit entries need concrete shapes, got dimension {dim}")
    return range(int(dim))


class _AlongAxis(MatrixExpr):
    """Base of the axis-wise classes: ``args = (X, axis)``; ``reduces`` sets the shape."""

    _name = ""
    reduces = True
    default_axis = 1

    def __new__(cls, X, axis=1):
        return super().__new__(cls, *_axis_args(X, axis))

    @property
    def arg(self):
        return self.args[0]

    @property
    def axis(self) -> int:
        return int(self.args[1])

    @property
    def shape(self) -> tuple:
        rows, cols = self.arg.shape
        if not self.reduces:
            return (rows, cols)
        return (1, cols) if self.axis == 0 else (rows, 1)

    def _line(self, i, j) -> list:
        """The entries of ``X`` along the axis through position ``(i, j)``."""
        rows, cols = self.arg.shape
        if self.axis == 0:
            return [self.arg[r, j] for r in _indices(rows)]
        return [self.arg[i, c] for c in _indices(cols)]

    def doit(self, **hints):
        arg = self.arg.doit(**hints) if hints.get("deep", True) else self.arg
        return explicit_if_concrete(type(self)(arg, self.axis))

    def _sympystr(self, printer) -> str:
        axis = "" if self.axis == self.default_axis else f", axis={self.axis}"
        return f"{self._name}({printer._print(self.arg)}{axis})"

    def _latex(self, printer) -> str:
        axis = "" if self.axis == self.default_axis else f", {self.axis}"
        name = self._name.replace("_", r"\_")
        return rf"\operatorname{{{name}}}\left({printer._print(self.arg)}{axis}\right)"

    def _broadcast_back(self, column_or_row):
        """An ``(n, 1)`` / ``(1, k)`` value repeated along the reduced axis."""
        rows, cols = self.arg.shape
        if self.axis == 0:
            return OneMatrix(rows, 1) * column_or_row
        return column_or_row * OneMatrix(1, cols)


class ReduceSum(_AlongAxis):
    """``sum(X, axis)``: column sums (``axis=0``, shape ``(1, k)``) or row sums (``(n, 1)``)."""

    _name = "sum"
    default_axis = None  # always printed

    def _entry(self, i, j, **kwargs):
        return _total(self._line(i, j))

    def _eval_derivative(self, s):
        d = sp.diff(self.arg, s)
        return ZeroMatrix(*self.shape) if _is_zero(d) else ReduceSum(d, self.axis)


class LogSumExp(_AlongAxis):
    """``log(sum(exp(X), axis))`` with a kept axis; stable (max-shifted) when compiled."""

    _name = "logsumexp"

    def _entry(self, i, j, **kwargs):
        return sp.log(_total(sp.exp(e) for e in self._line(i, j)))

    def _eval_derivative(self, s):
        d = sp.diff(self.arg, s)
        if _is_zero(d):
            return ZeroMatrix(*self.shape)
        return ReduceSum(HadamardProduct(Softmax(self.arg, self.axis), d), self.axis)


class LogSoftmax(_AlongAxis):
    """``X - logsumexp(X, axis)`` broadcast back: log-probabilities along ``axis``."""

    _name = "log_softmax"
    reduces = False

    def _entry(self, i, j, **kwargs):
        return self.arg[i, j] - sp.log(_total(sp.exp(e) for e in self._line(i, j)))

    def _eval_derivative(self, s):
        d = sp.diff(self.arg, s)
        if _is_zero(d):
            return ZeroMatrix(*self.shape)
        weighted = ReduceSum(HadamardProduct(Softmax(self.arg, self.axis), d), self.axis)
        return d - self._broadcast_back(weighted)


class Softmax(_AlongAxis):
    """``exp(X) / sum(exp(X), axis)``: probabilities along ``axis`` (rows by default)."""

    _name = "softmax"
    reduces = False

    def _entry(self, i, j, **kwargs):
        return sp.exp(self.arg[i, j]) / _total(sp.exp(e) for e in self._line(i, j))

    def _eval_derivative(self, s):
        d = LogSoftmax(self.arg, self.axis).diff(s)
        return d if _is_zero(d) else HadamardProduct(self, d)


class _Total(sp.Expr):
    """Base of the reductions of a whole matrix to a scalar: ``args = (X,)``."""

    _name = ""
    is_commutative = True

    def __new__(cls, X):
        X = sp.sympify(X)
        if not is_matrix(X):
            raise TypeError(f"expected a matrix expression, got {X}")
        return super().__new__(cls, X)

    @property
    def arg(self):
        return self.args[0]

    def _entries(self) -> list:
        rows, cols = self.arg.shape
        return [self.arg[i, j] for i in _indices(rows) for j in _indices(cols)]

    def _eval_is_extended_real(self):
        return True

    def _sympystr(self, printer) -> str:
        return f"{self._name}({printer._print(self.arg)})"

    def _latex(self, printer) -> str:
        return rf"\operatorname{{{self._name}}}\left({printer._print(self.arg)}\right)"


class SumAll(_Total):
    """The sum of all entries of a matrix (a scalar)."""

    _name = "sum"

    def doit(self, **hints):
        arg = explicit_if_concrete(self.arg.doit(**hints) if hints.get("deep", True) else self.arg)
        if isinstance(arg, sp.MatrixBase):
            return builtins.sum(arg, sp.S.Zero)
        return SumAll(arg)

    def _eval_derivative(self, s):
        d = sp.diff(self.arg, s)
        return sp.S.Zero if _is_zero(d) else SumAll(d)


class LogSumExpAll(_Total):
    """``log(sum(exp(X)))`` over all entries (a scalar); stable when compiled."""

    _name = "logsumexp"

    def _sympystr(self, printer) -> str:
        return f"logsumexp({printer._print(self.arg)}, axis=None)"

    def doit(self, **hints):
        arg = explicit_if_concrete(self.arg.doit(**hints) if hints.get("deep", True) else self.arg)
        if isinstance(arg, sp.MatrixBase):
            return sp.log(builtins.sum((sp.exp(e) for e in arg), sp.S.Zero))
        return LogSumExpAll(arg)

    def _eval_derivative(self, s):
        d = sp.diff(self.arg, s)
        if _is_zero(d):
            return sp.S.Zero
        weights = broadcast_apply(sp.exp, self.arg - self * OneMatrix(*self.arg.shape))
        return SumAll(HadamardProduct(weights, d))


@array_derive.register(_AlongAxis)
@array_derive.register(_Total)
def _derive_by_matrix(expr, x):
    # Without this, SymPy's matrix calculus recurses forever on unknown matrix expressions and
    # treats unknown scalars as constants (a silent zero).
    raise NotImplementedError(
        f"SymPy cannot differentiate {expr} with respect to the matrix {x}; differentiate with "
        "respect to scalar symbols, or let symgrad.compile do it"
    )


def sum(X: sp.Basic, axis: int | None = None) -> sp.Basic:  # noqa: A001 - the NumPy name
    """Sum of the entries of ``X``: all of them (``axis=None``, a scalar) or along ``axis``.

    ``axis=1`` gives the ``(n, 1)`` column of row sums, ``axis=0`` the ``(1, k)`` row of column
    sums. A scalar ``X`` is returned as is.

    Examples
    --------
    >>> import sympy as sp
    >>> from symgrad import nn
    >>> n = sp.Symbol("n")
    >>> X = sp.MatrixSymbol("X", n, 3)
    >>> nn.sum(X, axis=1).shape, nn.sum(X)
    ((n, 1), sum(X))
    >>> nn.sum(sp.Matrix([[1, 2], [3, 4]]), axis=0).as_explicit()
    Matrix([[4, 6]])
    """
    X = sp.sympify(X)
    if not is_matrix(X):
        return X
    return SumAll(X) if axis is None else ReduceSum(X, axis)


def mean(X: sp.Basic, axis: int | None = None) -> sp.Basic:
    """Mean of the entries of ``X``, over all (``axis=None``) or along ``axis``.

    A symbolic dimension divides symbolically: the mean over a batch of ``n`` rows is
    ``sum(X, axis=0)/n``, and ``n`` is bound from the arrays at call time.

    Examples
    --------
    >>> import sympy as sp
    >>> from symgrad import nn
    >>> n = sp.Symbol("n")
    >>> nn.mean(sp.MatrixSymbol("X", n, 3), axis=0)
    1/n*sum(X, axis=0)
    """
    X = sp.sympify(X)
    if not is_matrix(X):
        return X
    rows, cols = X.shape
    if axis is None:
        return SumAll(X) / (rows * cols)
    return ReduceSum(X, axis) / (rows if axis == 0 else cols)


def logsumexp(X: sp.Basic, axis: int | None = 1) -> sp.Basic:
    """``log(sum(exp(X)))`` along ``axis`` (kept with size 1) or over all entries (``None``).

    Compiled with a max-shift, so logits of any size give a finite result.

    Examples
    --------
    >>> import numpy as np, sympy as sp, symgrad as sg
    >>> from symgrad import nn
    >>> Z = sp.MatrixSymbol("Z", 2, 3)
    >>> f = sg.compile(nn.logsumexp(Z, axis=None), wrt=[Z])
    >>> round(float(f(Z=np.full((2, 3), 1e4))), 4)
    10001.7918
    """
    X = sp.sympify(X)
    if not is_matrix(X):
        return X
    return LogSumExpAll(X) if axis is None else LogSumExp(X, axis)


def softmax(X: sp.Basic, axis: int = 1) -> Softmax:
    """Softmax along ``axis`` (rows by default: one distribution per example).

    Examples
    --------
    >>> import sympy as sp
    >>> from symgrad import nn
    >>> P = nn.softmax(sp.Matrix([[0, sp.log(3)]])).as_explicit()
    >>> P
    Matrix([[1/4, 3/4]])
    """
    return Softmax(X, axis)


def log_softmax(X: sp.Basic, axis: int = 1) -> LogSoftmax:
    """Log-softmax along ``axis``: ``X - logsumexp(X, axis)``, finite for any finite logits.

    Examples
    --------
    >>> import sympy as sp
    >>> from symgrad import nn
    >>> nn.log_softmax(sp.MatrixSymbol("Z", 5, 3))
    log_softmax(Z)
    """
    return LogSoftmax(X, axis)
