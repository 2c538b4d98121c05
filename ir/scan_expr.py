"""SymPy spellings of a recurrence: sequence inputs and a ``Scan`` over time steps.

A scan is written with per-step symbols: ``x_t`` (a ``MatrixSymbol`` standing for one time step of
a :class:`SequenceSymbol`) and ``h`` (the previous state). ``ScanSum`` is the sum over time of a
per-step scalar (a loss) and ``ScanFinal`` the last state; both are ordinary SymPy expressions, so
they combine with the rest of a model and are cached by ``srepr`` like any other expression.
"""

from __future__ import annotations

import sympy as sp
from sympy.core.symbol import Str
from sympy.matrices.expressions.matexpr import MatrixExpr


class SequenceSymbol(sp.Basic):
    """A sequence input of shape ``(T, rows, cols)``: T time steps of a ``rows x cols`` matrix.

    Its length ``T`` and sizes may be symbols bound from the array at call time.
    """

    def __new__(cls, name, length, rows, cols):
        name = name if isinstance(name, Str) else Str(name)
        return super().__new__(cls, name, *(sp.sympify(d) for d in (length, rows, cols)))

    @property
    def name(self) -> str:
        return self.args[0].name

    @property
    def shape(self) -> tuple:
        return tuple(self.args[1:])

    def _sympystr(self, printer) -> str:
        return self.name


class Scan(sp.Basic):
    """A recurrence over the time axis of its sequences.

    Arguments (all SymPy Tuples): ``sequences`` of ``(step_symbol, SequenceSymbol)``, ``states``
    of ``(previous_symbol, new_expression, initial_expression)``, ``outputs`` of per-step scalar
    expressions, and ``reverse`` (run from the last step to the first).
    """

    def __new__(cls, sequences, states, outputs, reverse=False):
        seqs = sp.Tuple(*[sp.Tuple(s, q) for s, q in sequences])
        sts = sp.Tuple(*[sp.Tuple(p, sp.sympify(n), sp.sympify(i)) for p, n, i in states])
        outs = sp.Tuple(*[sp.sympify(o) for o in outputs])
        return super().__new__(cls, seqs, sts, outs, sp.true if reverse else sp.false)

    @property
    def sequences(self):
        return self.args[0]

    @property
    def states(self):
        return self.args[1]

    @property
    def outputs(self):
        return self.args[2]

    @property
    def reverse(self) -> bool:
        return bool(self.args[3])

    def bound_symbols_(self) -> set:
        """Per-step symbols: they are not inputs of the compiled function."""
        return {s for s, _ in self.sequences} | {p for p, _, _ in self.states}

    def total(self, k: int = 0) -> ScanSum:
        """Sum over time steps of per-step output ``k``."""
        return ScanSum(self, k)

    def final(self, j: int = 0):
        """The state ``j`` after the last step."""
        return ScanFinal(self, j)


class ScanSum(sp.Expr):
    """``Σ_t outputs[k]`` of a :class:`Scan`."""

    is_commutative = True

    def __new__(cls, scan: Scan, k: int):
        return super().__new__(cls, scan, sp.Integer(k))

    def _sympystr(self, printer) -> str:
        return f"scan_sum[{self.args[1]}]"


class ScanFinal(MatrixExpr):
    """The last value of state ``j`` of a :class:`Scan` (a matrix)."""

    def __new__(cls, scan: Scan, j: int):
        return super().__new__(cls, scan, sp.Integer(j))

    @property
    def shape(self):
        scan, j = self.args
        return scan.states[int(j)][0].shape

    def _sympystr(self, printer) -> str:
        return f"scan_final[{self.args[1]}]"


def scan_bound_symbols(exprs) -> set:
    """All per-step symbols of the scans inside ``exprs``."""
    out: set = set()
    for e in exprs:
        for s in e.atoms(Scan):
            out |= s.bound_symbols_()
    return out
