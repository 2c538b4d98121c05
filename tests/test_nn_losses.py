"""symgrad.nn reductions, normalisations and losses: values, gradients, stability, rewrites.

Compiled graphs (6, each built once at module scope; hypothesis varies only the values):

* ``REDUCTIONS``: sum / mean / logsumexp over axis 0, 1 and everything, softmax and log_softmax
  over both axes, each on its own ``(n, 4)`` input, weighted and summed;
* ``LOSSES``: every loss and penalty on its own inputs, summed (targets are differentiated too);
* ``STABLE64`` / ``STABLE32``: cross-entropy, binary cross-entropy, logsumexp and KL against a
  softmax, for logits of ±1e4;
* ``HAND64`` / ``HAND32``: the same formulas spelled in plain SymPy, compiled with the
  ``stabilize_nn`` rewrites added to the default pass list.

References are NumPy/SciPy formulas written independently of symgrad; gradients are also
checked against central finite differences of the compiled function, away from kinks (reverse
mode on the big graphs, whose ``jvp`` would take long to compile; both modes on ``STABLE64``,
which has the max shift, softmax and log-sum-exp in it).
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.special import expit, log_softmax, logsumexp, softmax
from sympy import MatrixSymbol, OneMatrix
from sympy.matrices.expressions.hadamard import HadamardProduct

import symgrad as sg
from symgrad import nn
from symgrad.compiler import passes
from symgrad.compiler.lower import Lowerer
from symgrad.compiler.passes.rewrite import chain
from symgrad.compiler.passes.stabilize_nn import stabilize_nn
from symgrad.ir.printing import listing
from symgrad.testing import check_grad

n = sp.Symbol("n")
K = 4

#: Drawing a dozen arrays per example can be slow on a busy machine; that is not a bug.
SLOW_DRAWS = [HealthCheck.too_slow]

# ------------------------------------------------------------------------------------------------
# Reductions and normalisations.

G, G_row, G_col = MatrixSymbol("G", n, K), MatrixSymbol("G_row", 1, K), MatrixSymbol("G_col", n, 1)
WEIGHT = {(1, K): G_row, (n, 1): G_col, (n, K): G}
REDUCTIONS_SPEC = {
    "sum0": (lambda X: nn.sum(X, axis=0)),
    "sum1": (lambda X: nn.sum(X, axis=1)),
    "sum": (lambda X: nn.sum(X)),
    "mean0": (lambda X: nn.mean(X, axis=0)),
    "mean1": (lambda X: nn.mean(X, axis=1)),
    "mean": (lambda X: nn.mean(X)),
    "lse0": (lambda X: nn.logsumexp(X, axis=0)),
    "lse1": (lambda X: nn.logsumexp(X, axis=1)),
    "lse": (lambda X: nn.logsumexp(X, axis=None)),
    "softmax1": (lambda X: nn.softmax(X)),
    "softmax0": (lambda X: nn.softmax(X, axis=0)),
    "log_softmax1": (lambda X: nn.log_softmax(X)),
    "log_softmax0": (lambda X: nn.log_softmax(X, axis=0)),
}
XR = {name: MatrixSymbol(f"X_{name}", n, K) for name in REDUCTIONS_SPEC}
RED_TERMS = [fn(XR[name]) for name, fn in REDUCTIONS_SPEC.items()]


def _weighted(term):
    if not term.is_Matrix:
        return term
    return nn.sum(HadamardProduct(WEIGHT[tuple(term.shape)], term))


REDUCTIONS = sg.compile(
    [sp.Add(*(_weighted(t) for t in RED_TERMS)), *RED_TERMS], wrt=list(XR.values())
)


def reductions_reference(v: dict) -> tuple[list, list]:
    g, gr, gc = v[G], v[G_row], v[G_col]
    rows = g.shape[0]
    vals, grads = [], []
    for name in REDUCTIONS_SPEC:
        x = v[XR[name]]
        ones = np.ones_like(x)
        if name.startswith("sum") or name.startswith("mean"):
            axis = {"0": 0, "1": 1}.get(name[-1])
            count = {0: rows, 1: K, None: rows * K}[axis] if name.startswith("mean") else 1
            vals.append(x.sum(axis=axis, keepdims=axis is not None) / count)
            weight = {0: gr, 1: gc, None: 1.0}[axis]
            grads.append(weight * ones / count)
        elif name.startswith("lse"):
            axis = {"0": 0, "1": 1}.get(name[-1])
            vals.append(logsumexp(x, axis=axis, keepdims=axis is not None))
            weight = {0: gr, 1: gc, None: 1.0}[axis]
            grads.append(weight * softmax(x, axis=axis))
        else:
            axis = int(name[-1])
            s = softmax(x, axis=axis)
            if name.startswith("softmax"):
                vals.append(s)
                grads.append(s * (g - (g * s).sum(axis=axis, keepdims=True)))
            else:
                vals.append(log_softmax(x, axis=axis))
                grads.append(g - s * g.sum(axis=axis, keepdims=True))
    return vals, grads


def floats(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


@st.composite
def reduction_inputs(draw):
    rows = draw(st.integers(1, 4))
    v = {x: draw(arrays(np.float64, (rows, K), elements=floats(-20, 20))) for x in XR.values()}
    for w, shape in ((G, (rows, K)), (G_row, (1, K)), (G_col, (rows, 1))):
        v[w] = draw(arrays(np.float64, shape, elements=floats(-2, 2)))
    return v


@settings(max_examples=30, suppress_health_check=SLOW_DRAWS)
@given(reduction_inputs())
def test_reductions_match_numpy(v):
    out = REDUCTIONS(v)
    vals, grads = reductions_reference(v)
    for name, got, want in zip(REDUCTIONS_SPEC, out[1:], vals):
        assert np.shape(got) == np.shape(want), name
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=name)
    _, got_grads = REDUCTIONS.value_and_grad(v)
    for name, got, want in zip(REDUCTIONS_SPEC, got_grads, grads):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-12, err_msg=name)


@settings(max_examples=30, suppress_health_check=SLOW_DRAWS)
@given(reduction_inputs())
def test_softmax_rows_sum_to_one(v):
    out = dict(zip(REDUCTIONS_SPEC, REDUCTIONS(v)[1:]))
    np.testing.assert_allclose(out["softmax1"].sum(axis=1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(out["softmax0"].sum(axis=0), 1.0, rtol=1e-14)
    assert np.all(out["softmax1"] >= 0) and np.all(out["log_softmax1"] <= 0)


@settings(max_examples=8, suppress_health_check=SLOW_DRAWS)
@given(reduction_inputs())
def test_reduction_gradients_match_finite_differences(v):
    check_grad(REDUCTIONS, v, mode="reverse")  # forward mode: see the STABLE64 test


# ------------------------------------------------------------------------------------------------
# Losses and penalties.

M = {name: MatrixSymbol(name, n, K) for name in "Z1 Y1 P2 Y2 Z3 Y3 P4 Y4 P5 Q5 P6 Z6 S7 T7".split()}
W8, W9 = MatrixSymbol("W8", 3, 2), MatrixSymbol("W9", 3, 2)
z, y, p, q, s, t, b, c = sp.symbols("z y p q s t b c")
LOSS_TERMS = {
    "cross_entropy": nn.cross_entropy(M["Z1"], M["Y1"]),
    "cross_entropy_from_probs": nn.cross_entropy_from_probs(M["P2"], M["Y2"]),
    "binary_cross_entropy": nn.binary_cross_entropy(M["Z3"], M["Y3"]),
    "binary_cross_entropy_scalar": nn.binary_cross_entropy(z, y),
    "mse": nn.mse(M["P4"], M["Y4"]),
    "mse_scalar": nn.mse(p, q),
    "kl_divergence": nn.kl_divergence(M["P5"], M["Q5"]),
    "kl_divergence_softmax": nn.kl_divergence(M["P6"], nn.softmax(M["Z6"])),
    "hinge": nn.hinge(M["S7"], M["T7"]),
    "hinge_scalar": nn.hinge(s, t),
    "l1": nn.l1(W8, b),
    "l2": nn.l2(W9, c),
}
LOSS_WRT = [*M.values(), W8, W9, z, y, p, q, s, t, b, c]
LOSSES = sg.compile([sp.Add(*LOSS_TERMS.values()), *LOSS_TERMS.values()], wrt=LOSS_WRT)


def losses_reference(v: dict) -> tuple[dict, dict]:
    """Loss values by name and gradients by symbol."""
    m = {k: v[sym] for k, sym in M.items()}
    rows = m["Z1"].shape[0]
    val, grad = {}, {}
    ls1 = log_softmax(m["Z1"], axis=1)
    val["cross_entropy"] = -(m["Y1"] * ls1).sum() / rows
    grad["Z1"] = (softmax(m["Z1"], axis=1) * m["Y1"].sum(1, keepdims=True) - m["Y1"]) / rows
    grad["Y1"] = -ls1 / rows
    val["cross_entropy_from_probs"] = -(m["Y2"] * np.log(m["P2"])).sum() / rows
    grad["P2"], grad["Y2"] = -m["Y2"] / m["P2"] / rows, -np.log(m["P2"]) / rows
    zz, yy = m["Z3"], m["Y3"]
    val["binary_cross_entropy"] = (np.logaddexp(0, zz) - yy * zz).mean()
    grad["Z3"], grad["Y3"] = (expit(zz) - yy) / zz.size, -zz / zz.size
    val["binary_cross_entropy_scalar"] = np.logaddexp(0, v[z]) - v[y] * v[z]
    grad["z"], grad["y"] = expit(v[z]) - v[y], -v[z]
    d4 = m["P4"] - m["Y4"]
    val["mse"], grad["P4"], grad["Y4"] = (d4**2).mean(), 2 * d4 / d4.size, -2 * d4 / d4.size
    val["mse_scalar"] = (v[p] - v[q]) ** 2
    grad["p"], grad["q"] = 2 * (v[p] - v[q]), -2 * (v[p] - v[q])
    P5, Q5 = m["P5"], m["Q5"]
    val["kl_divergence"] = (P5 * (np.log(P5) - np.log(Q5))).sum() / rows
    grad["P5"], grad["Q5"] = (np.log(P5) + 1 - np.log(Q5)) / rows, -P5 / Q5 / rows
    P6, ls6 = m["P6"], log_softmax(m["Z6"], axis=1)
    val["kl_divergence_softmax"] = (P6 * (np.log(P6) - ls6)).sum() / rows
    grad["P6"] = (np.log(P6) + 1 - ls6) / rows
    grad["Z6"] = (np.exp(ls6) * P6.sum(1, keepdims=True) - P6) / rows
    u7 = 1 - m["S7"] + m["T7"]
    val["hinge"], grad["S7"], grad["T7"] = np.maximum(u7, 0).sum(), -1.0 * (u7 > 0), 1.0 * (u7 > 0)
    u = 1 - v[s] + v[t]
    val["hinge_scalar"], grad["s"], grad["t"] = max(u, 0.0), -float(u > 0), float(u > 0)
    val["l1"] = np.abs(v[W8]).sum() + abs(v[b])
    grad["W8"], grad["b"] = np.sign(v[W8]), np.sign(v[b])
    val["l2"] = (v[W9] ** 2).sum() + v[c] ** 2
    grad["W9"], grad["c"] = 2 * v[W9], 2 * v[c]
    return val, {sym: grad[str(sym)] for sym in LOSS_WRT}


def _off(v: float, kink: float = 0.0, margin: float = 0.02) -> float:
    """``v`` moved a margin away from ``kink`` (mapping instead of filtering)."""
    return v if abs(v - kink) >= margin else kink + (margin if v >= kink else -margin)


@st.composite
def loss_inputs(draw):
    rows = draw(st.integers(1, 4))

    def mat(lo, hi, shape=(rows, K)):
        return draw(arrays(np.float64, shape, elements=floats(lo, hi)))

    v = {M[k]: mat(-15, 15) for k in ("Z1", "Z3", "Z6", "P4", "Y4", "S7")}
    if draw(st.booleans()):
        v[M["Y1"]] = np.eye(K)[draw(st.lists(st.integers(0, K - 1), min_size=rows, max_size=rows))]
    else:
        raw = mat(0.01, 1)
        v[M["Y1"]] = raw / raw.sum(1, keepdims=True)
    v.update({M[k]: mat(0.05, 1) for k in ("P2", "P5", "Q5", "P6")})
    v.update({M[k]: mat(0, 1) for k in ("Y2", "Y3")})
    # hinge: keep 1 - s + t away from its kink
    v[M["T7"]] = np.vectorize(_off)(mat(-3, 3) + 1, 0.0) + v[M["S7"]] - 1
    v[W8] = np.vectorize(_off)(mat(-2, 2, (3, 2)))
    v[W9] = mat(-2, 2, (3, 2))
    v.update({k: draw(floats(-20, 20)) for k in (z, p, q, c)})
    v.update({y: draw(floats(0, 1)), s: draw(floats(-3, 3)), b: _off(draw(floats(-2, 2)))})
    v[t] = v[s] - 1 + _off(draw(floats(-3, 3)))
    return v


@settings(max_examples=30, suppress_health_check=SLOW_DRAWS)
@given(loss_inputs())
def test_losses_match_numpy(v):
    out = LOSSES(v)
    val, grad = losses_reference(v)
    for name, got in zip(LOSS_TERMS, out[1:]):
        np.testing.assert_allclose(got, val[name], rtol=1e-12, atol=1e-12, err_msg=name)
    _, got_grads = LOSSES.value_and_grad(v)
    for sym, got in zip(LOSS_WRT, got_grads):
        np.testing.assert_allclose(got, grad[sym], rtol=1e-11, atol=1e-12, err_msg=str(sym))


@settings(max_examples=30, suppress_health_check=SLOW_DRAWS)
@given(loss_inputs())
def test_cross_entropy_gradient_is_softmax_minus_targets_over_n(v):
    """With one-hot or probability-row targets, d/dZ cross_entropy = (softmax(Z) - Y) / n."""
    zz, yy = v[M["Z1"]], v[M["Y1"]]
    got = LOSSES.grad(v)[LOSS_WRT.index(M["Z1"])]
    np.testing.assert_allclose(got, (softmax(zz, axis=1) - yy) / zz.shape[0], atol=1e-15)


@settings(max_examples=8, suppress_health_check=SLOW_DRAWS)
@given(loss_inputs())
def test_loss_gradients_match_finite_differences(v):
    check_grad(LOSSES, v, mode="reverse")


def test_loss_printing_and_validation():
    assert str(LOSS_TERMS["cross_entropy"]) == "-sum(HadamardProduct(Y1, log_softmax(Z1)))/n"
    assert str(nn.binary_cross_entropy(z, y)) == "-y*z + softplus(z)"
    assert nn.cross_entropy_from_probs(nn.softmax(M["Z1"]), M["Y1"]).has(nn.LogSoftmax)
    with pytest.raises(sg.ShapeError):
        nn.cross_entropy(M["Z1"], W8)
    with pytest.raises(sg.ShapeError):
        nn.mse(M["P4"], z)
    with pytest.raises(ValueError):
        nn.softmax(M["Z1"], axis=2)


def test_reductions_in_sympy():
    X2 = sp.Matrix([[1, 2, 3], [4, 5, 6]])
    assert nn.sum(X2, axis=0).as_explicit() == sp.Matrix([[5, 7, 9]])
    assert nn.mean(X2, axis=1).as_explicit() == sp.Matrix([[2], [5]])
    assert nn.sum(X2).doit() == 21
    first = nn.softmax(X2).as_explicit()[0, 0]  # e/(e + e**2 + e**3)
    assert sp.simplify(sp.log(first) + sp.log(1 + sp.E + sp.E**2)) == 0
    tt = sp.Symbol("tt", real=True)
    X3 = sp.Matrix([[0, -1, -2], [1, 0, -1]])
    for e, explicit in (
        (nn.logsumexp(tt * X3, axis=None), sp.log(sum(sp.exp(tt * v) for v in X3))),
        (nn.sum(HadamardProduct(X3, nn.softmax(tt * X3))), None),
        (nn.sum(nn.logsumexp(tt * X3, axis=0)), None),
    ):
        explicit = e.doit() if explicit is None else explicit
        assert not explicit.has(nn.SumAll, nn.Softmax, nn.LogSumExp, nn.LogSumExpAll)
        got = sp.diff(e, tt).subs(tt, sp.Rational(1, 2)).doit()
        want = sp.diff(explicit, tt).subs(tt, sp.Rational(1, 2))
        assert abs(sp.N(got - want, 30)) < 1e-25, e
    X3 = sp.MatrixSymbol("X3", 2, 3)
    with pytest.raises(NotImplementedError):
        sp.diff(nn.sum(X3), X3)


# ------------------------------------------------------------------------------------------------
# Stability at logits of ±1e4.

Z, Y, Zb, Yb, Pk = (MatrixSymbol(name, n, K) for name in ("Z", "Y", "Zb", "Yb", "Pk"))
STABLE_TERMS = [
    nn.cross_entropy(Z, Y),
    nn.binary_cross_entropy(Zb, Yb),
    nn.logsumexp(Z, axis=None),
    nn.kl_divergence(Pk, nn.softmax(Z)),
]
STABLE_OUT = [sp.Add(*STABLE_TERMS), *STABLE_TERMS, nn.softmax(Z)]
STABLE64 = sg.compile(STABLE_OUT, wrt=[Z, Zb])
STABLE32 = sg.compile(STABLE_OUT, wrt=[Z, Zb], dtype="float32")

EXTREME = np.array(
    [[1e4, -1e4, 0.0, 5e3], [-1e4, -1e4, -1e4, -1e4], [1e4, 1e4, -1e4, 3.0], [0.5, -1e4, 2.0, 1e4]]
)
TARGETS = np.eye(K)[[1, 2, 0, 3]]
PROBS = np.full((4, K), 0.25)


def stable_reference(zz, yy, zb, yb, pk):
    rows = zz.shape[0]
    ls = log_softmax(zz, axis=1)
    values = [
        -(yy * ls).sum() / rows,
        (np.logaddexp(0, zb) - yb * zb).mean(),
        logsumexp(zz),
        (pk * (np.log(pk) - ls)).sum() / rows,
    ]
    dz = (softmax(zz, axis=1) - yy) / rows + softmax(zz) + (np.exp(ls) - pk) / rows
    return values, softmax(zz, axis=1), [dz, (expit(zb) - yb) / zb.size]


@settings(max_examples=10, suppress_health_check=SLOW_DRAWS)
@given(st.integers(1, 4).flatmap(lambda r: arrays(np.float64, (4, r, K), elements=floats(-8, 8))))
def test_stable_graph_gradients_match_finite_differences_in_both_modes(mats):
    zz, zb, raw_y, raw_p = mats
    probs = np.exp(raw_p) / np.exp(raw_p).sum(1, keepdims=True)
    yb = expit(raw_y)
    check_grad(STABLE64, {Z: zz, Y: probs, Zb: zb, Yb: yb, Pk: probs})


@pytest.mark.parametrize("f", [STABLE64, STABLE32], ids=["float64", "float32"])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_extreme_logits_give_finite_exact_losses_and_gradients(f, sign):
    inputs = {Z: sign * EXTREME, Y: TARGETS, Zb: sign * EXTREME, Yb: TARGETS, Pk: PROBS}
    out = f(inputs)
    _, grads = f.value_and_grad(inputs)
    assert all(np.all(np.isfinite(o)) for o in out) and all(np.all(np.isfinite(g)) for g in grads)
    values, probs, dz = stable_reference(sign * EXTREME, TARGETS, sign * EXTREME, TARGETS, PROBS)
    rtol = 1e-12 if f is STABLE64 else 1e-6
    np.testing.assert_allclose(out[1:5], values, rtol=rtol)
    np.testing.assert_allclose(out[5], probs, rtol=rtol, atol=1e-30)
    np.testing.assert_allclose(out[5].sum(axis=1), 1.0, rtol=rtol)
    for got, want in zip(grads, dz):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=np.finfo(f.dtype).eps)


# ------------------------------------------------------------------------------------------------
# Plain-SymPy spellings, rewritten to the stable forms by ``stabilize_nn``.


@contextmanager
def nn_rewrites():
    """The default pass list plus ``stabilize_nn`` (as ``compiler/passes`` will run it)."""
    old = passes.DEFAULT_RULE
    passes.DEFAULT_RULE = chain(old, stabilize_nn)
    try:
        yield
    finally:
        passes.DEFAULT_RULE = old


_u = sp.Dummy("u")
E = Z.applyfunc(sp.exp)
ROW_SUMS = E * OneMatrix(K, 1)
HAND_SOFTMAX = HadamardProduct(E, (ROW_SUMS * OneMatrix(1, K)).applyfunc(sp.Lambda(_u, 1 / _u)))
HAND_SIGMOID = 1 / (1 + sp.exp(-z))
HAND_TERMS = [
    -nn.sum(HadamardProduct(Y, HAND_SOFTMAX.applyfunc(sp.log))) / n,  # cross-entropy
    nn.sum(ROW_SUMS.applyfunc(sp.log)),  # sum of row log-sum-exps
    -(y * sp.log(HAND_SIGMOID) + (1 - y) * sp.log(1 - HAND_SIGMOID)),  # binary cross-entropy
    sp.log(1 + sp.exp(t)),  # softplus
]
with nn_rewrites():
    HAND_OUT = [sp.Add(*HAND_TERMS), *HAND_TERMS]
    HAND64 = sg.compile(HAND_OUT, wrt=[Z, z, t], cache_enabled=False)
    HAND32 = sg.compile(HAND_OUT, wrt=[Z, z, t], dtype="float32", cache_enabled=False)


def test_rewrites_produce_the_stable_ops():
    with nn_rewrites():
        lowerer = Lowerer({n})
        text = listing(passes.optimize(lowerer.lower_all(HAND_TERMS)))
    # The cross-entropy's log of a softmax is one fused log-softmax, the log of the row sums one
    # fused log-sum-exp; no plain log and no composed max shift remain.
    assert text.count("row_log_softmax(") == 1 and text.count("row_logsumexp(") == 1
    assert " log(" not in text and "max_shift(" not in text
    assert "log_sigmoid(%" in text and "softplus(%" in text


@pytest.mark.parametrize("f", [HAND64, HAND32], ids=["float64", "float32"])
@pytest.mark.parametrize("big", [1e4, -1e4, 30.0, -30.0])
def test_plain_sympy_spellings_are_stable(f, big):
    zz = np.sign(big) * EXTREME if abs(big) > 1e3 else big / 1e4 * EXTREME
    inputs = {Z: zz, Y: TARGETS, z: big, y: 0.25, t: big}
    out = f(inputs)
    _, (dZ, dz, dt) = f.value_and_grad(inputs)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(dZ)) and np.isfinite(dz * dt)
    rows = zz.shape[0]
    want = [
        -(TARGETS * log_softmax(zz, axis=1)).sum() / rows,
        logsumexp(zz, axis=1).sum(),
        np.logaddexp(0, big) - 0.25 * big,
        np.logaddexp(0, big),
    ]
    rtol = 1e-12 if f is HAND64 else 1e-6
    np.testing.assert_allclose(out[1:], want, rtol=rtol)
    want_dZ = (softmax(zz, axis=1) - TARGETS) / rows + softmax(zz, axis=1)
    np.testing.assert_allclose(dZ, want_dZ, rtol=rtol, atol=np.finfo(f.dtype).eps)
    np.testing.assert_allclose([dz, dt], [expit(big) - 0.25, expit(big)], rtol=rtol, atol=1e-30)
