"""A two-layer tanh network written with SymPy matrix expressions and a symbolic batch size.

One compiled function per dtype serves every batch size: the batch dimension ``n`` is bound from
the arrays at call time. Gradients are checked against a hand-written NumPy backprop and against
central finite differences of an independent NumPy forward pass.
"""

import os

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sympy import MatrixSymbol, OneMatrix, Trace

import symgrad as sg

D, HID, K = 3, 4, 2
n = sp.Symbol("n", integer=True, positive=True)
X = MatrixSymbol("X", n, D)
W1 = MatrixSymbol("W1", D, HID)
b1 = MatrixSymbol("b1", 1, HID)
W2 = MatrixSymbol("W2", HID, K)
b2 = MatrixSymbol("b2", 1, K)
Y = MatrixSymbol("Y", n, K)
lam = sp.Symbol("lam")

H = (X * W1 + OneMatrix(n, 1) * b1).applyfunc(sp.tanh)
P = H * W2 + OneMatrix(n, 1) * b2
LOSS = Trace((P - Y).T * (P - Y)) / (2 * n) + lam / 2 * (Trace(W1.T * W1) + Trace(W2.T * W2))
WRT = [W1, b1, W2, b2]
PARAMS = ["W1", "b1", "W2", "b2"]
SHAPES = {"W1": (D, HID), "b1": (1, HID), "W2": (HID, K), "b2": (1, K)}


@pytest.fixture(scope="module")
def mlp64():
    return sg.compile(LOSS, wrt=WRT)


@pytest.fixture(scope="module")
def mlp32():
    return sg.compile(LOSS, wrt=WRT, dtype="float32")


# -- NumPy references ----------------------------------------------------------------------------
def np_loss(v):
    hid = np.tanh(v["X"] @ v["W1"] + v["b1"])
    r = hid @ v["W2"] + v["b2"] - v["Y"]
    reg = np.sum(v["W1"] ** 2) + np.sum(v["W2"] ** 2)
    return np.sum(r * r) / (2 * v["X"].shape[0]) + v["lam"] / 2 * reg


def np_backprop(v):
    """The δ-rule by hand: returns (loss, (dW1, db1, dW2, db2))."""
    x, w1, w2, lam_ = v["X"], v["W1"], v["W2"], v["lam"]
    batch = x.shape[0]
    z1 = x @ w1 + v["b1"]
    hid = np.tanh(z1)
    r = hid @ w2 + v["b2"] - v["Y"]
    loss = np.sum(r * r) / (2 * batch) + lam_ / 2 * (np.sum(w1**2) + np.sum(w2**2))
    delta2 = r / batch  # dL/dP
    dw2 = hid.T @ delta2 + lam_ * w2
    db2 = delta2.sum(axis=0, keepdims=True)
    delta1 = (delta2 @ w2.T) * (1.0 - hid**2)  # dL/dZ1
    dw1 = x.T @ delta1 + lam_ * w1
    db1 = delta1.sum(axis=0, keepdims=True)
    return loss, (dw1, db1, dw2, db2)


def fd_grads(fn, values, names, eps=1e-6):
    """Central finite differences of the scalar ``fn(values)`` w.r.t. each array in ``names``."""
    vals = {k: np.array(v, dtype=np.float64) for k, v in values.items()}
    out = []
    for name in names:
        arr = vals[name]
        g = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + eps
            plus = fn(vals)
            arr[idx] = old - eps
            minus = fn(vals)
            arr[idx] = old
            g[idx] = (plus - minus) / (2 * eps)
        out.append(g)
    return out


def random_values(batch, seed=0):
    rng = np.random.default_rng(seed)
    v = {name: rng.normal(size=shape) for name, shape in SHAPES.items()}
    v["X"] = rng.normal(size=(batch, D))
    v["Y"] = rng.normal(size=(batch, K))
    v["lam"] = 0.1
    return v


# -- hypothesis strategies -----------------------------------------------------------------------
def _arr(shape):
    return hnp.arrays(np.float64, shape, elements=st.floats(-2.0, 2.0, allow_subnormal=False))


@st.composite
def mlp_inputs(draw):
    batch = draw(st.integers(1, 9))
    v = {name: draw(_arr(shape)) for name, shape in SHAPES.items()}
    v["X"] = draw(_arr((batch, D)))
    v["Y"] = draw(_arr((batch, K)))
    v["lam"] = draw(st.floats(0.0, 1.0))
    return v


# -- tests ---------------------------------------------------------------------------------------
def test_inputs_and_shapes(mlp64):
    assert [s.name for s in mlp64.wrt] == PARAMS
    assert {s.name for s in mlp64.inputs} == set(PARAMS) | {"X", "Y", "lam"}
    for batch in (1, 5):
        grads = mlp64.grad(**random_values(batch))
        assert isinstance(grads, tuple) and len(grads) == 4
        for g, name in zip(grads, PARAMS):
            assert isinstance(g, np.ndarray)
            assert g.shape == SHAPES[name]
            assert g.dtype == np.float64


