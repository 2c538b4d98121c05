"""symgrad.nn activations: SymPy behaviour, compiled values and gradients, stability, kinks.

Compiled graphs (3, each built once at module scope; hypothesis varies only the values):

* ``SCALAR64`` / ``SCALAR32``: every scalar activation on its own symbol, summed (so each
  partial derivative is that activation's derivative), with the activations as auxiliary outputs;
* ``MATRIX64``: every activation applied to its own ``(n, 3)`` matrix, weighted by a matrix ``G``
  and summed, including ``prelu`` with a ``(1, 3)`` slope row and ``sigmoid(X*W)``.

References are independent NumPy/SciPy formulas; gradients are also checked against central
finite differences of the compiled function (``symgrad.testing.check_grad``), away from kinks.
Forward mode is checked on the scalar graph only: compiling the ``jvp`` of the big matrix graph
would double this file's run time and exercises the same elementwise derivatives.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.special import expit
from scipy.special import xlogy as np_xlogy
from sympy.matrices.expressions.hadamard import HadamardProduct

import symgrad as sg
from symgrad import nn
from symgrad.testing import check_grad

#: Drawing a dozen arrays per example can be slow on a busy machine; that is not a bug.
SLOW_DRAWS = [HealthCheck.too_slow]

# ------------------------------------------------------------------------------------------------
# References: value and derivative of each one-argument activation.

REFERENCE = {
    "sigmoid": (nn.sigmoid, expit, lambda v: expit(v) * expit(-v)),
    "tanh": (nn.tanh, np.tanh, lambda v: 1 - np.tanh(v) ** 2),
    "relu": (nn.relu, lambda v: np.maximum(v, 0), lambda v: (v > 0) * 1.0),
    "leaky_relu": (
        nn.leaky_relu,
        lambda v: np.where(v > 0, v, 0.01 * v),
        lambda v: np.where(v > 0, 1.0, 0.01),
    ),
    "hard_tanh": (nn.hard_tanh, lambda v: np.clip(v, -1, 1), lambda v: (np.abs(v) < 1) * 1.0),
    "softplus": (nn.softplus, lambda v: np.logaddexp(0, v), expit),
    "log_sigmoid": (nn.log_sigmoid, lambda v: -np.logaddexp(0, -v), lambda v: expit(-v)),
}
NAMES = list(REFERENCE)
#: Points where the derivative jumps (finite differences are meaningless there).
KINKS = {"relu": (0.0,), "leaky_relu": (0.0,), "hard_tanh": (-1.0, 1.0), "slope": (0.0,)}

# ------------------------------------------------------------------------------------------------
# The scalar graph.

XS = {name: sp.Symbol(f"x_{name}") for name in NAMES}
x_leaky, alpha, x_prelu, slope, u, w = sp.symbols("x_leaky alpha x_prelu slope u w")
SCALAR_TERMS = [REFERENCE[name][0](XS[name]) for name in NAMES] + [
    nn.leaky_relu(x_leaky, alpha),
    nn.prelu(x_prelu, slope),
    nn.xlogy(u, w),
]
SCALAR_WRT = [*XS.values(), x_leaky, alpha, x_prelu, slope, u, w]
SCALAR64 = sg.compile([sp.Add(*SCALAR_TERMS), *SCALAR_TERMS], wrt=SCALAR_WRT)
SCALAR32 = sg.compile([sp.Add(*SCALAR_TERMS), *SCALAR_TERMS], wrt=SCALAR_WRT, dtype="float32")


def scalar_reference(v: dict) -> tuple[list, list]:
    """Values of the terms and the gradient, in ``SCALAR_WRT`` order."""
    values = [REFERENCE[name][1](v[XS[name]]) for name in NAMES]
    grads = [REFERENCE[name][2](v[XS[name]]) for name in NAMES]
    xl, a, xp, s, uu, ww = (v[k] for k in (x_leaky, alpha, x_prelu, slope, u, w))
    values += [xl if xl > 0 else a * xl, xp if xp > 0 else s * xp, np_xlogy(uu, ww)]
    grads += [1.0 if xl > 0 else a, xl if xl <= 0 else 0.0]
    grads += [1.0 if xp > 0 else s, xp if xp <= 0 else 0.0]
    grads += [np.log(ww), uu / ww]
    return values, grads


def away_from_kinks(name: str, values: st.SearchStrategy) -> st.SearchStrategy:
    kinks = KINKS.get(name, ())
    return values.filter(lambda v: all(abs(v - k) > 1e-3 for k in kinks))


def real(lo: float = -30.0, hi: float = 30.0) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


SCALAR_INPUTS = st.fixed_dictionaries(
    {
        **{XS[name]: away_from_kinks(name, real()) for name in NAMES},
        x_leaky: away_from_kinks("relu", real()),
        alpha: real(-1, 1),
        x_prelu: away_from_kinks("relu", real()),
        slope: real(-1, 1),
        u: real(-5, 5),
        w: real(1e-3, 50),
    }
)


@settings(max_examples=40)
@given(SCALAR_INPUTS)
def test_scalar_values_and_gradients_match_numpy(v):
    out = SCALAR64(v)
    values, grads = scalar_reference(v)
    np.testing.assert_allclose(out[1:], values, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(out[0], np.sum(values), rtol=1e-12, atol=1e-12)
    _, got = SCALAR64.value_and_grad(v)
    np.testing.assert_allclose(got, grads, rtol=1e-12, atol=1e-14)


@settings(max_examples=25)
@given(SCALAR_INPUTS)
def test_scalar_gradients_match_finite_differences(v):
    check_grad(SCALAR64, v)


@settings(max_examples=25)
@given(SCALAR_INPUTS)
def test_float32_matches_float64(v):
    v32 = {k: float(np.float32(x)) for k, x in v.items()}
    values, grads = scalar_reference(v32)
    out = SCALAR32(v32)
    _, got = SCALAR32.value_and_grad(v32)
    np.testing.assert_allclose(out[1:], values, rtol=3e-6, atol=3e-6)
    np.testing.assert_allclose(got, grads, rtol=3e-6, atol=3e-6)


@pytest.mark.parametrize("f", [SCALAR64, SCALAR32], ids=["float64", "float32"])
@pytest.mark.parametrize("big", [1e4, -1e4, 1e3, -1e3, 100.0, -100.0, 40.0, -40.0])
def test_large_arguments_give_exact_finite_results(f, big):
    v = {s: big for s in (*XS.values(), x_leaky, x_prelu)}
    v.update({alpha: 0.5, slope: 0.25, u: 1.0, w: 2.0})
    out = f(v)
    _, got = f.value_and_grad(v)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(got))
    values, grads = scalar_reference(v)
    tol = 1e-12 if f is SCALAR64 else 1e-6
    np.testing.assert_allclose(out[1:], values, rtol=tol, atol=1e-30)
    # sigmoid' = s(1 - s) reuses the value (as the frameworks do): where s rounds to 1 the
    # derivative is 0 instead of ~e^-x, an absolute error below one ulp of 1.
    np.testing.assert_allclose(got, grads, rtol=tol, atol=np.finfo(f.dtype).eps)


def test_derivatives_at_the_kinks_follow_the_frameworks():
    v = {s: 0.0 for s in (*XS.values(), x_leaky, x_prelu)}
    v.update({alpha: 0.5, slope: 0.25, u: 0.0, w: 0.0, XS["hard_tanh"]: 1.0})
    for f in (SCALAR64, SCALAR32):
        _, g = f.value_and_grad(v)
        got = dict(zip(SCALAR_WRT, g))
        assert got[XS["relu"]] == 0.0  # relu'(0) = 0 exactly
        assert got[XS["leaky_relu"]] == np.float32(0.01)
        assert got[x_leaky] == 0.5 and got[alpha] == 0.0
        assert got[x_prelu] == 0.25 and got[slope] == 0.0
        assert got[XS["hard_tanh"]] == 0.0  # hard_tanh'(1) = 0
        assert got[XS["sigmoid"]] == 0.25 and got[XS["softplus"]] == 0.5
        assert f(v)[-1] == 0.0  # xlogy(0, 0) = 0
    v[XS["hard_tanh"]] = -1.0
    assert dict(zip(SCALAR_WRT, SCALAR64.grad(v)))[XS["hard_tanh"]] == 0.0


# ------------------------------------------------------------------------------------------------
# The matrix graph: activations applied elementwise, with broadcasting parameters.

n = sp.Symbol("n")
G = sp.MatrixSymbol("G", n, 3)
XM = {name: sp.MatrixSymbol(f"X_{name}", n, 3) for name in NAMES}
X_prelu, X_leaky, X_lin = (sp.MatrixSymbol(s, n, 3) for s in ("X_prelu", "X_leaky", "X_lin"))
A_row = sp.MatrixSymbol("a", 1, 3)
W = sp.MatrixSymbol("W", 3, 3)
MATRIX_TERMS = [REFERENCE[name][0](XM[name]) for name in NAMES] + [
    nn.prelu(X_prelu, A_row),
    nn.leaky_relu(X_leaky, alpha),
    nn.sigmoid(X_lin * W),
]
MATRIX_WRT = [*XM.values(), X_prelu, A_row, X_leaky, alpha, X_lin, W]
MATRIX_LOSS = sp.Add(*(nn.sum(HadamardProduct(G, t)) for t in MATRIX_TERMS))
MATRIX64 = sg.compile([MATRIX_LOSS, *MATRIX_TERMS], wrt=MATRIX_WRT)


def _off_kinks(v: float) -> float:
    """Move ``v`` a margin away from the kinks 0 and ±1 (mapping, not filtering, keeps
    hypothesis from discarding most drawn arrays)."""
    for k in (-1.0, 0.0, 1.0):
        if abs(v - k) < 0.02:
            return k + (0.02 if v >= k else -0.02)
    return v


#: Matrix entries a margin away from every kink.
entries = st.floats(-6, 6).map(_off_kinks)


@st.composite
def matrix_inputs(draw):
    rows = draw(st.integers(1, 4))
    mat = arrays(np.float64, (rows, 3), elements=entries)
    v = {s: draw(mat) for s in (*XM.values(), X_prelu, X_leaky, X_lin, G)}
    v[A_row] = draw(arrays(np.float64, (1, 3), elements=st.floats(-1, 1)))
    v[W] = draw(arrays(np.float64, (3, 3), elements=st.floats(-1, 1)))
    v[alpha] = draw(st.floats(-1, 1))
    return v


def matrix_reference(v: dict) -> tuple[list, list]:
    g = v[G]
    values = [REFERENCE[name][1](v[XM[name]]) for name in NAMES]
    grads = [g * REFERENCE[name][2](v[XM[name]]) for name in NAMES]
    xp, a, xl, al = v[X_prelu], v[A_row], v[X_leaky], v[alpha]
    z = v[X_lin] @ v[W]
    values += [np.where(xp > 0, xp, a * xp), np.where(xl > 0, xl, al * xl), expit(z)]
    grads += [g * np.where(xp > 0, 1, a), (g * np.where(xp > 0, 0, xp)).sum(0, keepdims=True)]
    grads += [g * np.where(xl > 0, 1, al), (g * np.where(xl > 0, 0, xl)).sum()]
    dz = g * expit(z) * expit(-z)
    grads += [dz @ v[W].T, v[X_lin].T @ dz]
    return values, grads


@settings(max_examples=30, suppress_health_check=SLOW_DRAWS)
@given(matrix_inputs())
def test_matrix_activations_match_numpy(v):
    out = MATRIX64(v)
    values, grads = matrix_reference(v)
    for got, want in zip(out[1:], values):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    _, got_grads = MATRIX64.value_and_grad(v)
    for got, want in zip(got_grads, grads):
        assert np.shape(got) == np.shape(want)
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-13)


@settings(max_examples=10, suppress_health_check=SLOW_DRAWS)
@given(matrix_inputs())
def test_matrix_gradients_match_finite_differences(v):
    check_grad(MATRIX64, v, mode="reverse")  # forward mode: the scalar graph covers it


def test_matrix_relu_derivative_at_zero_is_zero():
    v = {s: np.zeros((2, 3)) for s in (*XM.values(), X_prelu, X_leaky, X_lin)}
    v.update({G: np.ones((2, 3)), A_row: np.ones((1, 3)), W: np.eye(3), alpha: 0.5})
    grads = dict(zip(MATRIX_WRT, MATRIX64.grad(v)))
    assert np.all(grads[XM["relu"]] == 0.0)
    assert np.all(grads[X_leaky] == 0.5)


# ------------------------------------------------------------------------------------------------
# SymPy behaviour (no compilation).

x, a = sp.symbols("x a")


def test_derivatives_are_written_with_the_function_itself():
    assert sp.diff(nn.sigmoid(x), x) == nn.sigmoid(x) * (1 - nn.sigmoid(x))
    assert sp.diff(nn.relu(x), x) == sp.Heaviside(nn.relu(x), 0)
    assert sp.diff(nn.hard_tanh(x), x).has(nn.hard_tanh(x))
    assert sp.diff(nn.softplus(x), x) == nn.sigmoid(x)
    assert sp.diff(nn.log_sigmoid(x), x) == nn.sigmoid(-x)
    assert sp.diff(nn.relu(x), x).subs(x, 0) == 0
    assert sp.diff(nn.leaky_relu(x, a), x).subs(x, 0) == a
    assert sp.diff(nn.tanh(x), x) == 1 - sp.tanh(x) ** 2


@pytest.mark.parametrize("name", NAMES)
def test_numeric_evaluation_and_lambdify_agree_with_numpy(name):
    fn, value, _ = REFERENCE[name]
    for v in (-3.5, -0.25, 0.0, 0.75, 2.0):
        assert float(sp.N(fn(sp.Float(v)), 30)) == pytest.approx(float(value(v)), rel=1e-14)
        assert float(fn(x).evalf(subs={x: v})) == pytest.approx(float(value(v)), rel=1e-14)
    points = np.linspace(-50, 50, 11)
    np.testing.assert_allclose(sp.lambdify(x, fn(x), "numpy")(points), value(points), rtol=1e-14)
    assert sp.lambdify(x, fn(x), "math")(1.5) == pytest.approx(float(value(1.5)), rel=1e-14)


def test_symbolic_special_values():
    assert nn.sigmoid(0) == sp.S.Half and nn.relu(-2) == 0 and nn.relu(3) == 3
    assert nn.softplus(0) == sp.log(2) and nn.log_sigmoid(0) == -sp.log(2)
    assert nn.leaky_relu(-3) == sp.Rational(-3, 100) and nn.hard_tanh(5) == 1
    assert nn.xlogy(0, x) == 0 and nn.sigmoid(sp.oo) == 1
    assert sp.N(nn.sigmoid(-800)) > 0  # arbitrary precision: no underflow to 0


def test_matrix_argument_prints_as_the_call_and_has_the_broadcast_shape():
    Z = sp.MatrixSymbol("Z", n, 3)
    assert str(nn.sigmoid(X_lin * W)) == "sigmoid(X_lin*W)"
    assert nn.prelu(Z, A_row).shape == (n, 3)
    assert str(nn.leaky_relu(Z)) == "leaky_relu(Z, 1/100)"
    assert sp.latex(nn.log_sigmoid(Z)) == r"\operatorname{log\_sigmoid}\left(Z\right)"
    assert "Dummy" not in sp.srepr(nn.relu(Z))  # stable cache keys across processes
    assert nn.relu(Z).free_symbols == {Z}
    with pytest.raises(sg.ShapeError):
        nn.prelu(Z, sp.MatrixSymbol("b", 1, 4))
    explicit = nn.relu(sp.Matrix([[-1, 2]]))
    assert explicit == sp.ImmutableMatrix([[0, 2]])


def test_matrix_derivatives_in_sympy_match_explicit_matrices():
    t = sp.Symbol("t", real=True)
    X2, A2, row = sp.MatrixSymbol("X", 2, 3), sp.MatrixSymbol("A", 2, 3), sp.MatrixSymbol("r", 1, 3)
    M = X2 + t * A2
    values = {t: sp.Rational(1, 3), alpha: sp.Rational(1, 7)}
    values.update({X2[i, j]: sp.Rational(i + 2 * j - 2, 5) for i in range(2) for j in range(3)})
    values.update({A2[i, j]: sp.Rational(i - j + 1, 3) for i in range(2) for j in range(3)})
    values.update({row[0, j]: sp.Rational(j + 1, 4) for j in range(3)})
    exprs = [REFERENCE[name][0](M) for name in NAMES]
    exprs += [nn.leaky_relu(M, alpha * t), nn.prelu(M, t * row), nn.xlogy(M, t * A2)]
    for e in exprs:
        derivative = sp.diff(e, t).as_explicit()
        reference = sp.diff(e.as_explicit(), t)
        diff = (derivative - reference).xreplace(values).evalf(30)
        assert max(abs(d) for d in diff) < 1e-25, e
    dW = sp.diff(nn.sigmoid(X_lin * W), W)  # SymPy's matrix calculus, one operand
    assert dW.has(nn.sigmoid)
    with pytest.raises(NotImplementedError):
        sp.diff(nn.prelu(X_lin, A_row), X_lin)
