"""The fused row ops (log-sum-exp, log-softmax, softmax along the last axis).

Their values and first derivatives are covered with the rest of the vocabulary in
``test_nn_losses.py`` (axis 1 takes the fused ops, axis 0 the composed form). Here: which form
each axis gets, and second derivatives through the ops' VJPs (each VJP is built from ops that are
differentiable again), against SymPy's Hessian of the same formula.
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st
from sympy import MatrixSymbol
from sympy.matrices.expressions.hadamard import HadamardProduct

import symgrad as sg
from symgrad import nn
from symgrad.compiler import passes
from symgrad.compiler.lower import Lowerer
from symgrad.ir.printing import listing

n = sp.Symbol("n")
Z = MatrixSymbol("Z", n, 4)
Y = MatrixSymbol("Y", n, 4)


def _optimized_listing(expr) -> str:
    lowerer = Lowerer({n})
    return listing(passes.optimize(lowerer.lower_all([expr])))


def test_cross_entropy_uses_one_fused_log_softmax():
    text = _optimized_listing(nn.cross_entropy(Z, Y))
    assert text.count("row_log_softmax(") == 1
    assert "max_shift(" not in text and " exp(" not in text and " log(" not in text


def test_other_axes_keep_the_composed_form():
    text = _optimized_listing(nn.sum(nn.log_softmax(Z, axis=0)))
    assert "max_shift(" in text and "row_" not in text


# -- second order -------------------------------------------------------------------------------
a, b, c = sp.symbols("a b c")
ROW = sp.Matrix([[a, 2 * b - a, c * a]])
WEIGHTS = sp.Matrix([[0.5, -1.0, 2.0]])
EXPLICIT_LSE = sp.log(sum(sp.exp(v) for v in ROW))
EXPLICIT_SOFTMAX = [sp.exp(v) / sum(sp.exp(u) for u in ROW) for v in ROW]
CASES = {
    "logsumexp": (
        nn.sum(nn.logsumexp(ROW, axis=1)),
        EXPLICIT_LSE,
    ),
    "log_softmax": (
        nn.sum(HadamardProduct(WEIGHTS, nn.log_softmax(ROW))),
        sum(w * (v - EXPLICIT_LSE) for w, v in zip(WEIGHTS, ROW)),
    ),
    "softmax": (
        nn.sum(HadamardProduct(WEIGHTS, nn.softmax(ROW))),
        sum(w * p for w, p in zip(WEIGHTS, EXPLICIT_SOFTMAX)),
    ),
}
HESSIANS = {
    name: (sg.hessian(ours, [a, b, c]), sp.lambdify([a, b, c], sp.hessian(plain, [a, b, c])))
    for name, (ours, plain) in CASES.items()
}
values = st.floats(-3.0, 3.0, allow_nan=False)


@given(st.sampled_from(sorted(CASES)), values, values, values)
def test_hessians_through_the_row_ops_match_sympy(name, x, y, z):
    ours, want = HESSIANS[name]
    got = ours(a=x, b=y, c=z)
    np.testing.assert_allclose(got, np.array(want(x, y, z), dtype=float), rtol=1e-9, atol=1e-10)


def test_the_row_ops_are_in_the_hessian_graphs():
    for ours, _ in CASES.values():
        text = _optimized_listing(ours)
        assert "row_" in text and "max_shift(" not in text
