"""Each SymPy matrix construct of the public contract, and the matrix input errors.

Every case is one compiled graph (compiled once per module) with an independent NumPy reference;
values are compared with NumPy and gradients with central finite differences of that reference.
"""

import re
from dataclasses import dataclass

import numpy as np
import pytest
import sympy as sp
from sympy import Identity, MatAdd, MatMul, MatPow, MatrixSymbol, OneMatrix, Trace, ZeroMatrix
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.matrices.expressions.matexpr import MatrixElement

import symgrad as sg

x, y, i = sp.symbols("x y i")
n = sp.Symbol("n", integer=True, positive=True)
m = sp.Symbol("m", integer=True, positive=True)
u = sp.Dummy("u")
A = MatrixSymbol("A", 3, 3)
W = MatrixSymbol("W", 3, 3)
B = MatrixSymbol("B", 3, 2)
C = MatrixSymbol("C", 2, 3)
S = MatrixSymbol("S", 2, 2)
X = MatrixSymbol("X", n, 3)
Z = MatrixSymbol("Z", n, 3)
Q = MatrixSymbol("Q", n, n)
XM = MatrixSymbol("XM", n, m)
V = MatrixSymbol("V", m, 2)
R = MatrixSymbol("R", 2, n)
b = MatrixSymbol("b", 1, 3)
c = MatrixSymbol("c", 3, 1)
SOFTSIGN = sp.Lambda(u, u / (1 + sp.Abs(u)))  # a user-defined activation
EXPLICIT = sp.Matrix([[x, y], [x * y, sp.sin(x)]])
BATCH = 4
DIMS = {n: BATCH, m: 5}


@dataclass(frozen=True)
class Case:
    expr: object
    wrt: list
    ref: object  # dict of float64 arrays -> NumPy value of the (first) output
    out_shape: tuple  # with n = BATCH


def _explicit(v):
    return np.array([[v["x"], v["y"]], [v["x"] * v["y"], np.sin(v["x"])]], dtype=np.float64)


