"""Losses and penalties: scalar SymPy expressions built from the nn vocabulary.

Each loss returns a plain composition of :mod:`~symgrad.nn.reductions` and
:mod:`~symgrad.nn.activations` (so it prints as the formula it is) in its stable spelling:
cross-entropy goes through ``log_softmax``, binary cross-entropy through ``softplus``. Conventions
follow PyTorch: for ``(n, k)`` matrices with one example per row, ``cross_entropy``,
``cross_entropy_from_probs`` and ``kl_divergence`` sum over classes and average over the ``n``
examples; ``binary_cross_entropy`` and ``mse`` average over all entries; ``hinge``, ``l1`` and
``l2`` sum. Scalar arguments give the per-example scalar formula.
"""

from __future__ import annotations

import sympy as sp
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.matrices.expressions.special import OneMatrix

from ..ir.errors import ShapeError
from .activations import relu, softplus, xlogy
from .broadcast import broadcast_apply, is_matrix
from .reductions import LogSoftmax, Softmax, log_softmax, mean
from .reductions import sum as nn_sum

__all__ = [
    "binary_cross_entropy", "cross_entropy", "cross_entropy_from_probs", "hinge",
    "kl_divergence", "l1", "l2", "mse",
]  # fmt: skip


def _pair(a, b, what: str) -> tuple:
    a, b = sp.sympify(a), sp.sympify(b)
    if is_matrix(a) != is_matrix(b) or (is_matrix(a) and a.shape != b.shape):
        shapes = [tuple(x.shape) if is_matrix(x) else "scalar" for x in (a, b)]
        raise ShapeError(f"{what} needs two arguments of the same shape, got {shapes}")
    return a, b


def _batch_mean(rows_total, X) -> sp.Expr:
    """Sum over everything, divided by the number of rows (examples) of ``X``."""
    return nn_sum(rows_total) / X.shape[0]


def _log_probs(P):
    """``log(P)``, or the stable ``log_softmax(Z)`` when ``P`` is ``softmax(Z)``."""
    if isinstance(P, Softmax):
        return LogSoftmax(P.arg, P.axis)
    return broadcast_apply(sp.log, P)


def cross_entropy(logits: sp.Basic, targets: sp.Basic) -> sp.Expr:
    """Softmax cross-entropy from logits, ``-sum(Y ∘ log_softmax(Z)) / n``.

    ``logits`` ``Z`` and ``targets`` ``Y`` are ``(n, k)``: one example per row, ``Y`` one-hot or a
    probability row. The compiled gradient with respect to ``Z`` is ``(softmax(Z) - Y) / n``
    (for rows of ``Y`` that sum to 1), finite for logits of any size.

    Examples
    --------
    >>> import numpy as np, sympy as sp, symgrad as sg
    >>> from symgrad import nn
    >>> n = sp.Symbol("n")
    >>> Z, Y = sp.MatrixSymbol("Z", n, 3), sp.MatrixSymbol("Y", n, 3)
    >>> loss = nn.cross_entropy(Z, Y)
    >>> loss
    -sum(HadamardProduct(Y, log_softmax(Z)))/n
    >>> f = sg.compile(loss, wrt=[Z])
    >>> z, y = np.array([[1e4, 0.0, -1e4]]), np.array([[0.0, 1.0, 0.0]])
    >>> value, (grad,) = f.value_and_grad(Z=z, Y=y)
    >>> float(value), grad.tolist()
    (10000.0, [[1.0, -1.0, 0.0]])
    """
    Z, Y = _pair(logits, targets, "cross_entropy")
    if not is_matrix(Z):
        raise ShapeError("cross_entropy needs (n, k) matrices of logits and targets")
    return -_batch_mean(HadamardProduct(Y, log_softmax(Z)), Z)


def cross_entropy_from_probs(probs: sp.Basic, targets: sp.Basic) -> sp.Expr:
    """Cross-entropy of predicted probabilities ``P``, ``-sum(Y ∘ log(P)) / n``.

    If ``P`` is ``softmax(Z)`` the stable ``log_softmax(Z)`` is used instead of ``log(P)``.

    Examples
    --------
    >>> import sympy as sp
    >>> from symgrad import nn
    >>> P, Y = sp.MatrixSymbol("P", 4, 3), sp.MatrixSymbol("Y", 4, 3)
    >>> nn.cross_entropy_from_probs(P, Y)
    -sum(HadamardProduct(Y, log(P)))/4
    """
    P, Y = _pair(probs, targets, "cross_entropy_from_probs")
    if not is_matrix(P):
        return -Y * sp.log(P)
    return -_batch_mean(HadamardProduct(Y, _log_probs(P)), P)


