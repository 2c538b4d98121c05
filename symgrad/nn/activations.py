"""Elementwise activations: SymPy functions whose derivatives reuse their values.

Each activation is an ordinary SymPy function class: it prints, differentiates (its ``fdiff`` is
written in terms of the function itself where possible, so symgrad's backward reads the saved
forward value: ``sigmoid' = sigmoid (1 - sigmoid)``, ``relu' = Heaviside(relu, 0)``), evaluates
numerically (``sympy.N``) and works in ``sympy.lambdify`` through a stable NumPy implementation
(SymPy's ``_imp_`` protocol). Importing :mod:`symgrad.nn` registers each one in the elementwise
vocabulary with a stable Numba printer.

Applied to a matrix, an activation returns a :class:`~symgrad.nn.broadcast.BroadcastApply`: a
matrix expression that
prints as the call (``sigmoid(X*W)``), has the operands' broadcast shape, differentiates in SymPy
and lowers to one elementwise IR node. Extra operands broadcast like NumPy, so ``prelu(Z, a)``
with a ``(1, k)`` slope row applies one slope per column.

Non-differentiable points follow the frameworks: ``relu'(0) = 0``, ``leaky_relu'(0) = alpha``,
``hard_tanh'(±1) = 0``.
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from sympy.core.function import ArgumentIndexError
from sympy.core.logic import fuzzy_and

from ..ir.ops_elementwise import register_elementwise_function
from .broadcast import broadcast_apply, is_matrix

__all__ = [
    "hard_tanh", "leaky_relu", "log_sigmoid", "prelu", "relu", "sigmoid", "softplus", "tanh",
    "xlogy",
]  # fmt: skip


def _np(fn):
    """A NumPy implementation for lambdify: scalars in, NumPy scalars out; arrays stay arrays."""

    def wrapped(*args):
        out = np.asarray(fn(*(np.asarray(a, dtype=float) for a in args)))
        return out[()] if out.ndim == 0 else out

    wrapped.__name__ = fn.__name__
    return staticmethod(wrapped)


class NNFunction(sp.Function):
    """Base of the scalar ``symgrad.nn`` functions.

    Subclasses give ``fdiff``, a plain-SymPy spelling ``_plain(*args)`` (used by ``evalf`` and
    the ``rewrite`` hooks) and a NumPy ``_imp_``. A matrix argument gives a :class:`BroadcastApply`.
    """

    _imp_ = None

    def __new__(cls, *args, **options):
        args = tuple(sp.sympify(a) for a in args)
        if any(is_matrix(a) for a in args):
            return broadcast_apply(cls, *args)
        return super().__new__(cls, *args, **options)

    def _eval_evalf(self, prec):
        if all(a.is_number for a in self.args):
            return self._plain(*self.args)._evalf(prec)
        return None

    def _eval_is_extended_real(self):
        return fuzzy_and(a.is_extended_real for a in self.args)


#: The default slope of :class:`leaky_relu` below zero (PyTorch's 0.01, kept exact).
DEFAULT_LEAKY_SLOPE = sp.Rational(1, 100)


@register_elementwise_function
class sigmoid(NNFunction):  # noqa: N801 - SymPy function names are lower case
    """Logistic sigmoid ``1 / (1 + exp(-x))``; ``sigmoid'(x) = sigmoid(x) (1 - sigmoid(x))``.

    Examples
    --------
    >>> import sympy as sp
    >>> from symgrad import nn
    >>> x = sp.Symbol("x")
    >>> sp.diff(nn.sigmoid(x), x)
    (1 - sigmoid(x))*sigmoid(x)
    >>> sp.N(nn.sigmoid(2))
    0.880797077977882
    """

    nargs = 1
    _imp_ = _np(lambda x: np.where(x >= 0, 1, np.exp(-np.abs(x))) / (1 + np.exp(-np.abs(x))))

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sp.S.Half
        return {sp.oo: sp.S.One, -sp.oo: sp.S.Zero}.get(x)

    def fdiff(self, argindex=1):
        return self * (1 - self)

    @staticmethod
    def _plain(x):
        return 1 / (1 + sp.exp(-x))

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return self._plain(x)


@register_elementwise_function
class softplus(NNFunction):  # noqa: N801
    """``log(1 + exp(x))``, computed as ``max(x, 0) + log1p(exp(-|x|))``; derivative ``sigmoid``.

    Examples
    --------
    >>> import sympy as sp
    >>> from symgrad import nn
    >>> x = sp.Symbol("x")
    >>> sp.diff(nn.softplus(x), x)
    sigmoid(x)
    """

    nargs = 1
    _imp_ = _np(lambda x: np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x))))

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sp.log(2)
        return {sp.oo: sp.oo, -sp.oo: sp.S.Zero}.get(x)

    def fdiff(self, argindex=1):
        # sigmoid(x) = 1 - exp(-softplus(x)) would reuse the value, but cancels for x << 0.
        return sigmoid(self.args[0])

    @staticmethod
    def _plain(x):
        return sp.log(1 + sp.exp(x))

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return self._plain(x)

    def _eval_is_extended_positive(self):
        return self.args[0].is_extended_real


@register_elementwise_function
class log_sigmoid(NNFunction):  # noqa: N801
    """``log(sigmoid(x)) = -softplus(-x)``, stable for any ``x``; derivative ``sigmoid(-x)``.

    Examples
    --------
    >>> import sympy as sp
    >>> from symgrad import nn
    >>> x = sp.Symbol("x")
    >>> sp.diff(nn.log_sigmoid(x), x)
    sigmoid(-x)
    """

    nargs = 1
    _imp_ = _np(lambda x: np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x))))

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return -sp.log(2)
        return {sp.oo: sp.S.Zero, -sp.oo: -sp.oo}.get(x)

    def fdiff(self, argindex=1):
        return sigmoid(-self.args[0])

    @staticmethod
    def _plain(x):
        return -sp.log(1 + sp.exp(-x))

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return self._plain(x)

    def _eval_is_extended_negative(self):
        return self.args[0].is_extended_real


@register_elementwise_function
class relu(NNFunction):  # noqa: N801
    """``max(x, 0)`` with the frameworks' derivative at the kink: ``relu'(0) = 0``.

    The derivative is written with the output, ``Heaviside(relu(x), 0)``, so backward needs only
    the saved activation (which the next layer's matmul gradient needs anyway).

    Examples
    --------
    >>> import sympy as sp
    >>> from symgrad import nn
    >>> x = sp.Symbol("x")
    >>> sp.diff(nn.relu(x), x)
    Heaviside(relu(x), 0)
    >>> sp.diff(nn.relu(x), x).subs(x, 0)
    0
    """

    nargs = 1
    _imp_ = _np(lambda x: np.maximum(x, 0))

    @classmethod
    def eval(cls, x):
        if x.is_number and x.is_extended_real:
            return sp.Max(x, 0)
        return None

    def fdiff(self, argindex=1):
        return sp.Heaviside(self, 0)

    @staticmethod
    def _plain(x):
        return sp.Max(x, 0)

    def _eval_rewrite_as_Max(self, x, **kwargs):
        return self._plain(x)

    def _eval_rewrite_as_Piecewise(self, x, **kwargs):
        return sp.Piecewise((x, x > 0), (0, True))

    def _eval_is_extended_nonnegative(self):
        return self.args[0].is_extended_real


@register_elementwise_function
class leaky_relu(NNFunction):  # noqa: N801
    """``x`` for ``x > 0``, ``alpha*x`` otherwise; ``alpha`` a number (default 1/100) or symbol.

    The derivative at 0 is ``alpha`` (as in PyTorch); with respect to ``alpha`` it is
    ``x * Heaviside(-x, 1)`` (``x`` below zero, else 0).

    Examples
    --------
    >>> import sympy as sp
    >>> from symgrad import nn
    >>> x, a = sp.symbols("x alpha")
    >>> sp.diff(nn.leaky_relu(x, a), x)
    alpha*Heaviside(-x, 1) + Heaviside(x, 0)
    >>> nn.leaky_relu(-3)
    -3/100
    """

    nargs = 2
    _imp_ = _np(lambda x, alpha: np.where(x > 0, x, alpha * x))

    def __new__(cls, x, alpha=DEFAULT_LEAKY_SLOPE, **options):
        return super().__new__(cls, x, alpha, **options)

    @classmethod
    def eval(cls, x, alpha):
        if x.is_number and x.is_extended_real and alpha.is_number:
            return x if x > 0 else alpha * x
        return None

    def fdiff(self, argindex=1):
        x, alpha = self.args
        if argindex == 1:
            return sp.Heaviside(x, 0) + alpha * sp.Heaviside(-x, 1)
        if argindex == 2:
            return x * sp.Heaviside(-x, 1)
        raise ArgumentIndexError(self, argindex)

    @staticmethod
    def _plain(x, alpha):
        return sp.Piecewise((x, x > 0), (alpha * x, True))

    def _eval_rewrite_as_Piecewise(self, x, alpha, **kwargs):
        return self._plain(x, alpha)


@register_elementwise_function
class prelu(leaky_relu):  # noqa: N801
    """Parametric ReLU: :class:`leaky_relu` with a learnable slope ``a`` (no default).

    On a matrix ``Z`` of shape ``(n, k)``, ``a`` may be a scalar symbol (one shared slope) or a
    ``(1, k)`` ``MatrixSymbol`` (one slope per unit), broadcast over the batch; its gradient is
    summed over the broadcast axes.

    Examples
    --------
    >>> import sympy as sp
    >>> from symgrad import nn
    >>> n = sp.Symbol("n")
    >>> Z, a = sp.MatrixSymbol("Z", n, 3), sp.MatrixSymbol("a", 1, 3)
    >>> nn.prelu(Z, a).shape
    (n, 3)
    """

    def __new__(cls, x, a, **options):
        return super().__new__(cls, x, a, **options)


@register_elementwise_function
class hard_tanh(NNFunction):  # noqa: N801
    """``x`` clipped to ``[-1, 1]``; derivative 1 strictly inside, 0 at and beyond ``±1``.

    The derivative reads only the output: ``Heaviside(1 - |hard_tanh(x)|, 0)``.

    Examples
    --------
    >>> from symgrad import nn
    >>> nn.hard_tanh(3), nn.hard_tanh(-0.5)
    (1, -0.500000000000000)
    """

    nargs = 1
    _imp_ = _np(lambda x: np.clip(x, -1, 1))

    @classmethod
    def eval(cls, x):
        if x.is_number and x.is_extended_real:
            return sp.Max(-1, sp.Min(1, x))
        return None

    def fdiff(self, argindex=1):
        return sp.Heaviside(1 - sp.Abs(self), 0)

    @staticmethod
    def _plain(x):
        return sp.Max(-1, sp.Min(1, x))

    def _eval_rewrite_as_Max(self, x, **kwargs):
        return self._plain(x)


@register_elementwise_function
class xlogy(NNFunction):  # noqa: N801
    """``x*log(y)`` with ``xlogy(0, y) = 0`` for every ``y`` (so ``0*log(0)`` terms vanish).

    Examples
    --------
    >>> import sympy as sp
    >>> from symgrad import nn
    >>> x, y = sp.symbols("x y")
    >>> sp.diff(nn.xlogy(x, y), y), nn.xlogy(0, y)
    (x/y, 0)
    """

    nargs = 2

    @staticmethod
    def _imp_(x, y):
        from scipy.special import xlogy as scipy_xlogy

        return scipy_xlogy(x, y)

    @classmethod
    def eval(cls, x, y):
        if x.is_zero:
            return sp.S.Zero
        return None

    def fdiff(self, argindex=1):
        x, y = self.args
        if argindex == 1:
            return sp.log(y)
        if argindex == 2:
            return x / y
        raise ArgumentIndexError(self, argindex)

    @staticmethod
    def _plain(x, y):
        return sp.Piecewise((0, sp.Eq(x, 0)), (x * sp.log(y), True))

    def _eval_rewrite_as_log(self, x, y, **kwargs):
        return self._plain(x, y)


def tanh(x: sp.Basic) -> sp.Basic:
    """SymPy's ``tanh`` (returned as is for scalars), applied elementwise to matrices.

    Examples
    --------
    >>> import sympy as sp
    >>> from symgrad import nn
    >>> X = sp.MatrixSymbol("X", 4, 3)
    >>> nn.tanh(X)
    tanh(X)
    >>> nn.tanh(X).shape
    (4, 3)
    """
    return broadcast_apply(sp.tanh, x)
