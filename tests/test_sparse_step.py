"""Row-sparse training steps: only touched rows of an embedding table are read and written, and
the result equals the dense update exactly where the rule allows it (SGD, Adagrad)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sympy.matrices.expressions.hadamard import HadamardProduct

import symgrad as sg
from symgrad import nn
from symgrad.compiler.sparse_step import additive_coefficient, is_exact_when_zero
from symgrad.runtime.optimizers import SGD, Adagrad, Adam, Momentum, RMSprop

VOCAB, WIDTH = 997, 3  # a vocabulary size no other literal in the step shares
n = sp.Symbol("n", integer=True, positive=True)
E_in = sp.MatrixSymbol("E_in", VOCAB, WIDTH)
E_out = sp.MatrixSymbol("E_out", VOCAB, WIDTH)
center, context = nn.Indices("center", n, 1), nn.Indices("context", n, 3)
signs = sp.MatrixSymbol("signs", n, 3)

# Skip-gram with negative sampling: one positive context (+1) and two negatives (-1) per row.
SCORES = nn.embedding_scores(E_out, context, nn.embedding(E_in, center))
LOSS = -nn.sum(nn.log_sigmoid(HadamardProduct(signs, SCORES))) / n

_steps: dict = {}


def step_for(optimizer, sparse):
    key = (type(optimizer).__name__, sparse)
    if key not in _steps:
        _steps[key] = sg.compile_step(LOSS, [E_in, E_out], optimizer.rule, sparse=sparse)
    return _steps[key]


def run(step, optimizer, batches, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {"E_in": rng.normal(size=(VOCAB, WIDTH)), "E_out": rng.normal(size=(VOCAB, WIDTH))}
    for name in step.state_names:
        arrays[name] = np.zeros((VOCAB, WIDTH))
    losses = []
    for t, (c, ctx) in enumerate(batches):
        sign = np.tile([1.0, -1.0, -1.0], (len(c), 1))
        inputs = {**arrays, "center": c, "context": ctx, "signs": sign}
        losses.append(step({**inputs, **optimizer.hyper_values(step=t)}))
    return losses, arrays


@st.composite
def batches(draw):
    """A few batches over a small range of ids (so ids repeat), some contexts padded."""
    seed = draw(st.integers(0, 2**31 - 1))
    count, rows = draw(st.integers(1, 3)), draw(st.integers(1, 6))
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        c = rng.integers(0, 12, size=(rows, 1))
        ctx = rng.integers(-1, 12, size=(rows, 3))
        out.append((c, ctx))
    return out


@pytest.mark.parametrize("optimizer", [SGD(lr=0.5), Adagrad(lr=0.5)], ids=["SGD", "Adagrad"])
@settings(max_examples=8, deadline=None, derandomize=True)
@given(data=batches())
def test_sparse_update_equals_dense_update(optimizer, data):
    sparse_losses, sparse_arrays = run(step_for(optimizer, "auto"), optimizer, data)
    dense_losses, dense_arrays = run(step_for(optimizer, False), optimizer, data)
    np.testing.assert_allclose(sparse_losses, dense_losses, rtol=1e-13)
    for name, value in dense_arrays.items():
        np.testing.assert_allclose(sparse_arrays[name], value, rtol=1e-13, atol=1e-15)


def _allocations(source: str) -> list[str]:
    return [line for line in source.splitlines() if re.search(r"np\.(zeros|empty|full)\(", line)]


def _table_sized(source: str) -> list[str]:
    """Allocations whose shape mentions the vocabulary size (as a number, not in a name)."""
    return [line for line in _allocations(source) if re.search(rf"\b{VOCAB}\b", line)]


def test_sparse_step_never_allocates_a_table_sized_array():
    step = step_for(Adagrad(lr=0.5), "auto")
    assert "np.argsort" in step.source
    assert not _table_sized(step.source)
    dense = step_for(Adagrad(lr=0.5), False)
    assert _table_sized(dense.source)


def test_sgd_adds_into_the_touched_rows_directly():
    # p <- p - lr*g needs no distinct rows or coalesced gradient: one pass into the table.
    step = step_for(SGD(lr=0.5), "auto")
    assert "np.argsort" not in step.source
    assert not _table_sized(step.source)
    coefficients = {type(o).__name__: additive_coefficient(o.rule)
                    for o in (SGD(), Adagrad(), Momentum())}  # fmt: skip
    assert str(coefficients["SGD"]) == "-lr"
    assert coefficients["Adagrad"] is None and coefficients["Momentum"] is None


def test_exactness_of_rules_when_the_gradient_is_zero():
    exact = {type(o).__name__: is_exact_when_zero(o.rule)
             for o in (SGD(), Adagrad(), Momentum(), RMSprop(), Adam())}  # fmt: skip
    assert exact == {"SGD": True, "Adagrad": True, "Momentum": False, "RMSprop": False,
                     "Adam": False}  # fmt: skip


def test_adam_is_dense_by_default_and_lazy_on_request():
    adam = Adam(lr=0.1)
    rng = np.random.default_rng(1)
    first = (rng.integers(0, 5, (4, 1)), rng.integers(0, 5, (4, 3)))
    second = (rng.integers(5, 10, (4, 1)), rng.integers(5, 10, (4, 3)))
    dense_step, lazy_step = step_for(adam, "auto"), step_for(adam, True)
    assert "np.argsort" not in dense_step.source and "np.argsort" in lazy_step.source
    _, dense_one = run(dense_step, adam, [first])
    _, lazy_one = run(lazy_step, adam, [first])
    _, dense_two = run(dense_step, adam, [first, second])
    _, lazy_two = run(lazy_step, adam, [first, second])
    # One step: the same Adam step on the touched rows, nothing elsewhere.
    for name in ("E_in", "E_out", "E_in:m", "E_in:v"):
        np.testing.assert_allclose(lazy_one[name], dense_one[name], rtol=1e-13)
    # Rows touched only by the first batch: dense Adam keeps moving them on momentum, lazy Adam
    # leaves them (and their state) alone.
    first_rows = np.unique(first[1])
    np.testing.assert_array_equal(lazy_two["E_out"][first_rows], lazy_one["E_out"][first_rows])
    np.testing.assert_array_equal(lazy_two["E_out:m"][first_rows], lazy_one["E_out:m"][first_rows])
    assert np.all(dense_two["E_out"][first_rows] != dense_one["E_out"][first_rows])


def test_tied_use_falls_back_to_a_dense_update():
    # A table also used densely (here an L2 penalty on all of it) has a dense gradient.
    loss = LOSS + sp.Rational(1, 100) * nn.l2(E_in)
    step = sg.compile_step(loss, [E_in], SGD().rule)
    assert "np.argsort" not in step.source


def test_clipping_uses_the_norm_of_the_touched_rows():
    sgd = SGD(lr=1.0)
    clipped = sg.compile_step(LOSS, [E_in, E_out], sgd.rule, clip_norm=True)
    dense = sg.compile_step(LOSS, [E_in, E_out], sgd.rule, clip_norm=True, sparse=False)
    rng = np.random.default_rng(2)
    data = [(rng.integers(0, 12, (5, 1)), rng.integers(-1, 12, (5, 3)))]
    results = []
    for step in (clipped, dense):
        arrays = {"E_in": np.ones((VOCAB, WIDTH)), "E_out": np.ones((VOCAB, WIDTH))}
        c, ctx = data[0]
        step({**arrays, "center": c, "context": ctx, "signs": np.ones((5, 3)),
              **sgd.hyper_values(step=0), "opt:clip_norm": 0.01})  # fmt: skip
        results.append(arrays)
    for name in ("E_in", "E_out"):
        np.testing.assert_allclose(results[0][name], results[1][name], rtol=1e-13)
    moved = np.concatenate([results[0][k] - 1.0 for k in ("E_in", "E_out")])
    assert np.linalg.norm(moved) == pytest.approx(0.01, rel=1e-9)
