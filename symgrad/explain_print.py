"""Printers of raised equations in the backprop lectures' notation (text and LaTeX).

``·`` is the matrix product, ``∘`` the Hadamard product, ``ᵀ`` a transpose, ``1`` a matrix of
ones (``1ᵀ`` a row) and ``tanh(M)`` a function applied entry by entry; see
:mod:`symgrad.explain`.
"""

from __future__ import annotations

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.matrices.expressions.matexpr import MatrixElement
from sympy.printing.latex import LatexPrinter as _SympyLatexPrinter
from sympy.printing.str import StrPrinter

from .ir.to_sympy import ElementwiseMap, OpCall, is_ones

__all__ = ["LatexPrinter", "TextPrinter", "coeff"]


# -- printers -----------------------------------------------------------------------------------
def _negative(term) -> bool:
    c = coeff(term)[0]
    return bool(c.could_extract_minus_sign())


def coeff(term) -> tuple[sp.Expr, list]:
    if isinstance(term, sp.MatMul):
        scalars = [a for a in term.args if not getattr(a, "is_Matrix", False)]
        return sp.Mul(*scalars), [a for a in term.args if getattr(a, "is_Matrix", False)]
    return sp.S.One, [term]


def _ordered_terms(expr) -> list:
    """Terms of a ``MatAdd`` in the lectures' reading order (addition commutes; the printed order
    is cosmetic): constants, then products, then broadcasts, then subtracted terms, as in
    ``1 - h∘h`` and ``X·W1 + 1·b1 - Y``."""

    def rank(term) -> int:
        if _negative(term):
            return 3
        if is_ones(term) is not None:
            return 0
        mats = coeff(term)[1]
        return 2 if len(mats) > 1 and isinstance(mats[0], sp.OneMatrix) else 1

    return sorted(expr.args, key=rank)  # stable: the graph's order within a rank


def _ordered_factors(expr) -> list:
    """Factors of a ``HadamardProduct``, matrix products first: ``(δ2·W2ᵀ) ∘ (1 - h1∘h1)``."""
    return sorted(expr.args, key=lambda f: 0 if isinstance(f, sp.MatMul) else 1)


def _is_atom_like(e) -> bool:
    return (
        isinstance(e, (sp.MatrixSymbol, sp.Symbol, sp.OneMatrix, sp.ZeroMatrix, sp.Identity))
        or (isinstance(e, sp.Transpose) and _is_atom_like(e.arg))
        or isinstance(e, (ElementwiseApplyFunction, ElementwiseMap, OpCall, sp.Trace))
    )


def _sum_operand(expr: MatrixElement):
    """``M`` if ``expr`` is ``(1ᵀ·M·1)[0, 0]``, the sum of all entries of ``M``."""
    parent = expr.parent
    if not isinstance(parent, sp.MatMul) or (expr.i, expr.j) != (0, 0):
        return None
    c, mats = coeff(parent)
    if len(mats) < 3 or c != 1:
        return None
    first, last = mats[0], mats[-1]
    if isinstance(first, sp.OneMatrix) and isinstance(last, sp.OneMatrix):
        if first.shape[0] == 1 and last.shape[1] == 1:
            inner = mats[1:-1]
            return inner[0] if len(inner) == 1 else sp.MatMul(*inner)
    return None


def _lambda_parts(function, operands):
    if isinstance(function, sp.Lambda):
        return function.variables, function.expr
    d = sp.Dummy("x")
    return (d,), function(d)


class _ElementwisePrinting:
    """Elementwise maps in both printers: each printer's ``_apply`` writes ``f(A)``."""

    def _print_ElementwiseApplyFunction(self, expr):
        variables, body = _lambda_parts(expr.function, [expr.expr])
        return self._apply(variables, body, [expr.expr])

    def _print_ElementwiseMap(self, expr):
        return self._apply(expr.function.variables, expr.function.expr, expr.matrices)


