"""Property tests of the compiler on random scalar expression trees (``symgrad.testing``).

Each distinct expression is a cold Numba compile (1-3 s), so the budget is counted in trees:
about 25 random trees in the whole file (``max_examples`` per test below), and inside each example
hypothesis draws many input dicts for the *same* compiled function. Shrinking would recompile at
every step, so it is off; set ``SYMGRAD_SHRINK=1`` to shrink a failure into a minimal tree, and
``SYMGRAD_PROPERTY_SCALE=k`` to draw k times as many trees.

What is compared, for every tree and input draw:

- the value against ``sympy.lambdify``, through the dict and the keyword call forms;
- ``f.grad``, ``f.value_and_grad`` and ``f.jvp`` against ``sympy.diff`` (real symbols) and against
  central finite differences of ``f`` itself (``check_grad_sympy`` and ``check_grad``);
- float32 compiles against float64 compiles of the same tree, within float32 tolerance.
"""

from __future__ import annotations

import doctest
import os

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import symgrad as sg
from symgrad.testing import (
    NONSMOOTH_FUNCTIONS,
    SMOOTH_FUNCTIONS,
    SPECIAL_FUNCTIONS,
    arrays_for,
    check_grad,
    check_grad_sympy,
    expressions,
    input_values,
    kink_distance,
)
from symgrad.testing import check as check_module

x, y, z = sp.symbols("x y z")
SYMBOLS = [x, y, z]


def rich(strategy):
    """Trees with two or more symbols: a compile is too dear to spend on f(x) = 2*x."""
    return strategy.filter(lambda e: len(e.free_symbols) >= 2)


_PHASES = [Phase.explicit, Phase.generate]
if os.environ.get("SYMGRAD_SHRINK"):
    _PHASES.append(Phase.shrink)
# More trees for a long bug hunt, e.g. SYMGRAD_PROPERTY_SCALE=10 (still deterministic).
_SCALE = int(os.environ.get("SYMGRAD_PROPERTY_SCALE", "1"))


def trees(n: int) -> settings:
    """Settings for a test that compiles ``n`` random trees (one per example)."""
    return settings(
        max_examples=n * _SCALE,
        derandomize=True,
        database=None,
        deadline=None,
        phases=_PHASES,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def _free(expr: sp.Expr) -> list[sp.Symbol]:
    return sorted(expr.free_symbols, key=lambda s: s.name)


def _reference_value(expr: sp.Expr, values: dict) -> np.ndarray:
    real = {s: sp.Symbol(s.name, real=True) for s in expr.free_symbols}
    names = sorted(real, key=lambda s: s.name)
    fn = check_module._lambdify([real[s] for s in names], expr.xreplace(real))
    return np.asarray(fn(*(values[s] for s in names)), dtype=np.float64)


def _by_name(values: dict) -> dict[str, float]:
    return {s.name: float(v) for s, v in values.items()}


def _check_point(f, expr, wrt, values) -> None:
    """Everything the compiled ``f`` must get right at one input point."""
    expected = _reference_value(expr, values)
    got = np.float64(f(**_by_name(values)))  # keyword floats: symgrad's fast path
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9, err_msg=str(expr))
    check_grad_sympy(expr, wrt, values, f=f)  # value, grad, value_and_grad, jvp vs sympy.diff
    check_grad(f, values)  # the same against central differences


@trees(7)
@given(st.data())
def test_smooth_trees_match_sympy_and_finite_differences(data):
    expr = data.draw(rich(expressions(SYMBOLS, max_depth=3, min_depth=2)), label="expr")
    inputs = _free(expr)
    # Any order, and not always every input: the others are plain (non-differentiated) inputs.
    order = data.draw(st.permutations(inputs), label="wrt order")
    wrt = order[: data.draw(st.integers(1, len(order)), label="len(wrt)")]
    f = sg.compile(expr, wrt=wrt)
    assert f.wrt == wrt and set(f.inputs) == set(inputs)
    for _ in range(20):
        _check_point(f, expr, wrt, data.draw(input_values(inputs), label="values"))


@trees(4)
@given(st.data())
def test_nonsmooth_trees_away_from_kinks(data):
    functions = SMOOTH_FUNCTIONS | NONSMOOTH_FUNCTIONS
    strategy = expressions(SYMBOLS, max_depth=3, min_depth=2, functions=functions)
    expr = data.draw(rich(strategy), label="expr")
    wrt = _free(expr)
    f = sg.compile(expr, wrt=wrt)
    for _ in range(20):
        values = data.draw(input_values(wrt), label="values")
        # Finite differences (and one-sided limits) disagree at a kink: skip the rare draws
        # within 1e-3 (linearised, in input space) of one.
        if kink_distance(expr, values) > 1e-3:
            _check_point(f, expr, wrt, values)


@trees(3)
@given(st.data())
def test_special_function_trees(data):
    functions = SPECIAL_FUNCTIONS | {"erf", "erfc", "exp", "log", "sin"}
    strategy = expressions(SYMBOLS, max_depth=3, min_depth=2, functions=functions).filter(
        lambda e: e.has(sp.gamma, sp.loggamma, sp.erf, sp.erfc)
    )
    expr = data.draw(strategy, label="expr")
    wrt = _free(expr)
    f = sg.compile(expr, wrt=wrt)
    for _ in range(15):
        _check_point(f, expr, wrt, data.draw(input_values(wrt), label="values"))


