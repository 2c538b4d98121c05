"""Explaining scans: the forward and BPTT loops raised to SymPy as loop blocks.

Each model is compiled once (module fixtures). The raised equations, run step by step
(``Equations.evaluate`` lambdifies each body equation and loops over ``t``), must reproduce the
compiled value and gradients; the backward loop must show the δ recursion through time.
"""

import numpy as np
import pytest
import sympy as sp

import symgrad as sg
from symgrad.explain_loop import Loop
from symgrad.ir.to_sympy import replace_exact
from symgrad.runtime import cells

T_, N_ = sp.symbols("T n")


@pytest.fixture(scope="module")
def elman():
    X = sg.Sequence("X", T_, N_, 3)
    x = sp.MatrixSymbol("x_t", N_, 3)
    h = sp.MatrixSymbol("h", N_, 4)
    W, U, b = sp.MatrixSymbol("W", 3, 4), sp.MatrixSymbol("U", 4, 4), sp.MatrixSymbol("b", 1, 4)
    h_new = (x * W + h * U + sp.OneMatrix(N_, 1) * b).applyfunc(sp.tanh)
    rnn = sg.scan(
        sequences=[(x, X)],
        states=[(h, h_new, sp.MatrixSymbol("h0", N_, 4))],
        outputs=[sp.Trace(h_new.T * h_new)],
    )
    f = sg.compile(rnn.total() / T_, wrt=[W, U, b])

    def values(rng, steps):
        return {
            "X": rng.normal(size=(steps, 2, 3)),
            "h0": rng.normal(size=(2, 4)),
            "W": rng.normal(size=(3, 4)),
            "U": rng.normal(size=(4, 4)),
            "b": rng.normal(size=(1, 4)),
        }

    return f, values, ["U"]


def _cell(name, **kw):
    model = cells.CELLS[name](n_in=2, hidden=3, **kw)
    f = sg.compile(model.loss, wrt=model.params)

    def values(rng, steps):
        out = model.init_params(rng)
        for s in model.initial:
            out[s.name] = rng.normal(size=(2, 3))
        out["X"] = rng.normal(size=(steps, 2, 2))
        out["Y"] = np.eye(2)[rng.integers(0, 2, size=(steps, 2))]
        if model.M is not None:
            out["M"] = (rng.random((steps, 2, 1)) > 0.3).astype(float)
        return out

    recurrent = [p.name for p in model.params if p.shape[0] == p.shape[1] == 3]
    return f, values, recurrent


@pytest.fixture(scope="module")
def lstm():
    return _cell("lstm")


@pytest.fixture(scope="module")
def masked_gru():
    return _cell("gru", mask=True)


MODELS = ["elman", "lstm", "masked_gru"]


def _inline(expr, body: dict, keep=()):
    """``expr`` with the loop body's names replaced by their definitions (``keep`` stays)."""
    for _ in range(len(body) + 1):
        mapping = {s: e for s, e in body.items() if s not in keep and expr.has(s)}
        if not mapping:
            return expr
        expr = replace_exact(expr, mapping)
    return expr


@pytest.mark.parametrize("model", MODELS)
def test_explain_shows_a_forward_and_a_backward_loop(model, request):
    f, _, _ = request.getfixturevalue(model)
    text = sg.explain(f)
    forward, backward = text.split("backward pass:")
    assert "for t = 1 … T" in forward
    assert "for t = T … 1" in backward
    eqs = sg.gradient_equations(f)
    assert [loop.reverse for loop in eqs.forward.loops] == [False]
    assert [loop.reverse for loop in eqs.backward.loops] == [True]
    assert all(isinstance(loop, Loop) for loop in eqs.loops)
    assert "\\textbf{for }" in eqs.to_latex()
    assert eqs._repr_latex_().startswith("$\\displaystyle \\begin{aligned}")
    assert len(sg.forward_equations(f).loops) == 1


@pytest.mark.parametrize("model", MODELS)
def test_backward_loop_runs_the_delta_recursion(model, request):
    """Each reverse carry δh_{t-1} is computed from δh_t (the error from step t + 1) through the
    transposed recurrent weights; each forward state h_t from h_{t-1}."""
    f, _, recurrent = request.getfixturevalue(model)
    eqs = sg.gradient_equations(f)
    (back,) = eqs.backward.loops
    body = {e.symbol: e.expr for e in back.body}
    carries = {prev for prev, _, _ in back.carries}
    assert carries and all(p.name.startswith("δ") for p in carries)
    for prev, new, _ in back.carries:
        assert new.name.startswith("δ") and new.name.endswith("_{t-1}")
        assert prev.name.endswith("_t")
        update = _inline(body[new], body, keep=carries)
        assert update.has(prev) or any(update.has(c) for c in carries)
    # The hidden-state error reads its own previous value through a transposed recurrent matrix.
    prev_h, new_h, _ = back.carries[0]
    update = _inline(body[new_h], body, keep=carries)
    assert update.has(prev_h)
    transposed = [
        t for t in update.atoms(sp.Transpose) if getattr(t.arg, "name", None) in recurrent
    ]
    assert transposed, update
    (fwd,) = eqs.forward.loops
    fbody = {e.symbol: e.expr for e in fwd.body}
    prev, new, _ = fwd.carries[0]
    assert prev.name == "h_{t-1}" and new.name == "h_t"
    assert _inline(fbody[new], fbody, keep={prev}).has(prev)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("steps", [1, 4])
def test_loop_equations_reproduce_compiled(model, steps, request):
    f, values, _ = request.getfixturevalue(model)
    eqs = sg.gradient_equations(f)
    rng = np.random.default_rng(steps)
    vals = values(rng, steps)
    value, grads = f.value_and_grad(**vals)
    out = eqs.evaluate(vals)
    assert abs(out["L"] - value) <= 1e-10 * max(1.0, abs(value))
    for w, g in zip(f.wrt, grads):
        got = out[f"dL/d{w.name}"]
        assert got.shape == g.shape, w
        np.testing.assert_allclose(got, g, rtol=1e-10, atol=1e-10, err_msg=w.name)


def test_forward_equations_of_a_scan_reproduce_the_value(elman):
    f, values, _ = elman
    eqs = sg.forward_equations(f)
    vals = values(np.random.default_rng(0), 3)
    assert abs(eqs.evaluate(vals)["L"] - f(**vals)) <= 1e-10


def test_elman_listing_reads_as_bptt(elman):
    f, _, _ = elman
    text = sg.explain(f)
    assert "h_t = tanh(" in text and "h_{t-1}·U" in text
    assert "δh_{t-1} = δ_t·Uᵀ" in text
    assert "∂L/∂W = Xᵀ·δ_{1:T}" in text
    assert "∂L/∂U = h_{0:T-1}ᵀ·δ_{1:T}" in text
    assert "L = (Σ_t ℓ_t)/T" in text


def test_to_dot_with_labels_draws_the_loops(lstm):
    f, _, _ = lstm
    dot = f.to_dot(labels=sg.gradient_equations(f).labels())
    assert dot.startswith("digraph") and "for t = T … 1" in dot
