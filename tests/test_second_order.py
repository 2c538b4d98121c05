"""Second order: the gradient graph is differentiable (Hessians, Hessian-vector products)."""

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

import symgrad as sg

x, y, z = sp.symbols("x y z")
EXPR = sp.sin(x) * sp.exp(y * z) + x**3 * y - sp.log(1 + z**2) + sp.tanh(x * y)
WRT = [x, y, z]
H = sg.hessian(EXPR, WRT)
SYMPY_H = sp.lambdify(WRT, sp.hessian(EXPR, WRT), "numpy")

values = st.floats(-1.5, 1.5, allow_nan=False)


@given(values, values, values)
def test_hessian_matches_sympy(a, b, c):
    got = H(x=a, y=b, z=c)
    want = np.array(SYMPY_H(a, b, c), dtype=float)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@given(values, values, values, st.lists(values, min_size=3, max_size=3))
def test_hvp_matches_hessian_times_vector(a, b, c, v):
    got = H.hvp(v, x=a, y=b, z=c)
    want = np.array(SYMPY_H(a, b, c), dtype=float) @ np.array(v)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_hessian_rejects_matrix_symbols():
    W = sp.MatrixSymbol("W", 2, 2)
    with pytest.raises(sg.ShapeError, match="scalar symbols"):
        sg.hessian(sp.Trace(W), [W])
