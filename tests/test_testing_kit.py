"""Tests of the testing kit itself (``symgrad.testing``), independent of the compiler.

The functions under check are fakes built from ``sympy.diff`` + ``sympy.lambdify``, with optional
deliberate errors, so these tests say whether the kit catches wrong derivatives and accepts right
ones, whatever state the compiler is in.
"""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from symgrad.testing import (
    ALL_FUNCTIONS,
    NONSMOOTH_FUNCTIONS,
    SMOOTH_FUNCTIONS,
    SPECIAL_FUNCTIONS,
    arrays_for,
    bounded_expressions,
    check_grad,
    check_grad_sympy,
    expressions,
    input_values,
    kink_distance,
)
from symgrad.testing import strategies as strategies_module
from symgrad.testing.check import _lambdify

x, y, z = sp.symbols("x y z")
X = sp.Symbol("X")  # a scalar symbol that the tests feed with 2-D arrays (elementwise)

# Generation-only phases: a failing expression example is reported as drawn. Shrinking these
# examples (each one runs sympy.diff and lambdify) can take minutes.
KIT = settings(
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow],
)


class FakeCompiled:
    """Stand-in for ``symgrad.compile(expr, wrt, dtype)``, from sympy.diff + lambdify.

    ``grad_error={name: (index, delta)}`` adds ``delta`` to one gradient element,
    ``jvp_error={name: factor}`` scales that symbol's contribution to the JVP by ``1 + factor``,
    ``vg_error`` does the same as ``grad_error`` for ``value_and_grad`` only, and
    ``ignore_seed`` drops the output cotangent. float32 is emulated by rounding inputs and
    outputs (the arithmetic itself is float64).
    """

    def __init__(
        self,
        expr,
        wrt,
        dtype="float64",
        *,
        grad_error=None,
        jvp_error=None,
        vg_error=None,
        ignore_seed=False,
    ):
        self.expr = expr
        self.wrt = list(wrt)
        self.inputs = sorted(expr.free_symbols | set(wrt), key=lambda s: s.name)
        self.dtype = dtype
        real = {s: sp.Symbol(s.name, real=True) for s in self.inputs}
        args = [real[s] for s in self.inputs]
        self._value = _lambdify(args, expr.xreplace(real))
        self._partials = [_lambdify(args, sp.diff(expr.xreplace(real), real[s])) for s in self.wrt]
        self.grad_error = grad_error or {}
        self.jvp_error = jvp_error or {}
        self.vg_error = vg_error or {}
        self.ignore_seed = ignore_seed
        self.calls = 0

    def _args(self, args, kwargs):
        given = dict(args[0]) if args else {}
        given.update(kwargs)
        by_name = {getattr(k, "name", k): v for k, v in given.items()}
        vals = [np.asarray(by_name[s.name], dtype=np.float64) for s in self.inputs]
        vals = [v.astype(self.dtype).astype(np.float64) for v in vals]
        return vals, np.broadcast_shapes(*(v.shape for v in vals))

    def _out(self, value, shape):
        value = np.broadcast_to(np.asarray(value, dtype=np.float64), shape).astype(self.dtype)
        return value[()] if value.ndim == 0 else value

    def __call__(self, *args, **kwargs):
        self.calls += 1
        vals, shape = self._args(args, kwargs)
        return self._out(self._value(*vals), shape)

    def value_and_grad(self, *args, seed=None, **kwargs):
        vals, shape = self._args(args, kwargs)
        cot = np.ones(shape) if seed is None or self.ignore_seed else np.asarray(seed)
        grads = []
        for s, partial in zip(self.wrt, self._partials, strict=True):
            v = vals[self.inputs.index(s)]
            full = np.broadcast_to(partial(*vals), shape) * cot
            g = np.array(full.sum(axis=tuple(range(full.ndim - v.ndim))).reshape(v.shape))
            for errors in (self.grad_error, self.vg_error):
                if s.name in errors:
                    index, delta = errors[s.name]
                    g[index] += delta
            grads.append(self._out(g, v.shape))
        return self._out(self._value(*vals), shape), tuple(grads)

    def grad(self, *args, seed=None, **kwargs):
        # Like symgrad: grad is value_and_grad's second half, but only via the dict form here so
        # that vg_error shows up as a disagreement between the two call forms.
        saved, self.vg_error = self.vg_error, {}
        try:
            return self.value_and_grad(*args, seed=seed, **kwargs)[1]
        finally:
            self.vg_error = saved

    def jvp(self, tangents, *args, **kwargs):
        vals, shape = self._args(args, kwargs)
        by_name = {getattr(k, "name", k): np.asarray(v) for k, v in tangents.items()}
        deriv = np.zeros(shape)
        for s, partial in zip(self.wrt, self._partials, strict=True):
            if s.name in by_name:
                term = np.broadcast_to(partial(*vals), shape) * by_name[s.name]
                deriv = deriv + term * (1.0 + self.jvp_error.get(s.name, 0.0))
        return self._out(self._value(*vals), shape), self._out(deriv, shape)