class TextPrinter(_ElementwisePrinting, StrPrinter):
    """Plain text in the lectures' notation: ``·`` matrix product, ``∘`` Hadamard product,
    ``ᵀ`` transpose, ``1`` a matrix of ones (``1ᵀ`` a row), ``tanh(M)`` entry by entry."""

    _default_settings = {**StrPrinter._default_settings, "display": {}}

    def _print_Symbol(self, expr):
        return self._settings["display"].get(expr, expr.name)

    _print_MatrixSymbol = _print_Symbol

    def _print_Dummy(self, expr):
        return expr.name

    def parenthesize(self, item, level, strict=False):
        if _spaced(item):  # (Σ_t ℓ_t)/T, not Σ_t ℓ_t/T
            return f"({self._print(item)})"
        return super().parenthesize(item, level, strict)

    def _wrap(self, e, strong: bool = False) -> str:
        """``e`` printed, parenthesised unless it is atom-like (``strong``: also products)."""
        text = self._print(e)
        if _spaced(e):
            return f"({text})"
        if _is_atom_like(e):
            return text
        if isinstance(e, (sp.MatAdd, HadamardProduct)) or strong:
            return f"({text})"
        if isinstance(e, sp.MatMul) and coeff(e)[0] != 1:
            return f"({text})"
        return text

    def _withcoeff(self, c, body: str) -> str:
        if c == 1:
            return body
        if c == -1:
            return f"-{body}"
        num, den = sp.fraction(c)
        sign = ""
        if num.could_extract_minus_sign():
            sign, num = "-", -num
        text = body if num == 1 else f"{self.parenthesize(num, 50)}·{body}"
        if den != 1:
            den_text = self._print(den)
            if not (den.is_Atom or den.is_Function):
                den_text = f"({den_text})"
            text = f"{text}/{den_text}"
        return sign + text

    def _print_MatMul(self, expr):
        c, mats = coeff(expr)
        return self._withcoeff(c, "·".join(self._wrap(m) for m in mats))

    def _print_MatAdd(self, expr):
        out = ""
        for k, term in enumerate(_ordered_terms(expr)):
            if _negative(term):
                text = self._print(-term if not isinstance(term, sp.MatMul) else _negate(term))
                out += f" - {self._wrap_term(text)}" if k else f"-{self._wrap_term(text)}"
            else:
                out += f" + {self._print(term)}" if k else self._print(term)
        return out

    @staticmethod
    def _wrap_term(text: str) -> str:
        return f"({text})" if " + " in text or " - " in text else text

    def _print_HadamardProduct(self, expr):
        return _hadamard(self, expr, " ∘ ", " ⊘ ")

    def _print_HadamardPower(self, expr):
        base = self._wrap(expr.base, strong=True)
        exp = self._print(expr.exp)
        if not (expr.exp.is_Integer and expr.exp > 0) and not expr.exp.is_Symbol:
            exp = f"({exp})"
        return f"{base}^∘{exp}"

    def _print_Transpose(self, expr):
        arg = expr.arg
        text = self._print(arg)
        if not isinstance(arg, (sp.MatrixSymbol, sp.OneMatrix, sp.Identity)):
            text = f"({text})"
        return f"{text}ᵀ"

    def _print_OneMatrix(self, expr):
        rows, cols = expr.shape
        return "1ᵀ" if rows == 1 and cols != 1 else "1"

    def _print_ZeroMatrix(self, expr):
        return "0"

    def _print_MatrixBase(self, expr):
        rows = ", ".join(
            "[" + ", ".join(self._print(v) for v in row) + "]" for row in expr.tolist()
        )
        return f"[{rows}]"

    def _print_Identity(self, expr):
        return "I"

    def _print_Trace(self, expr):
        return f"tr({self._print(expr.arg)})"

    def _print_OpCall(self, expr):
        args = ", ".join(self._print(m) for m in expr.operands)
        return (
            f"{expr.op_name}({args}; {expr.attrs_text})"
            if expr.attrs_text
            else f"{expr.op_name}({args})"
        )

    def _print_MatrixElement(self, expr):
        inner = _sum_operand(expr)
        if inner is not None:
            return f"sum({self._print(inner)})"
        parent = self._print(expr.parent)
        if not isinstance(expr.parent, sp.MatrixSymbol):
            parent = f"({parent})"
        return f"{parent}[{self._print(expr.i)}, {self._print(expr.j)}]"

    def _apply(self, variables, body, operands) -> str:
        """``f(A)`` entry by entry: the body with the operands written in place when each
        variable occurs once, else ``(x ↦ body)(A)``."""
        if all(body.count(v) == 1 for v in variables):
            marks = {v: sp.Symbol(f"\x00{k}\x00") for k, v in enumerate(variables)}
            text = self._print(body.xreplace(marks))
            for k, (v, m) in enumerate(zip(variables, operands)):
                arg = self._print(m)
                if not _direct_argument(body, v) and not _is_atom_like(m):
                    arg = f"({arg})"
                text = text.replace(f"\x00{k}\x00", arg)
            return text
        names = ", ".join(self._print(v) for v in variables)
        args = ", ".join(self._print(m) for m in operands)
        return f"({names} ↦ {self._print(body)})({args})"


