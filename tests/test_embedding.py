"""Embedding lookups: values against NumPy, gradients against finite differences, padding,
the hierarchical softmax, and clear errors for bad index inputs."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sympy.matrices.expressions.hadamard import HadamardProduct

import symgrad as sg
from symgrad import nn
from symgrad.ir.errors import InputError, ShapeError
from symgrad.testing import check_grad

n, k, V, d = sp.symbols("n k V d", integer=True, positive=True)
E = sp.MatrixSymbol("E", V, d)
H = sp.MatrixSymbol("H", n, d)
ids = nn.Indices("ids", n, k)
W = sp.MatrixSymbol("W", n, k)
C = sp.MatrixSymbol("C", n, k * d)
K = sp.MatrixSymbol("K", n, k)

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True)


@st.composite
def lookups(draw):
    """Sizes, a table and an index matrix with duplicates and -1 padding."""
    rows, cols = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    vocab, width = draw(st.integers(1, 6)), draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    return {
        "E": rng.normal(size=(vocab, width)),
        "ids": rng.integers(-1, vocab, size=(rows, cols)),
        "rng": rng,
    }


def _rows(table, index):
    """NumPy reference: the rows of ``table`` chosen by ``index``, zeros for padding."""
    out = np.where(index[..., None] >= 0, table[np.maximum(index, 0)], 0.0)
    return out  # (n, k, d)


@pytest.fixture(scope="module")
def f_embedding():
    return sg.compile(nn.sum(HadamardProduct(C, nn.tanh(nn.embedding(E, ids)))), wrt=[E, C])


@pytest.fixture(scope="module")
def f_bag():
    return sg.compile(nn.sum(nn.tanh(nn.embedding_bag(E, ids, W))), wrt=[E, W])


@pytest.fixture(scope="module")
def f_scores():
    return sg.compile(nn.sum(HadamardProduct(K, nn.tanh(nn.embedding_scores(E, ids, H)))),
                      wrt=[E, H])  # fmt: skip


@SETTINGS
@given(lookups())
def test_embedding_value_and_gradient(f_embedding, case):
    table, index, rng = case["E"], case["ids"], case["rng"]
    rows, cols = index.shape
    weights = rng.normal(size=(rows, cols * table.shape[1]))
    expected = np.sum(weights * np.tanh(_rows(table, index).reshape(rows, -1)))
    inputs = {"E": table, "ids": index, "C": weights}
    assert f_embedding(inputs) == pytest.approx(expected, rel=1e-12, abs=1e-12)
    check_grad(f_embedding, inputs)


@SETTINGS
@given(lookups())
def test_embedding_bag_value_and_gradient(f_bag, case):
    table, index, rng = case["E"], case["ids"], case["rng"]
    weights = rng.normal(size=index.shape)
    expected = np.sum(np.tanh(np.einsum("nk,nkd->nd", weights, _rows(table, index))))
    inputs = {"E": table, "ids": index, "W": weights}
    assert f_bag(inputs) == pytest.approx(expected, rel=1e-12, abs=1e-12)
    check_grad(f_bag, inputs)


@SETTINGS
@given(lookups())
def test_embedding_scores_value_and_gradient(f_scores, case):
    table, index, rng = case["E"], case["ids"], case["rng"]
    h = rng.normal(size=(index.shape[0], table.shape[1]))
    weights = rng.normal(size=index.shape)
    expected = np.sum(weights * np.tanh(np.einsum("nkd,nd->nk", _rows(table, index), h)))
    inputs = {"E": table, "ids": index, "H": h, "K": weights}
    assert f_scores(inputs) == pytest.approx(expected, rel=1e-12, abs=1e-12)
    check_grad(f_scores, inputs)


def test_padding_gets_no_gradient_and_duplicates_add_up(f_embedding):
    table = np.arange(8.0).reshape(4, 2)
    index = np.array([[2, 2, -1]])
    _, (d_table, _) = f_embedding.value_and_grad(E=table, ids=index, C=np.ones((1, 6)))
    slope = 1 - np.tanh(table[2]) ** 2
    np.testing.assert_allclose(d_table[2], 2 * slope)
    assert not d_table[[0, 1, 3]].any()


# A tree over 5 classes: internal nodes 0..3, +1 for the left branch, -1 for the right.
#        0
#      1    2
#    c0 c1 3  c4
#         c2 c3
TREE_PATHS = np.array([[0, 1, -1], [0, 1, -1], [0, 2, 3], [0, 2, 3], [0, 2, -1]])
TREE_SIGNS = np.array([[1, 1, 0], [1, -1, 0], [-1, 1, 1], [-1, 1, -1], [-1, -1, 0]], float)

L = sp.Symbol("L", integer=True, positive=True)
paths, signs = nn.Indices("paths", n, L), sp.MatrixSymbol("S", n, L)
U = sp.MatrixSymbol("U", V, d)


@pytest.fixture(scope="module")
def f_hsm():
    nll = nn.hierarchical_softmax_nll(U, paths, signs, H)
    return sg.compile([nn.sum(nll), nll], wrt=[U, H, signs])


def test_hierarchical_softmax_probabilities_sum_to_one(f_hsm):
    rng = np.random.default_rng(3)
    nodes = rng.normal(size=(4, 3))
    for h in rng.normal(size=(4, 3)) * 3:
        _, nll = f_hsm(U=nodes, paths=TREE_PATHS, S=TREE_SIGNS, H=np.tile(h, (5, 1)))
        assert np.exp(-nll).sum() == pytest.approx(1.0, rel=1e-12)
        margins = TREE_SIGNS * np.einsum("kld,d->kl", nodes[np.maximum(TREE_PATHS, 0)], h)
        expected = -np.sum(np.where(TREE_PATHS >= 0, -np.logaddexp(0, -margins), 0), axis=1)
        np.testing.assert_allclose(nll[:, 0], expected, rtol=1e-12)


@SETTINGS
@given(st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_hierarchical_softmax_gradient(f_hsm, rows, seed):
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, 5, size=rows)
    inputs = {
        "U": rng.normal(size=(4, 3)),
        "H": rng.normal(size=(rows, 3)),
        "paths": TREE_PATHS[classes],
        "S": TREE_SIGNS[classes],
    }
    check_grad(f_hsm, inputs)


def test_hierarchical_softmax_is_finite_for_huge_scores(f_hsm):
    h = np.full((5, 3), 1e4)
    value, grads = f_hsm.value_and_grad(U=np.ones((4, 3)), paths=TREE_PATHS, S=TREE_SIGNS, H=h)
    assert np.isfinite(value[0]) and all(np.isfinite(g).all() for g in grads)


def test_hierarchical_softmax_gradient_reuses_the_forward_scores():
    """The VJP reads the forward pass's path scores instead of recomputing the dot products."""
    from symgrad.compiler.reverse import grad
    from symgrad.ir.node import toposort
    from symgrad.ir.ops_hsoftmax import hsoftmax_nll
    from symgrad.ir.ops_source import input_node

    U_, H_ = input_node("U", (6, 4)), input_node("H", (5, 4))
    paths_, signs_ = input_node("paths", (5, 3), kind="int"), input_node("S", (5, 3))
    nll = hsoftmax_nll(U_, paths_, signs_, H_)
    scores = nll.inputs[0]
    assert scores.op.name == "gather_dot"
    grads = grad(nll, [U_, H_], input_node("g", (5, 1)))
    assert [x for x in toposort(grads) if x.op.name == "gather_dot"] == [scores]