CASES = {
    # MatMul, MatAdd, Transpose, number * matrix and symbol * matrix
    "linear": Case(
        x * A * B
        + 2 * C.T
        + A.T * B
        - B
        + sp.sin(x) * MatMul(A, Identity(3), B, evaluate=False)
        + MatMul(A, ZeroMatrix(3, 2), evaluate=False),
        [A, B, C, x],
        lambda v: (
            v["x"] * v["A"] @ v["B"]
            + 2 * v["C"].T
            + v["A"].T @ v["B"]
            - v["B"]
            + np.sin(v["x"]) * v["A"] @ v["B"]
        ),
        (3, 2),
    ),
    # HadamardProduct of three, HadamardPower with integer and rational exponents, + OneMatrix
    "hadamard": Case(
        HadamardProduct(A, W, A)
        + HadamardProduct(W, Identity(3))
        + HadamardPower(A, 3)
        + HadamardPower(HadamardPower(W, 2) + OneMatrix(3, 3), sp.Rational(-1, 2)),
        [A, W],
        lambda v: (
            v["A"] * v["W"] * v["A"] + v["W"] * np.eye(3) + v["A"] ** 3 + (v["W"] ** 2 + 1) ** -0.5
        ),
        (3, 3),
    ),
    # applyfunc with a SymPy Lambda, a row vector broadcast by OneMatrix over a symbolic batch
    "applyfunc_broadcast": Case(
        HadamardProduct((X + OneMatrix(n, 1) * b).applyfunc(SOFTSIGN), Z),
        [X, b, Z],
        lambda v: (v["X"] + v["b"]) / (1 + np.abs(v["X"] + v["b"])) * v["Z"],
        (BATCH, 3),
    ),
    # applyfunc of a Lambda whose body has another (learnable) scalar symbol, and of a builtin
    "applyfunc_parametric": Case(
        (A * W).applyfunc(sp.Lambda(u, sp.tanh(x * u) + y * u**2)) + A.applyfunc(sp.exp),
        [A, W, x, y],
        lambda v: (
            np.tanh(v["x"] * (v["A"] @ v["W"])) + v["y"] * (v["A"] @ v["W"]) ** 2 + np.exp(v["A"])
        ),
        (3, 3),
    ),
    # OneMatrix products: broadcast a row (left) and a column (right), row and column sums
    "onematrix": Case(
        HadamardProduct(X, OneMatrix(n, 1) * b)
        + (c * OneMatrix(1, n)).T
        + X * OneMatrix(3, 3)
        + OneMatrix(n, n) * X
        + x * OneMatrix(n, 3),
        [X, b, c, x],
        lambda v: (
            v["X"] * v["b"]
            + v["c"].T
            + v["X"].sum(axis=1, keepdims=True)
            + v["X"].sum(axis=0, keepdims=True)
            + v["x"]
        ),
        (BATCH, 3),
    ),
    # Identity, ZeroMatrix (kept by evaluate=False), MatPow with an integer exponent
    "identity_zero_matpow": Case(
        (W + Identity(3)) * MatPow(A, 3) + MatAdd(W.T, ZeroMatrix(3, 3), evaluate=False),
        [A, W],
        lambda v: (v["W"] + np.eye(3)) @ np.linalg.matrix_power(v["A"], 3) + v["W"].T,
        (3, 3),
    ),
    # Trace, scalar functions of traces; a scalar output
    "trace": Case(
        Trace(A * W.T) + Trace(A) ** 2 + sp.sin(Trace(W)) + Trace(A**2 + Identity(3)),
        [A, W],
        lambda v: (
            np.trace(v["A"] @ v["W"].T)
            + np.trace(v["A"]) ** 2
            + np.sin(np.trace(v["W"]))
            + np.trace(v["A"] @ v["A"])
            + 3.0
        ),
        (),
    ),
    # two symbolic dimensions, one of them on both axes of a square input
    "two_dims": Case(
        Trace(Q * XM * V * R),
        [Q, XM, V, R],
        lambda v: np.trace(v["Q"] @ v["XM"] @ v["V"] @ v["R"]),
        (),
    ),
    # an explicit Matrix of scalar expressions as the output
    "explicit": Case(EXPLICIT, [x, y], _explicit, (2, 2)),
    # elements M[i, j] of symbols, of products (SymPy expands them) and of an unevaluated
    # MatrixElement of a product; an explicit Matrix inside a matrix product
    "elements": Case(
        A[0, 1] * B[2, 0]
        + (A * B)[1, 1]
        + MatrixElement(A.T * B, 2, 1)
        + Trace(sp.ImmutableMatrix(EXPLICIT) * S)
        + sp.ImmutableMatrix(EXPLICIT)[1, 1] * S[0, 1]
        + X[0, 1] * X[3, 2],  # a constant index into a symbolic dimension
        [A, B, S, X, x, y],
        lambda v: (
            v["A"][0, 1] * v["B"][2, 0]
            + (v["A"] @ v["B"])[1, 1]
            + (v["A"].T @ v["B"])[2, 1]
            + np.trace(_explicit(v) @ v["S"])
            + np.sin(v["x"]) * v["S"][0, 1]
            + v["X"][0, 1] * v["X"][3, 2]
        ),
        (),
    ),
}


def _input_shapes(case, batch=BATCH):
    syms = {s for s in sp.sympify(case.expr).free_symbols if s != n}
    syms |= set(case.wrt)
    shapes = {}
    for s in syms:
        if isinstance(s, MatrixSymbol):
            shapes[s.name] = tuple(int(sp.sympify(d).subs({**DIMS, n: batch})) for d in s.shape)
        else:
            shapes[s.name] = ()
    return shapes


def random_inputs(case, batch=BATCH, seed=0):
    rng = np.random.default_rng(seed)
    return {
        name: (rng.uniform(-1.5, 1.5, size=shape) if shape else float(rng.uniform(-1.5, 1.5)))
        for name, shape in sorted(_input_shapes(case, batch).items())
    }


def fd_grads(fn, values, names, seed=None, eps=1e-6):
    """Central finite differences of ``sum(seed * fn(values))`` w.r.t. each input in ``names``."""
    vals = {k: np.array(v, dtype=np.float64) for k, v in values.items()}

    def objective():
        out = np.asarray(fn(vals), dtype=np.float64)
        return float(np.sum(out if seed is None else seed * out))

    grads = []
    for name in names:
        arr = vals[name]
        g = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + eps
            plus = objective()
            arr[idx] = old - eps
            minus = objective()
            arr[idx] = old
            g[idx] = (plus - minus) / (2 * eps)
        grads.append(g)
    return grads