def _spaced(e) -> bool:
    """A name with a space (a loop's sum ``Σ_t ℓ_t``) reads as one value only in parentheses."""
    return isinstance(e, (sp.Symbol, sp.MatrixSymbol)) and " " in e.name


def _negate(term: sp.MatMul):
    c, mats = coeff(term)
    c = -c
    if c == 1:
        return mats[0] if len(mats) == 1 else sp.MatMul(*mats)
    return sp.MatMul(c, *mats)


def _direct_argument(body: sp.Basic, var: sp.Basic) -> bool:
    """Whether ``var`` only occurs as a whole argument of function calls in ``body``."""
    if body == var:
        return True
    for sub in sp.preorder_traversal(body):
        if var in sub.args and not isinstance(sub, sp.core.function.Application):
            return False
    return True


class LatexPrinter(_ElementwisePrinting, _SympyLatexPrinter):
    """SymPy's LaTeX with the same conventions as the text form (``\\mathbf{1}`` for ones,
    ``\\tanh(M)`` entry by entry, ``1 - h∘h`` term order)."""

    def _print_Dummy(self, expr):
        return expr.name

    def _wrap(self, e, strong: bool = False) -> str:
        text = self._print(e)
        if _is_atom_like(e):
            return text
        if isinstance(e, (sp.MatAdd, HadamardProduct)) or strong:
            return f"\\left({text}\\right)"
        return text

    def _print_MatMul(self, expr):
        c, mats = coeff(expr)
        body = " ".join(self._wrap(m) for m in mats)
        if c == 1:
            return body
        if c == -1:
            return f"- {body}"
        sign = ""
        if c.could_extract_minus_sign():
            sign, c = "- ", -c
        factor = self._print(c)
        if isinstance(c, sp.Add):
            factor = f"\\left({factor}\\right)"
        return f"{sign}{factor} {body}"

    def _print_MatAdd(self, expr):
        out = ""
        for k, term in enumerate(_ordered_terms(expr)):
            if _negative(term):
                text = self._print(_negate(term) if isinstance(term, sp.MatMul) else -term)
                if isinstance(term, sp.MatAdd):
                    text = f"\\left({text}\\right)"
                out += f" - {text}" if k else f"- {text}"
            else:
                out += f" + {self._print(term)}" if k else self._print(term)
        return out

    def _print_HadamardProduct(self, expr):
        return _hadamard(self, expr, " \\circ ", " \\oslash ")

    def _print_OneMatrix(self, expr):
        rows, cols = expr.shape
        return "\\mathbf{1}^{T}" if rows == 1 and cols != 1 else "\\mathbf{1}"

    def _print_OpCall(self, expr):
        name = expr.op_name.replace("_", "\\_")
        args = ", ".join(self._print(m) for m in expr.operands)
        attrs = expr.attrs_text.replace("_", "\\_")
        inner = f"{args}; \\text{{{attrs}}}" if attrs else args
        return f"\\operatorname{{{name}}}\\left({inner}\\right)"

    def _print_MatrixElement(self, expr):
        inner = _sum_operand(expr)
        if inner is not None:
            return f"\\operatorname{{sum}}\\left({self._print(inner)}\\right)"
        return super()._print_MatrixElement(expr)

    def _apply(self, variables, body, operands) -> str:
        if all(body.count(v) == 1 for v in variables):
            tokens = [f"ZQX{chr(65 + k)}" for k in range(len(variables))]
            marks = {v: sp.Symbol(t) for v, t in zip(variables, tokens)}
            text = self._print(body.xreplace(marks))
            for t, v, m in zip(tokens, variables, operands):
                arg = self._print(m)
                if not _direct_argument(body, v) and not _is_atom_like(m):
                    arg = f"\\left({arg}\\right)"
                text = text.replace(t, arg)
            return text
        names = ", ".join(self._print(v) for v in variables)
        args = ", ".join(self._print(m) for m in operands)
        return f"\\left({names} \\mapsto {self._print(body)}\\right)\\left({args}\\right)"


def _hadamard(printer, expr, times: str, divide: str) -> str:
    """A Hadamard product with its ``∘ X^(-1)`` factors written as divisions."""
    nums, dens = [], []
    for f in _ordered_factors(expr):
        if isinstance(f, HadamardPower) and f.exp == -1:
            dens.append(printer._wrap(f.base, strong=True))
        else:
            nums.append(printer._wrap(f, strong=True))
    text = times.join(nums) if nums else "1"
    return text + "".join(f"{divide}{d}" for d in dens)
