"""The derived backward pass raised to SymPy: ``symgrad.explain`` and ``symgrad.ir.to_sympy``.

The raised equations, evaluated in order with ``sympy.lambdify``, must reproduce the compiled
values and gradients to float64 rounding; no subexpression may be repeated across equations;
a deep chain must give a listing of linear size; and a two-layer network must show the δ-rule in
matrix form. Each model is compiled once (few distinct graphs); hypothesis varies the values.
"""

import doctest
import importlib
import random
import time

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sympy import HadamardProduct, MatrixSymbol, OneMatrix, Trace
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.matexpr import MatrixElement

import symgrad as sg
from symgrad import nn
from symgrad.compiler.program import build_programs
from symgrad.explain import Equations, explain, forward_equations, gradient_equations
from symgrad.ir import ops_elementwise as ew
from symgrad.ir import to_sympy
from symgrad.ir.node import toposort
from symgrad.ir.ops_source import input_node
from symgrad.ir.program import flatten
from symgrad.testing.strategies import expressions, input_values

N = sp.Symbol("n", integer=True, positive=True)
DIMS = {N}
# Float64 rounding: the equations do the graph's operations, up to SymPy's merging of numeric
# coefficients (2*(x/(2n)) -> x/n), which moves a result by a few ulps.
RTOL = 1e-9


def _close(got, want) -> bool:
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
    return got.shape == want.shape and bool(np.all(np.abs(got - want) <= RTOL * scale))


def _check_against_compiled(f, eqs: Equations, values: dict) -> None:
    value, grads = f.value_and_grad(values)
    out = eqs.evaluate(values)
    assert _close(out["L"], value)
    for w, g in zip(f.wrt, grads):
        assert _close(out[f"dL/d{w.name}"], g), w


# -- the CSE property, checked independently of the implementation ------------------------------
def _exempt(e) -> bool:
    """Too small to name: atoms, constants, and one-step views of an atom (Wᵀ, -x, A[0, 1], 1·b).

    Conditions and Lambda bodies are not graph values.
    """
    if not isinstance(e, sp.Expr) or isinstance(e, sp.Lambda):
        return True
    if e.is_Atom or isinstance(e, (MatrixSymbol, OneMatrix, sp.ZeroMatrix, sp.Identity)):
        return True
    if not e.atoms(MatrixSymbol) and e.free_symbols <= DIMS:
        return True

    def atom(a):
        return a.is_Atom or isinstance(a, MatrixSymbol)

    if isinstance(e, (sp.Transpose, MatrixElement)):
        return atom(e.args[0])
    if isinstance(e, (sp.Mul, sp.MatMul)):
        factors = [a for a in e.args if a not in (-1, sp.S.NegativeOne)]
        factors = [a for a in factors if not isinstance(a, OneMatrix)]
        return len(factors) == 1 and atom(factors[0]) and len(e.args) <= 3
    return False


def _subexpressions(expr) -> set:
    out, stack = set(), [expr]
    while stack:
        e = stack.pop()
        if isinstance(e, sp.Lambda) or e in out:
            continue
        out.add(e)
        stack.extend(e.args)
    return {e for e in out if not _exempt(e)}


def _assert_cse(eqs: Equations) -> None:
    """Every non-atomic subexpression shared by two equations is a named intermediate."""
    names = set(eqs.symbols)
    first_seen: dict = {}
    for k, (_, rhs) in enumerate(eqs):
        for sub in _subexpressions(rhs):
            if sub in first_seen and first_seen[sub] != k:
                assert sub in names, f"{sub} repeated in equations {first_seen[sub]} and {k}"
            first_seen.setdefault(sub, k)


def _assert_well_formed(eqs: Equations, inputs) -> None:
    """Each equation uses only inputs, dimensions and earlier names."""
    known = set(inputs) | DIMS
    for sym, rhs in eqs:
        used = {a for a in rhs.free_symbols if not isinstance(a, sp.Dummy)}
        used |= rhs.atoms(MatrixSymbol)
        assert used <= known, (sym, used - known)
        known.add(sym)