def assert_grads(grads, case, values, seed=None):
    names = [s.name for s in case.wrt]
    assert isinstance(grads, tuple) and len(grads) == len(names)
    for g, r, name in zip(grads, fd_grads(case.ref, values, names, seed), names):
        assert np.shape(g) == r.shape, name
        np.testing.assert_allclose(g, r, rtol=1e-6, atol=1e-7, err_msg=name)


_COMPILED: dict = {}


def compiled(name):
    """Each case is compiled once per test session, whichever test asks first."""
    if name not in _COMPILED:
        _COMPILED[name] = sg.compile(CASES[name].expr, wrt=CASES[name].wrt)
    return _COMPILED[name]


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    return CASES[request.param], compiled(request.param)


# -- values and gradients of each construct ------------------------------------------------------
def test_value_matches_numpy(case):
    c, f = case
    v = random_inputs(c)
    out = f(**v)
    assert np.shape(out) == c.out_shape
    np.testing.assert_allclose(out, c.ref(v), rtol=1e-12, atol=1e-12)


def test_grad_default_seed_is_ones(case):
    c, f = case
    v = random_inputs(c, seed=1)
    value, grads = f.value_and_grad(**v)
    np.testing.assert_allclose(value, c.ref(v), rtol=1e-12, atol=1e-12)
    assert_grads(grads, c, v)
    ones = np.ones(c.out_shape) if c.out_shape else 1.0
    for g, h in zip(grads, f.grad(**v, seed=ones)):
        np.testing.assert_allclose(g, h, rtol=1e-13, atol=0)


def test_grad_explicit_seed(case):
    c, f = case
    v = random_inputs(c, seed=2)
    seed = np.random.default_rng(3).normal(size=c.out_shape)
    seed = seed if c.out_shape else float(seed)
    value, grads = f.value_and_grad(**v, seed=seed)
    np.testing.assert_allclose(value, c.ref(v), rtol=1e-12, atol=1e-12)
    assert_grads(grads, c, v, seed=seed)


def test_grad_shapes_equal_symbol_shapes(case):
    c, f = case
    grads = f.grad(**random_inputs(c, seed=4))
    assert [s.name for s in f.wrt] == [s.name for s in c.wrt]
    for g, s in zip(grads, c.wrt):
        if isinstance(s, MatrixSymbol):
            assert isinstance(g, np.ndarray) and g.dtype == np.float64
            assert g.shape == tuple(int(sp.sympify(d).subs(DIMS)) for d in s.shape)
        else:
            assert np.ndim(g) == 0


@pytest.mark.parametrize("batch", [1, 2, 7])
def test_symbolic_batch_bound_per_call(batch):
    c = CASES["applyfunc_broadcast"]
    f = compiled("applyfunc_broadcast")
    v = random_inputs(c, batch=batch, seed=batch)
    seed = np.random.default_rng(batch).normal(size=(batch, 3))
    value, grads = f.value_and_grad(**v, seed=seed)
    assert value.shape == (batch, 3)
    np.testing.assert_allclose(value, c.ref(v), rtol=1e-12, atol=1e-12)
    assert grads[1].shape == (1, 3)  # the broadcast row vector's gradient is summed over n
    assert_grads(grads, c, v, seed=seed)


# -- auxiliary outputs, unused wrt symbols -------------------------------------------------------
P_AUX = A * B + 2 * B
LOSS_AUX = Trace(P_AUX.T * P_AUX)


@pytest.fixture(scope="module")
def aux():
    return sg.compile([LOSS_AUX, P_AUX], wrt=[A, B, W, x])  # W and x do not appear


def _aux_ref(v):
    p = v["A"] @ v["B"] + 2 * v["B"]
    return np.sum(p * p), p


def test_aux_outputs_are_returned(aux):
    rng = np.random.default_rng(5)
    v = {"A": rng.normal(size=(3, 3)), "B": rng.normal(size=(3, 2)), "W": np.eye(3), "x": 0.5}
    loss, p = aux(**v)
    ref_loss, ref_p = _aux_ref(v)
    assert np.ndim(loss) == 0 and loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(p, ref_p, rtol=1e-12, atol=1e-12)
    (loss2, p2), grads = aux.value_and_grad(**v)
    assert loss2 == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(p2, ref_p, rtol=1e-12, atol=1e-12)
    # Only the first output is differentiated.
    case = Case(None, [A, B], lambda w: _aux_ref(w)[0], ())
    assert_grads(grads[:2], case, v)
    # A wrt symbol that does not appear gets a zero gradient of its own shape.
    assert isinstance(grads[2], np.ndarray) and grads[2].shape == (3, 3)
    assert not np.any(grads[2])
    assert np.ndim(grads[3]) == 0 and grads[3] == 0.0
    seeded = aux.grad(**v, seed=3.0)
    for g, h in zip(seeded, grads):
        np.testing.assert_allclose(g, 3.0 * h, rtol=1e-13)