# float32 against float64: both see the same float32-representable inputs, so the difference is
# the float32 code's own rounding. Values are moderate by construction (|v| <~ 30), so an
# absolute-or-relative bound of 2e-3 is ~1e4 float32 ulps of headroom for cancellation.
F32_TOL = 2e-3


def _assert_f32_close(a32, a64, what: str) -> None:
    a32, a64 = np.asarray(a32, dtype=np.float64), np.asarray(a64, dtype=np.float64)
    scale = np.maximum(1.0, np.abs(a64))
    err = np.max(np.abs(a32 - a64) / scale, initial=0.0)
    assert err <= F32_TOL, f"{what}: float32 {a32} vs float64 {a64} (relative error {err:.3g})"


@trees(4)
@given(st.data())
def test_float32_within_float32_tolerance_of_float64(data):
    expr = data.draw(rich(expressions(SYMBOLS, max_depth=3, min_depth=2)), label="expr")
    wrt = _free(expr)
    f64 = sg.compile(expr, wrt=wrt, dtype="float64")
    f32 = sg.compile(expr, wrt=wrt, dtype="float32")
    assert f32.dtype == "float32"
    for _ in range(15):
        values = data.draw(input_values(wrt, dtype="float32"), label="values")
        v32, g32 = f32.value_and_grad(values)
        v64, g64 = f64.value_and_grad(values)
        _assert_f32_close(v32, v64, f"value of {expr}")
        for s, a, b in zip(wrt, g32, g64, strict=True):
            _assert_f32_close(a, b, f"d/d{s} of {expr}")
        tangents = {s: 1.0 for s in wrt}
        _assert_f32_close(
            f32.jvp(tangents, values)[1], f64.jvp(tangents, values)[1], f"jvp of {expr}"
        )
        # And the float32 function on its own, with float32 finite-difference defaults.
        check_grad(f32, values)


@trees(2)
@given(st.data())
def test_scalar_symbols_given_arrays(data):
    """Arrays for scalar symbols: elementwise values, gradients of sum(cotangent * value)."""
    expr = data.draw(rich(expressions([x, y], max_depth=3, min_depth=2)), label="expr")
    wrt = _free(expr)
    f = sg.compile(expr, wrt=wrt)
    # Shapes that broadcast together, including a scalar and 2-D arrays. The compiled function
    # builds one vectorised variant per set of array inputs, so these cost two more compiles.
    for shapes in [((5,), ()), ((2, 3), (3,)), ((4, 1), (1, 3))]:
        for _ in range(2):
            values = {
                s: data.draw(arrays_for(shape), label=s.name)
                for s, shape in zip(wrt, shapes, strict=True)
            }
            out_shape = np.broadcast_shapes(*shapes)
            np.testing.assert_allclose(
                f(values),
                np.broadcast_to(_reference_value(expr, values), out_shape),
                rtol=1e-9,
                atol=1e-9,
            )
            cotangent = np.linspace(-1.0, 2.0, int(np.prod(out_shape))).reshape(out_shape)
            # Reverse mode first: a failure then says whether only forward mode is broken.
            check_grad_sympy(expr, wrt, values, f=f, cotangent=cotangent, mode="reverse")
            check_grad(f, values, cotangent=cotangent, mode="reverse")
            check_grad_sympy(expr, wrt, values, f=f, mode="forward")
            check_grad(f, values, mode="forward")


@settings(max_examples=10, derandomize=True, database=None, deadline=None)
@given(st.floats(-2, 2, allow_subnormal=False))
def test_exact_ties_follow_sympy(t):
    """At x == y: d Max = d Min = 1/2 each (Heaviside(0) = 1/2); d|x - y| = sign(0) = 0."""
    f = sg.compile(sp.Max(x, y) + 2 * sp.Min(x, y) + 3 * sp.Abs(x - y), wrt=[x, y])
    value, (gx, gy) = f.value_and_grad(x=t, y=t)
    assert value == pytest.approx(3 * t)
    assert (gx, gy) == (pytest.approx(1.5), pytest.approx(1.5))
    _, jvp = f.jvp({x: 1.0}, x=t, y=t)
    assert jvp == pytest.approx(1.5)


@pytest.mark.slow
@trees(2)
@given(st.data())
def test_deep_trees(data):
    expr = data.draw(rich(expressions(SYMBOLS, max_depth=5, min_depth=3)), label="expr")
    wrt = _free(expr)
    f = sg.compile(expr, wrt=wrt)
    for _ in range(10):
        _check_point(f, expr, wrt, data.draw(input_values(wrt), label="values"))


@pytest.mark.slow
@trees(2)
@given(st.data())
def test_hessian_matches_sympy(data):
    expr = data.draw(rich(expressions([x, y], max_depth=2, min_depth=2)), label="expr")
    wrt = [x, y]
    H = sg.hessian(expr, wrt)
    real = {s: sp.Symbol(s.name, real=True) for s in wrt}
    expected_fn = check_module._lambdify(
        [real[s] for s in wrt], sp.hessian(expr.xreplace(real), [real[s] for s in wrt])
    )
    for _ in range(10):
        values = data.draw(input_values(wrt), label="values")
        got = H(**_by_name(values))
        expected = np.asarray(expected_fn(values[x], values[y]), dtype=np.float64)
        assert got.shape == (2, 2)
        np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-7, err_msg=str(expr))


def test_check_grad_docstring_example():
    outcome = doctest.testmod(check_module)
    assert outcome.attempted > 0 and outcome.failed == 0