# -- random scalar expressions ------------------------------------------------------------------
X_, Y_, Z_ = sp.symbols("x y z")


@settings(max_examples=10)
@given(expressions([X_, Y_, Z_], max_depth=3), st.data())
def test_scalar_equations_reproduce_compiled(expr, data):
    f = sg.compile(expr, wrt=[X_, Y_, Z_])
    eqs = gradient_equations(f)
    _assert_well_formed(eqs, [X_, Y_, Z_])
    _assert_cse(eqs)
    for _ in range(3):
        values = {s.name: v for s, v in data.draw(input_values([X_, Y_, Z_])).items()}
        _check_against_compiled(f, eqs, values)


def test_fused_bodies_do_not_repeat_formulas():
    # d/dx Max(x, y) = Heaviside(x - y) fuses a subtraction the forward pass also computes, and
    # atan' = 1/(1 + x**2) repeats the forward x**2: both become shared names.
    x, y = X_, Y_
    f = sg.compile(sp.Max(x, y) + sp.Abs(x - y) + sp.atan(x) + x**2 * y, wrt=[x, y])
    eqs = gradient_equations(f)
    _assert_cse(eqs)
    _check_against_compiled(f, eqs, {"x": 0.7, "y": -0.3})


# -- random small matrix models -----------------------------------------------------------------
def _mlp(layers: int, activation: str, seed: int):
    """A 1- or 2-layer MLP with squared loss and random sizes; returns (loss, wrt, shapes)."""
    rng = random.Random(seed)
    sizes = [rng.randint(1, 4) for _ in range(layers + 1)]
    X = MatrixSymbol("X", N, sizes[0])
    Y = MatrixSymbol("Y", N, sizes[-1])
    act = {"tanh": lambda z: z.applyfunc(sp.tanh), "sigmoid": nn.sigmoid}[activation]
    h, wrt = X, []
    for k in range(1, layers + 1):
        W = MatrixSymbol(f"W{k}", sizes[k - 1], sizes[k])
        b = MatrixSymbol(f"b{k}", 1, sizes[k])
        wrt += [W, b]
        z = h * W + OneMatrix(N, 1) * b
        h = act(z) if k < layers else z
    E = h - Y
    if activation == "tanh":
        loss = Trace(E.T * E) / (2 * N)
    else:
        loss = Trace(OneMatrix(sizes[-1], N) * HadamardProduct(E, E)) / (2 * N)
    return loss, wrt, [X, Y] + wrt


MODELS = {
    (layers, act): _mlp(layers, act, seed=10 * layers + len(act))
    for layers in (1, 2)
    for act in ("tanh", "sigmoid")
}
_compiled: dict = {}


def _model(key):
    if key not in _compiled:
        loss, wrt, symbols = MODELS[key]
        f = sg.compile(loss, wrt=wrt)
        _compiled[key] = (f, gradient_equations(f), symbols)
    return _compiled[key]


def _arrays(symbols, batch):
    strategies = {}
    for s in symbols:
        shape = tuple(int(d.subs(N, batch)) if isinstance(d, sp.Expr) else d for d in s.shape)
        elements = st.floats(-2, 2, allow_nan=False, allow_subnormal=False)
        strategies[s.name] = hnp.arrays(np.float64, shape, elements=elements)
    return st.fixed_dictionaries(strategies)


@pytest.mark.parametrize("key", sorted(MODELS))
@settings(max_examples=8)
@given(data=st.data())
def test_matrix_models_reproduce_compiled(key, data):
    f, eqs, symbols = _model(key)
    batch = data.draw(st.integers(1, 5), label="n")
    values = data.draw(_arrays(symbols, batch))
    _check_against_compiled(f, eqs, values)


@pytest.mark.parametrize("key", sorted(MODELS))
def test_matrix_models_are_cse_and_in_matrix_form(key):
    f, eqs, symbols = _model(key)
    _assert_well_formed(eqs, symbols)
    _assert_cse(eqs)
    for w in f.wrt:  # a gradient has its parameter's shape
        assert eqs[f"dL/d{w.name}"].shape == w.shape
    # Matrix form: no equation falls back to explicit entries or indexing.
    for _, rhs in eqs:
        assert not rhs.atoms(MatrixElement, sp.ImmutableMatrix, sp.Sum)