# -- call-time errors ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def linear():
    return compiled("linear")


@pytest.fixture(scope="module")
def batched():
    return compiled("applyfunc_broadcast")


def test_wrong_shape_names_symbol_and_both_shapes(linear):
    v = random_inputs(CASES["linear"])
    v["B"] = np.zeros((3, 3))
    with pytest.raises(sg.ShapeError) as err:
        linear(**v)
    msg = str(err.value)
    assert "'B'" in msg and "(3, 2)" in msg and "(3, 3)" in msg
    with pytest.raises(sg.ShapeError, match=r"\(3, 2\)"):
        linear.grad(**v)


def test_inconsistent_symbolic_dimension_names_dim_and_inputs(batched):
    v = random_inputs(CASES["applyfunc_broadcast"])
    v["Z"] = np.zeros((BATCH + 1, 3))
    with pytest.raises(sg.ShapeError) as err:
        batched.value_and_grad(**v)
    msg = str(err.value)
    assert re.search(r"\bn\b", msg) and "'X'" in msg and "'Z'" in msg
    assert str(BATCH) in msg and str(BATCH + 1) in msg


def test_one_dimensional_array_for_matrix_symbol(batched):
    v = random_inputs(CASES["applyfunc_broadcast"])
    v["b"] = np.zeros(3)  # a row vector must be (1, 3)
    with pytest.raises(sg.ShapeError) as err:
        batched(**v)
    msg = str(err.value)
    assert "'b'" in msg and "(1, 3)" in msg and "(3,)" in msg


@pytest.mark.parametrize("bad", [1.0, np.ones((1, 3, 3)), np.ones((9,))], ids=["0d", "3d", "1d"])
def test_wrong_rank_for_matrix_symbol(linear, bad):
    v = random_inputs(CASES["linear"])
    v["A"] = bad
    with pytest.raises(sg.ShapeError, match=r"'A'.*\(3, 3\)"):
        linear(**v)


def test_symbolic_dimension_on_both_axes_of_one_input():
    f = compiled("two_dims")
    v = random_inputs(CASES["two_dims"])
    v["Q"] = np.ones((BATCH, BATCH + 1))
    with pytest.raises(sg.ShapeError) as err:
        f(**v)
    msg = str(err.value)
    assert re.search(r"\bn\b", msg) and "'Q'" in msg and str(BATCH + 1) in msg


def test_second_symbolic_dimension_checked():
    f = compiled("two_dims")
    v = random_inputs(CASES["two_dims"])
    v["V"] = np.ones((DIMS[m] + 2, 2))
    with pytest.raises(sg.ShapeError) as err:
        f.grad(**v)
    msg = str(err.value)
    assert re.search(r"\bm\b", msg) and "'XM'" in msg and "'V'" in msg


def test_empty_batch(batched):
    v = random_inputs(CASES["applyfunc_broadcast"], batch=0)
    value, (g_x, g_b, g_z) = batched.value_and_grad(**v)
    assert value.shape == (0, 3) and g_x.shape == (0, 3) and g_z.shape == (0, 3)
    np.testing.assert_array_equal(g_b, np.zeros((1, 3)))


def test_broadcastable_seed_is_accepted(linear):
    v = random_inputs(CASES["linear"])
    row = np.array([[1.0, -2.0]])
    for g, h in zip(linear.grad(**v, seed=row), linear.grad(**v, seed=np.repeat(row, 3, axis=0))):
        np.testing.assert_allclose(g, h, rtol=1e-13)


def test_wrong_seed_shape(linear):
    with pytest.raises(sg.ShapeError, match="seed"):
        linear.grad(**random_inputs(CASES["linear"]), seed=np.ones((2, 3)))


@pytest.fixture(scope="module")
def elements():
    return compiled("elements")