# --- check_grad ---------------------------------------------------------------------------------


def test_check_grad_passes_on_correct_function():
    f = FakeCompiled(sp.sin(x) * sp.exp(y) + x**3, [x, y])
    result = check_grad(f, {x: 0.3, "y": -1.2})
    assert set(result.max_error) == {"x", "y"}
    assert result[x] < 1e-7 and result["y"] < 1e-7
    assert set(result.max_error_by_mode) == {"value", "reverse", "forward"}
    assert result.reference == "finite differences" and result.eps == 1e-6


def test_check_grad_reports_wrong_reverse_gradient():
    f = FakeCompiled(sp.sin(x) * y, [x, y], grad_error={"x": ((), 0.01)})
    with pytest.raises(AssertionError) as info:
        check_grad(f, {x: 0.5, y: 2.0})
    message = str(info.value)
    analytic = 2.0 * math.cos(0.5) + 0.01
    assert "[reverse (f.grad)] symbol 'x', element ()" in message
    assert f"analytic={analytic:.10g}" in message
    assert f"finite differences={2.0 * math.cos(0.5):.6f}" in message
    assert "'y'" not in message  # y's gradient is right


def test_check_grad_names_the_element_of_an_array_input():
    f = FakeCompiled(sp.sin(X) * y, [X, y], grad_error={"X": ((1, 2), -0.5)})
    values = np.linspace(-1.0, 1.0, 12).reshape(3, 4)
    with pytest.raises(AssertionError, match=r"symbol 'X', element \(1, 2\)"):
        check_grad(f, {X: values, y: 0.7}, mode="reverse")


def test_check_grad_forward_mode_only_checks_jvp():
    f = FakeCompiled(sp.exp(x) * y, [x, y], jvp_error={"y": 1e-3})
    check_grad(f, {x: 0.1, y: 0.2}, mode="reverse")
    with pytest.raises(AssertionError) as info:
        check_grad(f, {x: 0.1, y: 0.2}, mode="forward")
    assert "[forward (f.jvp)] tangent along symbol 'y', element ()" in str(info.value)


def test_check_grad_uses_random_directions_for_large_inputs():
    values = np.linspace(-1.5, 1.5, 100).reshape(10, 10)
    check_grad(FakeCompiled(sp.tanh(X) * y, [X, y]), {X: values, y: 0.3})
    f = FakeCompiled(sp.tanh(X) * y, [X, y], jvp_error={"X": 1e-2})
    with pytest.raises(AssertionError, match=r"random direction #\d \(seed=None\)"):
        check_grad(f, {X: values, y: 0.3}, mode="forward")


def test_check_grad_samples_elements_of_very_large_inputs():
    values = np.linspace(-1.0, 1.0, 600)
    f = FakeCompiled(X**2, [X])
    check_grad(f, {X: values}, mode="reverse", seed=3)
    assert f.calls < 4 * 600  # 4 calls for each of 512 sampled elements, not all 600
    # One wrong element is caught, by the sample or by <grad, v> along random directions.
    wrong = FakeCompiled(X**2, [X], grad_error={"X": ((7,), 1.0)})
    with pytest.raises(AssertionError):
        check_grad(wrong, {X: values}, mode="reverse", seed=3)


def test_check_grad_float32_uses_looser_defaults():
    f = FakeCompiled(sp.log(x**2 + 1) * sp.cos(y), [x, y], dtype="float32")
    result = check_grad(f, {x: 1.3, y: -0.4})
    assert result.rtol == 2e-3 and result.eps == 5e-3
    wrong = FakeCompiled(
        sp.log(x**2 + 1) * sp.cos(y), [x, y], dtype="float32", grad_error={"y": ((), 0.05)}
    )
    with pytest.raises(AssertionError, match="'y'"):
        check_grad(wrong, {x: 1.3, y: -0.4})