def test_softmax_cross_entropy_model():
    # The nn vocabulary: log-softmax lowers to a fused row op SymPy has no word for; it is
    # raised as a named call and still evaluates.
    X, W, Y = MatrixSymbol("X", N, 3), MatrixSymbol("W", 3, 2), MatrixSymbol("Y", N, 2)
    f = sg.compile(nn.cross_entropy(nn.leaky_relu(X * W), Y), wrt=[W])
    eqs = gradient_equations(f)
    _assert_well_formed(eqs, [X, W, Y])
    _assert_cse(eqs)
    assert "δ1" in eqs and eqs["dL/dW"] == sp.MatMul(sp.Transpose(X), _named(eqs, "δ1"))
    rng = np.random.default_rng(7)
    values = {
        "X": rng.normal(size=(4, 3)),
        "W": rng.normal(size=(3, 2)),
        "Y": np.eye(2)[[0, 1, 1, 0]],
    }
    _check_against_compiled(f, eqs, values)


# -- the δ-rule ---------------------------------------------------------------------------------
def _named(eqs: Equations, name: str):
    return next(sym for sym in eqs.symbols if sym.name == name)


def test_two_layer_network_shows_the_delta_rule():
    f, eqs, (X, Y, W1, b1, W2, b2) = _model((2, "tanh"))
    d1, d2, h1 = _named(eqs, "δ1"), _named(eqs, "δ2"), _named(eqs, "h1")

    # ∂L/∂W1 = Xᵀ·δ1, ∂L/∂b1 = 1ᵀ·δ1, ∂L/∂W2 = h1ᵀ·δ2, ∂L/∂b2 = 1ᵀ·δ2
    assert eqs["dL/dW1"] == sp.MatMul(sp.Transpose(X), d1)
    assert eqs["dL/dW2"] == sp.MatMul(sp.Transpose(h1), d2)
    assert eqs["dL/db1"] == sp.MatMul(OneMatrix(1, N), d1)
    assert eqs["dL/db2"] == sp.MatMul(OneMatrix(1, N), d2)

    # δ1 = (δ2·W2ᵀ) ∘ (1 - h1∘h1)
    delta1 = eqs["δ1"]
    assert isinstance(delta1, HadamardProduct)
    factors = list(delta1.args)
    assert sp.MatMul(d2, sp.Transpose(W2)) in factors
    (derivative,) = [a for a in factors if a != sp.MatMul(d2, sp.Transpose(W2))]
    assert isinstance(derivative, sp.MatAdd)
    assert OneMatrix(*h1.shape) in derivative.args
    assert sp.MatMul(-1, HadamardProduct(h1, h1)) in derivative.args

    # h1 = tanh(X·W1 + 1·b1), and δ2 = (h1·W2 + 1·b2 - Y)/n is ∂L/∂P for P = h1·W2 + 1·b2.
    assert isinstance(eqs["h1"], ElementwiseApplyFunction)
    delta2 = eqs["δ2"]
    assert isinstance(delta2, sp.MatMul)
    coeff = sp.Mul(*[a for a in delta2.args if not a.is_Matrix])
    (z2,) = [a for a in delta2.args if a.is_Matrix]
    assert sp.simplify(coeff * N) == 1
    assert isinstance(eqs[z2], sp.MatAdd)
    assert {sp.MatMul(h1, W2), sp.MatMul(-1, Y)} <= set(eqs[z2].args)
    # The backward pass comes after the forward pass, δ2 before δ1.
    order = eqs.names
    assert order.index("L") < order.index("δ2") < order.index("δ1") < order.index("dL/dW1")


def test_explain_text_and_latex():
    f, eqs, _ = _model((2, "tanh"))
    text = explain(f)
    lines = text.splitlines()
    assert lines[0] == "forward pass:" and "backward pass:" in lines
    assert len(lines) == len(eqs) + 2
    assert all(line.startswith("  ") and " = " in line for line in lines if line[0] == " ")
    assert str(eqs).count("\n") == len(eqs) - 1
    latex = eqs.to_latex()
    assert latex.startswith("\\begin{aligned}") and latex.endswith("\\end{aligned}")
    for fragment in ("\\delta_{1}", "\\frac{\\partial L}{\\partial W_{1}}", "\\circ", "^{T}"):
        assert fragment in latex
    assert eqs._repr_latex_().startswith("$")