def test_constant_index_beyond_symbolic_dimension(elements):
    """X[3, 2] needs n >= 4: with n = 2 the call must fail, not read or write out of bounds."""
    v = random_inputs(CASES["elements"])
    # A view into a larger buffer, so an unchecked out-of-bounds read would stay in owned memory
    # (and would silently return a value computed from rows the caller did not pass).
    buffer = np.random.default_rng(6).normal(size=(6, 3))
    v["X"] = buffer[:2]
    with pytest.raises((sg.ShapeError, IndexError), match=r"\bn\b"):
        elements(**v)
    with pytest.raises((sg.ShapeError, IndexError), match=r"\bn\b"):
        elements.grad(**v)
    with pytest.raises((sg.ShapeError, IndexError), match=r"\bn\b"):
        elements.value_and_grad(**v, seed=2.0)


@pytest.mark.parametrize(
    "bad", ["abc", np.array([["a", "b"]] * 3), None, {"k": 1}, np.ones((3, 2), dtype=complex)]
)
def test_non_numeric_input(linear, bad):
    v = random_inputs(CASES["linear"])
    v["B"] = bad
    with pytest.raises(sg.InputError, match="'B'"):
        linear(**v)


def test_missing_and_unknown_inputs(linear):
    v = random_inputs(CASES["linear"])
    with pytest.raises(sg.InputError, match="C"):
        linear(**{k: a for k, a in v.items() if k != "C"})
    with pytest.raises(sg.InputError, match="Q"):
        linear(**v, Q=np.zeros((3, 3)))


def test_the_dict_form_reads_names_and_symbols_and_names_what_is_wrong(linear):
    """One dict of exactly the input names takes a shortcut; every other dict gets the checks."""
    v = random_inputs(CASES["linear"])
    expected = linear(**v)
    assert np.array_equal(linear(dict(v)), expected)
    by_symbol = {s: v[s.name] for s in linear.inputs}
    assert np.array_equal(linear(by_symbol), expected)
    assert np.array_equal(linear({**{s: v[s.name] for s in linear.inputs[:1]}, **v}), expected)
    first, *rest = linear.inputs
    swapped = {**{k: a for k, a in v.items() if k != first.name}, "Q": v[first.name]}
    with pytest.raises(sg.InputError, match="unknown input 'Q'"):
        linear(swapped)  # as many entries as inputs, one name wrong
    with pytest.raises(sg.InputError, match=f"missing input '{first.name}'"):
        linear({k: a for k, a in v.items() if k != first.name})
    with pytest.raises(sg.InputError, match="unknown input 'Q'"):
        linear({**v, "Q": 1.0})


def test_the_dict_form_of_a_model_with_no_inputs():
    f = sg.compile(sp.Integer(3), wrt=[])
    assert f({}) == f() == 3.0


# -- compile-time errors (raised before any Numba compile) ---------------------------------------
UNSUPPORTED = [
    (Trace(W.I), "Inverse"),
    (Trace(sp.Inverse(W) * A), "Inverse"),
    (sp.Determinant(W), "Determinant"),
    (sp.Determinant(W) * x, "Determinant"),
    (sp.Function("f")(x) + x, "f"),
    (Trace(W * sp.Function("g")(x)), "g"),
    (Trace(MatPow(W, x)), "MatPow"),
]
UNSUPPORTED_IDS = ["Inverse", "Inverse-class", "Determinant", "Determinant-times-x", "undefined-f",
                   "undefined-in-matrix", "MatPow-symbolic"]  # fmt: skip


@pytest.mark.parametrize("expr, name", UNSUPPORTED, ids=UNSUPPORTED_IDS)
def test_unsupported_expression_names_class(expr, name):
    with pytest.raises(sg.UnsupportedExpressionError) as err:
        sg.compile(expr)
    assert isinstance(err.value, sg.SymgradError)
    assert name in str(err.value)


def test_symbolic_index_into_matrix_symbol():
    with pytest.raises(sg.UnsupportedExpressionError) as err:
        sg.compile(A[i, 0] + x, wrt=[x])
    assert "index" in str(err.value) and "A[i, 0]" in str(err.value)


def test_symbolic_index_into_explicit_matrix():
    elem = sp.ImmutableMatrix(EXPLICIT)[i, 0]
    assert isinstance(elem, MatrixElement)
    with pytest.raises(sg.UnsupportedExpressionError, match="index"):
        sg.compile(elem * x, wrt=[x])