def test_check_grad_uses_the_cotangent():
    values = np.array([0.3, -0.8, 1.1])
    cot = np.array([1.0, -2.0, 0.5])
    check_grad(FakeCompiled(sp.sin(X) * y, [X, y]), {X: values, y: 1.5}, cotangent=cot)
    with pytest.raises(AssertionError, match="'y'"):
        f = FakeCompiled(sp.sin(X) * y, [X, y], ignore_seed=True)
        check_grad(f, {X: values, y: 1.5}, cotangent=cot, mode="reverse")


def test_check_grad_compares_value_and_grad_with_grad():
    f = FakeCompiled(x * y, [x, y], vg_error={"x": ((), 1e-3)})
    with pytest.raises(
        AssertionError, match=r"\[reverse \(f.value_and_grad\)\] gradient vs f.grad"
    ):
        check_grad(f, {x: 1.0, y: 2.0})


def test_check_grad_subset_of_wrt_and_keys_by_name():
    f = FakeCompiled(x * y, [x, y], grad_error={"x": ((), 1.0)})
    result = check_grad(f, {"x": 1.0, "y": 2.0}, wrt=[y])
    assert set(result.max_error) == {"y"}
    with pytest.raises(ValueError, match="not among"):
        check_grad(f, {"x": 1.0, "y": 2.0}, wrt=[z])


def test_check_grad_explains_a_non_finite_difference():
    # sqrt(x) at 1e-7: the lower point x - h is negative, so the difference quotient is NaN.
    f = FakeCompiled(sp.sqrt(x), [x])
    with np.errstate(invalid="ignore"), pytest.raises(AssertionError, match="not finite"):
        check_grad(f, {x: 1e-7})


def test_check_grad_rejects_a_bad_mode():
    with pytest.raises(ValueError, match="mode"):
        check_grad(FakeCompiled(x, [x]), {x: 1.0}, mode="sideways")


# --- check_grad_sympy ---------------------------------------------------------------------------


def test_check_grad_sympy_passes_and_catches_a_wrong_derivative():
    expr = sp.atan(x * y) + sp.exp(-(x**2))
    check_grad_sympy(expr, [x, y], {x: 0.4, y: -1.3}, f=FakeCompiled(expr, [x, y]))
    wrong = FakeCompiled(expr, [x, y], grad_error={"y": ((), 1e-5)})
    with pytest.raises(AssertionError) as info:
        check_grad_sympy(expr, [x, y], {x: 0.4, y: -1.3}, f=wrong)
    message = str(info.value)
    assert "against sympy" in message and "[reverse (f.grad)] symbol 'y'" in message
    wrong_jvp = FakeCompiled(expr, [x, y], jvp_error={"x": 1e-5})
    check_grad_sympy(expr, [x, y], {x: 0.4, y: -1.3}, f=wrong_jvp, mode="reverse")
    with pytest.raises(AssertionError, match=r"\[forward \(f.jvp\)\] tangent along symbol 'x'"):
        check_grad_sympy(expr, [x, y], {x: 0.4, y: -1.3}, f=wrong_jvp)


def test_check_grad_sympy_treats_symbols_as_real():
    # With complex symbols sympy's d|x|/dx involves re/im parts; symgrad means sign(x).
    expr = sp.Abs(x) * y + sp.Heaviside(x - 1) * x
    f = FakeCompiled(expr, [x, y])
    check_grad_sympy(expr, [x, y], {x: -0.5, y: 2.0}, f=f)
    check_grad_sympy(expr, [x, y], {x: 1.5, y: 2.0}, f=f)
    wrong = FakeCompiled(sp.Abs(x) * y + sp.Heaviside(x - 1) * x + x * 1e-4, [x, y])
    with pytest.raises(AssertionError, match="value"):
        check_grad_sympy(expr, [x, y], {x: -0.5, y: 2.0}, f=wrong)