def test_float32_matches_float64():
    expr = nn.sum(nn.tanh(nn.embedding_scores(E, ids, H)))
    f64, f32 = sg.compile(expr, wrt=[E, H]), sg.compile(expr, wrt=[E, H], dtype="float32")
    rng = np.random.default_rng(0)
    inputs = {"E": rng.normal(size=(7, 3)), "ids": rng.integers(-1, 7, (5, 4)),
              "H": rng.normal(size=(5, 3))}  # fmt: skip
    v64, g64 = f64.value_and_grad(inputs)
    v32, g32 = f32.value_and_grad(inputs)
    assert g32[0].dtype == np.float32
    assert v32 == pytest.approx(v64, rel=1e-5)
    for a, b in zip(g32, g64):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


# -- errors --------------------------------------------------------------------------------------
def test_id_past_the_table_names_input_and_table(f_embedding):
    with pytest.raises(InputError, match=r"'ids' holds id 4, but E has only 4 rows"):
        f_embedding(E=np.zeros((4, 2)), ids=np.array([[0, 4]]), C=np.zeros((1, 4)))


def test_float_ids_are_refused(f_embedding):
    with pytest.raises(InputError, match=r"'ids' must hold integers, got dtype float64"):
        f_embedding(E=np.zeros((4, 2)), ids=np.array([[0.0, 1.0]]), C=np.zeros((1, 4)))


def test_the_generated_code_also_refuses_ids_past_the_table(f_embedding):
    # The Numba function itself never reads out of bounds, even called directly.
    with pytest.raises(IndexError, match="past the rows"):
        f_embedding.forward(np.zeros((4, 2)), np.zeros((1, 4)), np.array([[7, 0]]))


def test_indices_have_no_gradient_and_no_arithmetic():
    with pytest.raises(InputError, match="integer index input"):
        sg.compile(nn.sum(nn.embedding(E, ids)), wrt=[E, ids])
    with pytest.raises(ShapeError, match="integer index input cannot take part in arithmetic"):
        sg.compile(nn.sum(nn.tanh(ids)), wrt=[])
    f = sg.compile(nn.sum(nn.embedding(E, ids)))
    assert f.wrt == [E]


def test_lookup_arguments_are_checked_when_built():
    with pytest.raises(ShapeError, match="chooses rows with an Indices matrix"):
        nn.embedding(E, sp.MatrixSymbol("X", n, 2))
    with pytest.raises(ShapeError, match=r"H2 has 3 columns but the table E has d"):
        nn.embedding_scores(E, ids, sp.MatrixSymbol("H2", n, 3))
    with pytest.raises(ShapeError, match=r"weights W2 of shape \(n, 2\) must have the shape"):
        nn.embedding_bag(E, ids, sp.MatrixSymbol("W2", n, 2))


def test_module_examples():
    import doctest
    import importlib

    for name in ("symgrad.nn.embedding", "symgrad.ir.ops_gather"):
        module = importlib.import_module(name)
        assert doctest.testmod(module).failed == 0, name
