"""SymPy matrix expressions built the way :mod:`symgrad.ir.to_sympy` writes raised graphs.

Small constructors that keep the forms readable as they build them: products that merge scalar
coefficients and drop identities (:func:`_matmul`), sums and Hadamard products that flatten,
broadcasts written as products with ``OneMatrix`` (``1·b``), shapes of IR nodes as SymPy shapes,
and exact, structure-keeping substitution (:func:`replace_exact`), unlike ``xreplace``, which
would let SymPy evaluate what it rebuilds.
"""

from __future__ import annotations

from collections.abc import Mapping

import sympy as sp
from sympy.matrices.expressions.hadamard import HadamardProduct

from .errors import UnsupportedExpressionError

__all__ = ["is_ones", "replace_exact", "shaped_symbol"]


def _shape2(shape: tuple) -> tuple | None:
    """The SymPy shape of an IR shape: ``None`` for a scalar, a 1 x k row for a 1-d array."""
    if len(shape) == 0:
        return None
    if len(shape) == 1:
        return (1, shape[0])
    if len(shape) == 2:
        return tuple(shape)
    if len(shape) == 3:
        # A (T, r, c) value (a scan's sequence) reads as its T steps stacked vertically: the
        # (T·r, c) matrix the generated code reshapes it to for its matrix products.
        return (shape[0] * shape[1], shape[2])
    raise UnsupportedExpressionError(f"cannot raise a {len(shape)}-d value to SymPy")


def shaped_symbol(name: str, shape: tuple) -> sp.Basic:
    """``Symbol(name)`` for a scalar shape, else ``MatrixSymbol(name, rows, cols)``."""
    s2 = _shape2(tuple(shape))
    if s2 is None:
        return sp.Symbol(name)
    return sp.MatrixSymbol(name, *s2)


def _is_matrix(e) -> bool:
    return bool(getattr(e, "is_Matrix", False))


def is_ones(e) -> sp.Expr | None:
    """``c`` if ``e`` is ``c*OneMatrix`` (``OneMatrix`` itself gives 1), else ``None``."""
    if isinstance(e, sp.OneMatrix) or (isinstance(e, sp.Identity) and e.shape == (1, 1)):
        return sp.S.One
    if isinstance(e, sp.ZeroMatrix):
        return sp.S.Zero
    if isinstance(e, sp.MatMul):
        scalars = [a for a in e.args if not _is_matrix(a)]
        mats = [a for a in e.args if _is_matrix(a)]
        if len(mats) == 1 and is_ones(mats[0]) is not None:
            return sp.Mul(*scalars) * is_ones(mats[0])
    return None


def _split_coeff(e) -> tuple[sp.Expr, list]:
    """``(c, [M1, M2, ...])`` with ``e == c*M1*M2*...`` (a non-MatMul is its own factor)."""
    if isinstance(e, sp.MatMul):
        scalars = [a for a in e.args if not _is_matrix(a)]
        return sp.Mul(*scalars), [a for a in e.args if _is_matrix(a)]
    return sp.S.One, [e]


def _ones(c, shape) -> sp.Basic:
    """A constant matrix ``c`` of ``shape``."""
    if c == 0:
        return sp.ZeroMatrix(*shape)
    if c == 1:
        return sp.OneMatrix(*shape)
    return sp.MatMul(c, sp.OneMatrix(*shape))


def _matmul(*factors) -> sp.Basic:
    """A flat ``MatMul`` of matrices (and scalar factors), scalars merged in front."""
    coeff = sp.S.One
    mats: list = []
    for f in factors:
        if _is_matrix(f):
            c, ms = _split_coeff(f)
            coeff = coeff * c
            mats.extend(ms)
        else:
            coeff = coeff * f
    if coeff == 0:
        rows = mats[0].shape[0]
        cols = mats[-1].shape[1]
        return sp.ZeroMatrix(rows, cols)
    if len(mats) == 1 and coeff == 1:
        return mats[0]
    if coeff == 1:
        return sp.MatMul(*mats)
    return sp.MatMul(coeff, *mats)


def _scale(c, m) -> sp.Basic:
    return m if c == 1 else _matmul(c, m)


def _matadd(terms) -> sp.Basic:
    flat: list = []
    for t in terms:
        flat.extend(t.args if isinstance(t, sp.MatAdd) else [t])
    return flat[0] if len(flat) == 1 else sp.MatAdd(*flat)


def _hadamard(factors) -> sp.Basic:
    flat: list = []
    for f in factors:
        flat.extend(f.args if isinstance(f, HadamardProduct) else [f])
    return flat[0] if len(flat) == 1 else HadamardProduct(*flat)


def _broadcast(e, src: tuple | None, dst: tuple) -> sp.Basic:
    """``e`` (of SymPy shape ``src``, ``None`` for a scalar) broadcast to the matrix ``dst``."""
    if src is None:
        return _ones(e, dst) if not _is_matrix(e) else e
    c = is_ones(e)
    if c is not None:
        return _ones(c, dst)
    if tuple(src) == tuple(dst):
        return e
    rows, cols = dst
    left = [sp.OneMatrix(rows, 1)] if src[0] == 1 and rows != 1 else []
    right = [sp.OneMatrix(1, cols)] if src[1] == 1 and cols != 1 else []
    out = _matmul(*left, e, *right)
    if tuple(out.shape) != tuple(dst):
        # Broadcasting one step over stacked steps has no matrix-product form.
        raise UnsupportedExpressionError(f"cannot raise a broadcast from {src} to {dst}")
    return out


def _rebuild(expr: sp.Basic, args: list) -> sp.Basic:
    """``expr`` with new ``args``: arithmetic is evaluated (flattening, number folding), function
    applications are not (so ``log(exp(x))`` stays what the graph computes)."""
    if isinstance(expr, (sp.Add, sp.Mul, sp.Pow)):
        return expr.func(*args)
    try:
        return expr.func(*args, evaluate=False)
    except TypeError:
        return expr.func(*args)


def _substitute(body: sp.Basic, leaves: Mapping) -> sp.Basic:
    """``body`` with ``leaves`` substituted, rebuilt with :func:`_rebuild` (bodies are small)."""
    if body in leaves:
        return leaves[body]
    if not body.args or not body.has(*leaves):
        return body
    return _rebuild(body, [_substitute(a, leaves) for a in body.args])


def replace_exact(expr: sp.Basic, mapping: Mapping) -> sp.Basic:
    """``expr`` with each subexpression that is a key of ``mapping`` replaced by its value.

    Unlike ``xreplace``, function applications on the way are rebuilt unevaluated, so the
    structure of a raised expression survives (only ``Add``/``Mul``/``Pow`` re-evaluate).
    """
    return _substitute(expr, mapping) if mapping else expr