def binary_cross_entropy(logits: sp.Basic, targets: sp.Basic) -> sp.Expr:
    """Binary cross-entropy from logits, ``mean(softplus(z) - y z)``.

    This equals ``-mean(y log(sigmoid(z)) + (1 - y) log(1 - sigmoid(z)))`` without ever forming
    ``log(0)``; its gradient is ``(sigmoid(z) - y) / count``. Matrices are averaged over all
    entries (PyTorch's ``BCEWithLogitsLoss``); scalars give the per-example formula.

    Examples
    --------
    >>> import sympy as sp
    >>> from symgrad import nn
    >>> z, y = sp.symbols("z y")
    >>> nn.binary_cross_entropy(z, y)
    -y*z + softplus(z)
    >>> sp.diff(nn.binary_cross_entropy(z, y), z)
    -y + sigmoid(z)
    """
    Z, Y = _pair(logits, targets, "binary_cross_entropy")
    if not is_matrix(Z):
        return softplus(Z) - Y * Z
    return mean(softplus(Z) - HadamardProduct(Y, Z))


def mse(predictions: sp.Basic, targets: sp.Basic) -> sp.Expr:
    """Mean squared error, averaged over all entries (a scalar pair gives ``(p - y)**2``).

    Examples
    --------
    >>> import sympy as sp
    >>> from symgrad import nn
    >>> P, Y = sp.MatrixSymbol("P", 4, 2), sp.MatrixSymbol("Y", 4, 2)
    >>> nn.mse(P, Y)
    sum(HadamardPower(P - Y, 2))/8
    """
    P, Y = _pair(predictions, targets, "mse")
    if not is_matrix(P):
        return (P - Y) ** 2
    return mean(HadamardPower(P - Y, 2))


def kl_divergence(P: sp.Basic, Q: sp.Basic) -> sp.Expr:
    """``KL(P || Q) = sum(P ∘ (log P - log Q)) / n`` for rows of probabilities (PyTorch's
    ``batchmean``); terms with ``P = 0`` are 0. ``Q = softmax(Z)`` uses ``log_softmax(Z)``.

    Examples
    --------
    >>> import sympy as sp
    >>> from symgrad import nn
    >>> p, q = sp.symbols("p q")
    >>> nn.kl_divergence(p, q)
    xlogy(p, p) - xlogy(p, q)
    """
    P, Q = _pair(P, Q, "kl_divergence")
    if not is_matrix(P):
        return xlogy(P, P) - xlogy(P, Q)
    if isinstance(Q, Softmax):
        cross = HadamardProduct(P, _log_probs(Q))
    else:
        cross = xlogy(P, Q)
    return _batch_mean(xlogy(P, P) - cross, P)


def hinge(s: sp.Basic, s_c: sp.Basic, margin: sp.Basic | float = 1) -> sp.Expr:
    """Max-margin loss ``max(0, margin - s + s_c)``; matrices give the sum over entries.

    ``s`` is the score that should win (e.g. of the true window) and ``s_c`` the competing
    score (of a corrupted one). The kink has derivative 0, like ``relu``.

    Examples
    --------
    >>> import sympy as sp
    >>> from symgrad import nn
    >>> s, s_c = sp.symbols("s s_c")
    >>> nn.hinge(s, s_c)
    relu(-s + s_c + 1)
    """
    s, s_c = _pair(s, s_c, "hinge")
    if not is_matrix(s):
        return relu(margin - s + s_c)
    return nn_sum(relu(margin * OneMatrix(*s.shape) - s + s_c))


def l1(*weights: sp.Basic) -> sp.Expr:
    """L1 penalty: the sum of ``|w|`` over every entry of every argument.

    Examples
    --------
    >>> import sympy as sp
    >>> from symgrad import nn
    >>> nn.l1(sp.MatrixSymbol("W", 3, 2), sp.Symbol("b"))
    Abs(b) + sum(Abs(W))
    """
    return sp.Add(*(nn_sum(broadcast_apply(sp.Abs, w)) for w in weights))


def l2(*weights: sp.Basic) -> sp.Expr:
    """L2 penalty: the sum of ``w**2`` over every entry of every argument (the squared
    Frobenius norm). Its gradient is ``2 w``; add ``lam/2 * l2(W)`` for weight decay ``lam``.

    Examples
    --------
    >>> import sympy as sp
    >>> from symgrad import nn
    >>> nn.l2(sp.MatrixSymbol("W", 3, 2))
    sum(HadamardPower(W, 2))
    """
    total = []
    for w in weights:
        w = sp.sympify(w)
        total.append(nn_sum(HadamardPower(w, 2)) if is_matrix(w) else w**2)
    return sp.Add(*total)