def test_check_grad_sympy_with_arrays_for_scalar_symbols():
    expr = sp.sin(x) * y**2
    xs = np.linspace(-1.0, 1.0, 8).reshape(2, 4)
    cot = np.arange(8.0).reshape(2, 4)
    f = FakeCompiled(expr, [x, y])
    result = check_grad_sympy(expr, [x, y], {x: xs, y: 0.5}, f=f, cotangent=cot)
    assert result.reference == "sympy"
    with pytest.raises(AssertionError):
        bad = FakeCompiled(expr, [x, y], ignore_seed=True)
        check_grad_sympy(expr, [x, y], {x: xs, y: 0.5}, f=bad, cotangent=cot)


def test_check_grad_sympy_rejects_matrix_expressions():
    A = sp.MatrixSymbol("A", 2, 2)
    with pytest.raises(TypeError, match="scalar"):
        check_grad_sympy(A[0, 0] * x, [x], {x: 1.0, A: np.eye(2)}, f=FakeCompiled(x, [x]))


# --- strategies ---------------------------------------------------------------------------------


def _real_lambdas(expr):
    names = sorted(expr.free_symbols, key=lambda s: s.name)
    real = {s: sp.Symbol(s.name, real=True) for s in names}
    args = [real[s] for s in names]
    body = expr.xreplace(real)
    return names, _lambdify(args, body), [_lambdify(args, sp.diff(body, a)) for a in args]


def _grid(n_symbols, lo=-2.0, hi=2.0, n=40, seed=0):
    """Points including the corners of the range, where domain problems show first."""
    pts = np.random.default_rng(seed).uniform(lo, hi, size=(n_symbols, n))
    pts[:, 0], pts[:, 1] = lo, hi
    pts[:, 2] = min(max(0.0, lo), hi)
    return pts


@settings(KIT, max_examples=40)
@given(st.data())
def test_drawn_expressions_are_finite_and_bounded(data):
    functions = data.draw(
        st.sampled_from([None, SMOOTH_FUNCTIONS | SPECIAL_FUNCTIONS, ALL_FUNCTIONS]),
        label="functions",
    )
    expr, (lo, hi) = data.draw(bounded_expressions([x, y, z], 3, functions), label="expr")
    names, value, partials = _real_lambdas(expr)
    pts = _grid(len(names))
    with np.errstate(all="ignore"):
        v = np.broadcast_to(value(*pts), pts.shape[1:])
        grads = [np.broadcast_to(p(*pts), pts.shape[1:]) for p in partials]
    assert np.all(np.isfinite(v)), expr
    assert np.all((v >= lo - 1e-9) & (v <= hi + 1e-9)), (expr, lo, hi)
    assert lo >= -1e3 and hi <= 1e3  # moderate magnitudes
    for g in grads:
        assert np.all(np.isfinite(g)), expr
        assert np.max(np.abs(g)) < 1e4, expr


@settings(KIT, max_examples=25)
@given(expressions([x, y], max_depth=2, min_value=0.5, max_value=5.0))
def test_domain_guarantee_follows_the_value_range(expr):
    names, value, _ = _real_lambdas(expr)
    pts = _grid(len(names), 0.5, 5.0)
    with np.errstate(all="ignore"):
        assert np.all(np.isfinite(value(*pts))), expr


@settings(KIT, max_examples=40)
@given(st.data())
def test_vocabulary_is_respected(data):
    chosen = data.draw(st.sets(st.sampled_from(sorted(ALL_FUNCTIONS)), max_size=4))
    expr = data.draw(expressions([x, y], max_depth=3, functions=chosen))
    # SymPy spells sqrt as a power and may fold e.g. Min into Max; those aside, nothing else.
    used = {type(f).__name__ for f in expr.atoms(sp.Function)}
    allowed = set(chosen) | ({"Max", "Min"} if chosen & {"Max", "Min"} else set())
    assert used <= allowed, (expr, chosen)
    assert expr.free_symbols and expr.free_symbols <= {x, y}


@settings(KIT, max_examples=40)
@given(expressions([x, y, z], max_depth=3))
def test_default_vocabulary_is_smooth(expr):
    assert not expr.has(sp.Abs, sp.sign, sp.Heaviside, sp.Max, sp.Min, sp.Piecewise)


def test_unknown_function_names_are_rejected():
    with pytest.raises(ValueError, match="unknown function"):
        expressions([x], functions={"sin", "frobnicate"})
    with pytest.raises(TypeError):
        expressions([sp.MatrixSymbol("A", 2, 2)])