@settings(max_examples=60)
@given(mlp_inputs())
def test_matches_hand_backprop(mlp64, v):
    value, grads = mlp64.value_and_grad(**v)
    ref_value, ref_grads = np_backprop(v)
    assert value == pytest.approx(ref_value, rel=1e-10, abs=1e-12)
    assert value == pytest.approx(np_loss(v), rel=1e-10, abs=1e-12)
    assert mlp64(**v) == pytest.approx(ref_value, rel=1e-10, abs=1e-12)
    for g, r, name in zip(grads, ref_grads, PARAMS):
        np.testing.assert_allclose(g, r, rtol=1e-9, atol=1e-11, err_msg=name)


@settings(max_examples=25)
@given(mlp_inputs())
def test_matches_finite_differences(mlp64, v):
    grads = mlp64.grad(v)  # one dict keyed by name
    for g, r, name in zip(grads, fd_grads(np_loss, v, PARAMS), PARAMS):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-7, err_msg=name)


def test_one_compiled_function_serves_every_batch_size(mlp64):
    """The symbolic n is bound per call: no rebuild, no new Numba specialisation per size."""
    mlp64.value_and_grad(**random_values(2))  # warm every function used below
    mlp64(**random_values(2))
    cache_dir = os.environ["SYMGRAD_CACHE_DIR"]

    def listing():
        return sorted(os.path.join(root, f) for root, _, files in os.walk(cache_dir) for f in files)

    before = listing()
    for batch in (1, 3, 8, 64, 257):
        v = random_values(batch, seed=batch)
        value, grads = mlp64.value_and_grad(**v)
        ref_value, ref_grads = np_backprop(v)
        assert value == pytest.approx(ref_value, rel=1e-10)
        assert mlp64(**v) == pytest.approx(ref_value, rel=1e-10)
        for g, r in zip(grads, ref_grads):
            np.testing.assert_allclose(g, r, rtol=1e-9, atol=1e-12)
    assert listing() == before


def test_inputs_keyed_by_matrix_symbol(mlp64):
    v = random_values(4)
    by_symbol = {X: v["X"], Y: v["Y"], W1: v["W1"], b1: v["b1"], W2: v["W2"], b2: v["b2"], lam: 0.1}
    assert mlp64(by_symbol) == pytest.approx(np_loss(v), rel=1e-12)


def test_nested_lists_and_fortran_arrays_are_accepted(mlp64):
    v = random_values(3)
    other = dict(v, X=v["X"].tolist(), W1=np.asfortranarray(v["W1"]), W2=v["W2"].T.copy().T)
    value, grads = mlp64.value_and_grad(**other)
    ref_value, ref_grads = np_backprop(v)
    assert value == pytest.approx(ref_value, rel=1e-12)
    for g, r in zip(grads, ref_grads):
        np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-12)


@pytest.mark.slow  # a second graph: a cold float32 compile
@settings(max_examples=30)
@given(mlp_inputs())
def test_float32_close_to_float64(mlp64, mlp32, v):
    v32 = {k: np.asarray(a, dtype=np.float32) for k, a in v.items()}
    v64 = {k: np.asarray(a, dtype=np.float64) for k, a in v32.items()}  # the same point
    value64, grads64 = mlp64.value_and_grad(**v64)
    value32, grads32 = mlp32.value_and_grad(**v32)
    scale = max(1.0, abs(value64))
    assert abs(float(value32) - value64) <= 1e-5 * scale
    for g32, g64, name in zip(grads32, grads64, PARAMS):
        assert g32.dtype == np.float32, name
        assert g32.shape == g64.shape
        np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-5 * scale, err_msg=name)


@pytest.fixture(scope="module")
def mlp_aux():
    return sg.compile([LOSS, P], wrt=WRT)  # the predictions come back as an auxiliary output


@pytest.mark.slow  # a third graph
def test_predictions_as_auxiliary_output(mlp_aux):
    for batch in (1, 6):
        v = random_values(batch, seed=10 + batch)
        hid = np.tanh(v["X"] @ v["W1"] + v["b1"])
        pred = hid @ v["W2"] + v["b2"]
        loss, p = mlp_aux(**v)
        ref_loss, ref_grads = np_backprop(v)
        assert loss == pytest.approx(ref_loss, rel=1e-12)
        assert p.shape == (batch, K)
        np.testing.assert_allclose(p, pred, rtol=1e-12, atol=1e-14)
        (loss2, p2), grads = mlp_aux.value_and_grad(**v)
        assert loss2 == pytest.approx(ref_loss, rel=1e-12)
        np.testing.assert_allclose(p2, pred, rtol=1e-12, atol=1e-14)
        for g, r, name in zip(grads, ref_grads, PARAMS):
            assert g.shape == SHAPES[name]
            np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-12, err_msg=name)
