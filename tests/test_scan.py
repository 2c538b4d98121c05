"""Scan: a real loop whose gradient is backpropagation through time."""

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import symgrad as sg

T, n = sp.symbols("T n")
D, H = 3, 4
X = sg.Sequence("X", T, n, D)
Yseq = sg.Sequence("Y", T, n, H)
x = sp.MatrixSymbol("x_t", n, D)
y = sp.MatrixSymbol("y_t", n, H)
h = sp.MatrixSymbol("h", n, H)
W = sp.MatrixSymbol("W", D, H)
U = sp.MatrixSymbol("U", H, H)
h0 = sp.MatrixSymbol("h0", n, H)

u = sp.Dummy("u")
SIGMOID = sp.Lambda(u, 1 / (1 + sp.exp(-u)))
h_new = (x * W + h * U).applyfunc(SIGMOID)
err = h_new - y
RNN = sg.scan(sequences=[(x, X), (y, Yseq)], states=[(h, h_new, h0)],
              outputs=[sp.Trace(err.T * err) / 2])  # fmt: skip
LOSS = RNN.total()


@pytest.fixture(scope="module")
def elman():
    return sg.compile([LOSS, RNN.final()], wrt=[W, U, h0, X])


def numpy_bptt(Xv, Yv, Wv, Uv, h0v):
    """The δ recursion of the lecture notes (row-vector convention, sigmoid units)."""
    steps = Xv.shape[0]
    hs = [h0v]
    for t in range(steps):
        hs.append(1 / (1 + np.exp(-(Xv[t] @ Wv + hs[-1] @ Uv))))
    loss = sum(0.5 * np.sum((hs[t + 1] - Yv[t]) ** 2) for t in range(steps))
    dW, dU, dX = np.zeros_like(Wv), np.zeros_like(Uv), np.zeros_like(Xv)
    dh_next = np.zeros_like(h0v)
    for t in reversed(range(steps)):
        ht = hs[t + 1]
        delta = (ht - Yv[t] + dh_next) * ht * (1 - ht)
        dW += Xv[t].T @ delta
        dU += hs[t].T @ delta
        dX[t] = delta @ Wv.T
        dh_next = delta @ Uv.T
    return loss, hs[-1], (dW, dU, dh_next, dX)


def _inputs(rng, steps, batch):
    return {
        "X": rng.normal(size=(steps, batch, D)),
        "Y": rng.uniform(size=(steps, batch, H)),
        "W": rng.normal(size=(D, H)),
        "U": rng.normal(size=(H, H)) * 0.5,
        "h0": rng.uniform(-1, 1, size=(batch, H)),
    }


@settings(max_examples=15)
@given(st.integers(1, 12), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_elman_matches_numpy_bptt(elman, steps, batch, seed):
    v = _inputs(np.random.default_rng(seed), steps, batch)
    (loss, final), grads = elman.value_and_grad(v)
    ref_loss, ref_final, ref_grads = numpy_bptt(v["X"], v["Y"], v["W"], v["U"], v["h0"])
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(final, ref_final, rtol=1e-12)
    for g, r in zip(grads, ref_grads):
        np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-12)


def test_elman_matches_finite_differences(elman):
    rng = np.random.default_rng(3)
    v = _inputs(rng, 4, 2)
    _, grads = elman.value_and_grad(v)
    eps = 1e-6
    for name, g in zip(["W", "U", "h0", "X"], grads):
        flat = v[name].reshape(-1)
        for k in rng.choice(flat.size, size=min(6, flat.size), replace=False):
            old = flat[k]
            flat[k] = old + eps
            up = elman(v)[0]
            flat[k] = old - eps
            down = elman(v)[0]
            flat[k] = old
            assert g.reshape(-1)[k] == pytest.approx((up - down) / (2 * eps), rel=1e-6, abs=1e-8)


def test_long_sequence_runs_as_a_loop(elman):
    v = _inputs(np.random.default_rng(4), 1000, 2)
    (loss, _), grads = elman.value_and_grad(v)
    ref_loss, _, ref_grads = numpy_bptt(v["X"], v["Y"], v["W"], v["U"], v["h0"])
    assert loss == pytest.approx(ref_loss, rel=1e-10)
    np.testing.assert_allclose(grads[0], ref_grads[0], rtol=1e-8)


def test_carrying_the_state_across_chunks_gives_the_same_loss(elman):
    v = _inputs(np.random.default_rng(5), 10, 3)
    (full, final), _ = elman.value_and_grad(v)
    first = {**v, "X": v["X"][:6], "Y": v["Y"][:6]}
    (loss1, carried), _ = elman.value_and_grad(first)
    second = {**v, "X": v["X"][6:], "Y": v["Y"][6:], "h0": carried}
    (loss2, final2), _ = elman.value_and_grad(second)
    assert loss1 + loss2 == pytest.approx(full, rel=1e-12)
    np.testing.assert_allclose(final2, final, rtol=1e-12)