def test_functions_may_be_given_as_sympy_classes():
    strategy = expressions([x], functions=[sp.sin, sp.exp])
    assert strategy is not None


@settings(KIT, max_examples=50)
@given(input_values([x, y], -1.5, 0.25, dtype="float32"))
def test_input_values_are_in_range_and_representable(values):
    assert set(values) == {x, y}
    for v in values.values():
        assert isinstance(v, float) and -1.5 <= v <= 0.25
        assert float(np.float32(v)) == v


@settings(KIT, max_examples=20)
@given(st.data())
def test_input_values_for_matrix_symbols(data):
    n = sp.Symbol("n", integer=True, positive=True)
    W = sp.MatrixSymbol("W", n, 3)
    values = data.draw(input_values([W, x], dims={"n": 4}))
    assert values[W].shape == (4, 3) and values[W].dtype == np.float64
    assert np.all(np.abs(values[W]) <= 2.0) and isinstance(values[x], float)
    arr = data.draw(arrays_for((2, n), dims={n: 5}, dtype="float32", min_value=0, max_value=1))
    assert arr.shape == (2, 5) and arr.dtype == np.float32 and np.all((arr >= 0) & (arr <= 1))


def test_arrays_for_needs_sizes_of_symbolic_dimensions():
    with pytest.raises(ValueError, match="dims="):
        arrays_for(sp.MatrixSymbol("W", sp.Symbol("n"), 3))


def test_kink_distance():
    assert kink_distance(sp.Abs(2 * x - 1), {x: 0.75}) == pytest.approx(0.25)
    assert kink_distance(sp.Max(x, y), {"x": 1.0, "y": 1.5}) == pytest.approx(0.25)
    assert kink_distance(sp.Max(x, y), {x: 1.0, y: 1.0}) == 0.0
    assert kink_distance(sp.sin(x) * y, {x: 0.0, y: 0.0}) == math.inf
    pw = sp.Piecewise((x, y < sp.Rational(1, 2)), (x**2, True))
    assert kink_distance(pw, {x: 0.0, y: 0.4}) == pytest.approx(0.1)
    assert kink_distance(sp.Heaviside(x), {x: np.array([-0.3, 0.1, 2.0])}) == pytest.approx(0.1)


@settings(KIT, max_examples=15)
@given(st.data())
def test_check_grad_accepts_correct_derivatives_of_drawn_expressions(data):
    """The finite-difference tolerances are right for what the strategies draw.

    A failure here is a false alarm of the kit, not of any function under check: the fake's
    derivatives are sympy's. This is what lets a compiler property test blame the compiler.
    """
    functions = data.draw(st.sampled_from([None, SMOOTH_FUNCTIONS | SPECIAL_FUNCTIONS]))
    expr = data.draw(expressions([x, y, z], 3, functions, min_depth=2), label="expr")
    wrt = sorted(expr.free_symbols, key=lambda s: s.name)
    for dtype in ("float64", "float32"):
        f = FakeCompiled(expr, wrt, dtype=dtype)
        for _ in range(3):
            values = data.draw(input_values(wrt, dtype=dtype), label="values")
            check_grad(f, values)
            check_grad_sympy(expr, wrt, values, f=f)
        # An array for the first symbol: elementwise outputs, forward mode per output element.
        values[wrt[0]] = data.draw(arrays_for((4,), dtype=dtype), label="array")
        check_grad(f, values, cotangent=np.linspace(-1.0, 1.0, 4))


@settings(KIT, max_examples=10)
@given(st.data())
def test_kink_distance_keeps_finite_differences_valid(data):
    expr = data.draw(expressions([x, y], 2, SMOOTH_FUNCTIONS | NONSMOOTH_FUNCTIONS), label="expr")
    wrt = sorted(expr.free_symbols, key=lambda s: s.name)
    f = FakeCompiled(expr, wrt)
    for _ in range(5):
        values = data.draw(input_values(wrt), label="values")
        if kink_distance(expr, values) < 1e-3:
            continue  # what a compiler test does too
        check_grad(f, values)


def test_strategies_docstring_examples():
    results = doctest.testmod(strategies_module, optionflags=doctest.ELLIPSIS)
    assert results.attempted > 0 and results.failed == 0
