"""Naming the formulas that recur across the equations of :mod:`symgrad.explain`.

The graph never computes a node twice, but a fused elementwise body can contain a formula that
another node computes too (``Heaviside(x - y)`` next to ``z1 = x - y``). :func:`share_repeated`
gives such a formula one name; :func:`is_cheap` says which formulas are too small to be worth one
(atoms, constants, ``Wᵀ``, ``1·b``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from .explain_equations import Equation
from .explain_loop import Loop
from .explain_print import coeff as _coeff
from .ir.to_sympy import replace_exact, shaped_symbol

__all__ = ["is_cheap", "share_repeated"]


def is_cheap(expr: sp.Basic, dims: Iterable = ()) -> bool:
    """Whether ``expr`` is too small to deserve a name when it recurs.

    Atoms, constants (no symbols but the dimensions ``dims``), and one-step views of an atom:
    ``Wᵀ``, ``-x``, ``A[i, j]``, and a broadcast such as ``1·b``. Conditions (booleans) and the
    insides of ``Lambda`` bodies are not expressions of the graph and are never named either.
    """
    if not isinstance(expr, sp.Expr) or isinstance(expr, sp.Lambda):
        return True
    if expr.is_Atom or isinstance(
        expr, (sp.MatrixSymbol, sp.OneMatrix, sp.ZeroMatrix, sp.Identity)
    ):
        return True
    dims = dims if isinstance(dims, (set, frozenset)) else set(dims)
    if expr.free_symbols <= dims and not expr.atoms(sp.MatrixSymbol):
        return True
    if isinstance(expr, (sp.Transpose, MatrixElement)):
        return _atomic_operand(expr.args[0])
    if isinstance(expr, (sp.Mul, sp.MatMul)):
        c, rest = _coeff(expr) if isinstance(expr, sp.MatMul) else expr.as_coeff_Mul()
        rest = rest if isinstance(rest, list) else [rest]
        others = [m for m in rest if not isinstance(m, sp.OneMatrix)]
        return c in (1, -1) and len(others) == 1 and _atomic_operand(others[0])
    return False


def _atomic_operand(e) -> bool:
    return e.is_Atom or isinstance(e, sp.MatrixSymbol)


def _subexpressions(expr: sp.Basic, dims) -> Iterator[sp.Basic]:
    """Distinct non-cheap subexpressions of ``expr`` (``expr`` included), not inside Lambdas."""
    seen: set = set()
    stack = [expr]
    while stack:
        e = stack.pop()
        if e in seen or isinstance(e, sp.Lambda):
            continue
        seen.add(e)
        if not is_cheap(e, dims):
            yield e
        stack.extend(e.args)


def share_repeated(
    equations: list[Equation], fresh: Callable[[], str], dims: Iterable = ()
) -> list[Equation]:
    """Name every subexpression that occurs in two or more equations.

    The graph never computes one node twice, but a fused elementwise body can contain a formula
    that another node computes too (``Heaviside(x - y)`` next to ``z1 = x - y``). Such a formula
    is replaced by the earlier equation's name when it is that equation's whole right-hand side,
    else by a new name ``fresh()`` defined just before its first use. Larger formulas go first,
    so a name covers as much as it can.
    """
    equations = list(equations)
    dims = frozenset(dims)
    where: dict[sp.Basic, list[int]] = {}
    for k, e in enumerate(equations):
        if isinstance(e, Loop):
            continue  # a loop's body is in step names; outer formulas it reads are named
        for sub in _subexpressions(e.expr, dims):
            where.setdefault(sub, []).append(k)
    candidates = [sub for sub, ks in where.items() if len(ks) > 1]
    if not candidates:
        return equations
    candidates.sort(key=lambda c: -sp.count_ops(c, visual=False) - len(c.args))
    for cand in candidates:
        users = [k for k, e in enumerate(equations) if not isinstance(e, Loop) and e.expr.has(cand)]
        if len(users) < 2:
            continue  # an earlier, larger name already covers it
        first = users[0]
        if equations[first].expr == cand:
            # The formula is an equation's right-hand side: later uses read that name.
            symbol = equations[first].symbol
            rest = users[1:]
        else:
            symbol = shaped_symbol(fresh(), cand.shape if cand.is_Matrix else ())
            definition = Equation(symbol, cand, equations[first].section, None)
            equations.insert(first, definition)
            rest = [k + 1 for k in users]
        for k in rest:
            e = equations[k]
            if e.expr == cand:
                new = symbol  # the same formula twice: the later one is an alias
            else:
                new = replace_exact(e.expr, {cand: symbol})
            equations[k] = Equation(e.symbol, new, e.section, e.node)
    return equations