def test_equations_container():
    f, eqs, _ = _model((1, "tanh"))
    pairs = list(eqs)
    assert len(pairs) == len(eqs) and all(len(p) == 2 for p in pairs)
    assert list(eqs.as_dict()) == eqs.symbols
    assert eqs["dL/dW1"] == eqs["∂L/∂W1"] == eqs[_named(eqs, "dL/dW1")]
    assert eqs["delta1"] == eqs["δ1"]
    assert len(eqs.forward) + len(eqs.backward) == len(eqs)
    assert {e.section for e in eqs.forward.equations} == {"forward"}
    with pytest.raises(KeyError):
        eqs["no such name"]


def test_forward_equations_and_graph_labels():
    f, eqs, symbols = _model((2, "sigmoid"))
    fwd = forward_equations(f)
    assert "h1" in fwd.names and fwd.names[-1] == "L"
    values = {
        s.name: np.linspace(-1, 1, int(np.prod([3 if d == N else d for d in s.shape]))).reshape(
            [3 if d == N else d for d in s.shape]
        )
        for s in symbols
    }
    assert _close(fwd.evaluate(values)["L"], f(values))
    # Labels for a drawing: every named backward node of value_and_grad, by equation name.
    program = f.program("value_and_grad")
    in_graph = set(toposort(flatten(program.result)))
    labels = eqs.labels()
    assert "δ1" in labels.values() and set(labels) <= in_graph
    assert eqs.backward_nodes() <= set(labels)


# -- deep chains --------------------------------------------------------------------------------
def _chain(depth: int):
    e = X_
    for _ in range(depth):
        e = sp.sin(e)
    return e


def test_deep_chain_listing_is_linear():
    sizes = {}
    for depth in (100, 200):
        ps = build_programs([_chain(depth)], [X_])
        start = time.perf_counter()
        eqs = gradient_equations(ps)
        text = str(eqs)
        elapsed = time.perf_counter() - start
        assert elapsed < 30, elapsed
        # h1..h(d-1), L, δ2..δd, ∂L/∂x: two equations per level.
        assert len(eqs) <= 2 * depth + 2
        sizes[depth] = len(text)
    assert sizes[200] < 2.3 * sizes[100]
    assert sizes[200] < 60 * 200  # a few dozen characters per level


def test_deep_chain_values():
    depth = 200
    f = sg.compile(_chain(depth), wrt=[X_])
    eqs = gradient_equations(f)
    _assert_cse(eqs)
    _check_against_compiled(f, eqs, {"x": 0.7})


# -- raising details ----------------------------------------------------------------------------
def test_raise_graph_names_shared_nodes_only():
    x = X_
    vg = next(p for p in build_programs([sp.exp(sp.sin(x)) * x], [x]).programs if p.name == "value")
    raised = to_sympy.raise_graph(vg.result, {"x": x})
    assert raised.assignments == []  # nothing is shared in the forward pass
    assert raised.outputs == [x * sp.exp(sp.sin(x))]
    assert to_sympy.to_sympy(vg.result, {"x": x}) == raised.outputs


def test_raise_keeps_function_structure():
    # For a real x SymPy would evaluate log(exp(x)) to x; the raised form keeps what the graph
    # computes (which overflows for large x).
    x = sp.Symbol("x", real=True)
    node = ew.apply(sp.log(ew.a0), [ew.apply(sp.exp(ew.a0), [input_node("x")])])
    (out,) = to_sympy.to_sympy(node, {"x": x})
    assert isinstance(out, sp.log) and out.args[0] == sp.exp(x)


def test_module_examples():
    # By name: symgrad may re-export the function explain under the module's name.
    explain_module = importlib.import_module("symgrad.explain")
    for module in (explain_module, to_sympy):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, module.__name__
