"""Every elementwise function symgrad supports: value, gradient, forward mode, arrays, float32.

One table entry per function (``ENTRIES``): the expression and a hypothesis strategy for its inputs
that stays inside the function's domain and a margin away from its poles, kinks and jumps. Each
entry is compiled once (``compiled``), then hypothesis varies only the input values:

* the value matches a 40-digit mpmath evaluation of the same SymPy expression;
* each reverse-mode partial matches ``sympy.diff`` of a ``real=True`` twin of the expression
  (so d|x|/dx = sign(x)), also evaluated in mpmath, and central finite differences of the compiled
  function itself;
* forward mode (``f.jvp``) equals the reverse gradient;
* 1-D arrays for the symbols (the vectorised variant) give the elementwise scalar results.

A few representative functions are also compiled for float32 and checked against float64.
Non-differentiable points keep SymPy's meaning and are tested at exact ties with explicit values;
domain errors come back as nan/inf like NumPy instead of raising.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sympy.codegen.cfunctions import expm1, log1p

import symgrad as sg

x, y = sp.symbols("x y")
#: The real twins used for the SymPy reference (every symgrad symbol is treated as real).
xr, yr = sp.symbols("x y", real=True)
REAL = {x: xr, y: yr}

MAX_EXAMPLES = 30
ARRAY_EXAMPLES = 15

# Tolerances. Values and exact derivatives are compared with 40-digit mpmath references, so only
# the compiled code's own round-off remains; finite differences add truncation and cancellation.
VALUE_RTOL = 1e-12
VALUE_ATOL = 1e-15
SYMPY_RTOL = 1e-9  # relative to max(1, |analytic|, |reference|)
FD_STEP = 1e-6  # relative to max(1, |x|)
FD_RTOL = 1e-5  # relative to max(1, |analytic|, |numeric|)
JVP_RTOL = 1e-12
ARRAY_RTOL = 1e-13
F32_RTOL = 4e-6
F32_ATOL = 2e-6


# ------------------------------------------------------------------------------------------------
# Input domains: each is a strategy of ``{symbol: float}``.


def interval(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def union(*intervals: tuple[float, float]) -> st.SearchStrategy[float]:
    return st.one_of(*[interval(lo, hi) for lo, hi in intervals])


def nonzero(lo: float, hi: float) -> st.SearchStrategy[float]:
    """``lo <= |v| <= hi`` with either sign."""
    return union((-hi, -lo), (lo, hi))


def off_integers(lo: int, hi: int, margin: float = 0.1) -> st.SearchStrategy[float]:
    """Values in ``[lo, hi + 1)`` at least ``margin`` from every integer."""
    return st.builds(lambda k, f: k + f, st.integers(lo, hi), interval(margin, 1 - margin))


def on(sx: st.SearchStrategy | None = None, sy: st.SearchStrategy | None = None):
    """Independent values for ``x`` and/or ``y``."""
    parts = {}
    if sx is not None:
        parts[x] = sx
    if sy is not None:
        parts[y] = sy
    return st.fixed_dictionaries(parts)


def apart(lo: float = -5.0, hi: float = 5.0, margin: float = 0.1):
    """``x`` in ``[lo, hi]`` and ``y`` with ``margin <= |x - y| <= 3`` (away from the tie)."""
    return st.builds(lambda a, d: {x: a, y: a + d}, interval(lo, hi), nonzero(margin, 3.0))


def polar(rmin: float = 0.2, rmax: float = 5.0, theta: float = 3.0):
    """``(x, y)`` at radius ``[rmin, rmax]``, angle ``|θ| <= theta``: away from the origin and
    from atan2's branch cut on the negative x axis."""
    return st.builds(
        lambda r, t: {x: r * math.cos(t), y: r * math.sin(t)},
        interval(rmin, rmax),
        interval(-theta, theta),
    )


# ------------------------------------------------------------------------------------------------
# The table.


@dataclass(frozen=True)
class Entry:
    id: str
    expr: sp.Expr
    domain: st.SearchStrategy
    #: test kind ("value", "sympy", "fd", "jvp", "arrays", "float32") -> reason of a known bug
    xfail: dict = field(default_factory=dict)

    @property
    def symbols(self) -> list[sp.Symbol]:
        return [s for s in (x, y) if self.expr.has(s)]


def E(id, expr, domain, **xfail) -> Entry:  # noqa: N802 - a table constructor
    return Entry(id, expr, domain, xfail)


# Known bugs (each reproduced in the report of this file).


def everywhere(reason: str) -> dict:
    """The same known bug for every test kind of an entry (e.g. it does not compile)."""
    return {k: reason for k in ("value", "sympy", "fd", "jvp", "arrays", "float32")}


ENTRIES = [
    # Add / Mul / Pow forms
    E("add", x + y, on(interval(-10, 10), interval(-10, 10))),
    E("mul", x * y, on(interval(-10, 10), interval(-10, 10))),
    E("div", x / y, on(interval(-10, 10), nonzero(0.1, 10))),
    E("square", x**2, on(interval(-10, 10))),
    E("cube", x**3, on(interval(-10, 10))),
    E("reciprocal", x**-1, on(nonzero(0.1, 10))),
    E("sqrt", sp.sqrt(x), on(interval(0.01, 50))),
    E("cbrt", x ** sp.Rational(1, 3), on(interval(0.01, 50))),
    E("pow_xy", x**y, on(interval(0.1, 5), interval(-3, 3))),
    E("exp2", 2**x, on(interval(-10, 10))),
    # exp / log
    E("exp", sp.exp(x), on(interval(-30, 30))),
    E("log", sp.log(x), on(interval(0.01, 100))),
    E("log1p", log1p(x), on(union((-0.95, 10), (-1e-8, 1e-8)))),
    E("expm1", expm1(x), on(union((-5, 5), (-1e-8, 1e-8)))),
    # trigonometric
    E("sin", sp.sin(x), on(interval(-10, 10))),
    E("cos", sp.cos(x), on(interval(-10, 10))),
    E("tan", sp.tan(x), on(interval(-1.4, 1.4))),
    E("cot", sp.cot(x), on(nonzero(0.15, 3.0))),
    E("sec", sp.sec(x), on(interval(-1.4, 1.4))),
    E("csc", sp.csc(x), on(nonzero(0.15, 3.0))),
    E("asin", sp.asin(x), on(interval(-0.95, 0.95))),
    E("acos", sp.acos(x), on(interval(-0.95, 0.95))),
    E("atan", sp.atan(x), on(interval(-20, 20))),
    E("atan2", sp.atan2(y, x), polar()),
    # hyperbolic
    E("sinh", sp.sinh(x), on(interval(-10, 10))),
    E("cosh", sp.cosh(x), on(interval(-10, 10))),
    E("tanh", sp.tanh(x), on(interval(-10, 10))),
    E("coth", sp.coth(x), on(nonzero(0.1, 10))),
    E("asinh", sp.asinh(x), on(interval(-20, 20))),
    E("acosh", sp.acosh(x), on(interval(1.05, 20))),
    E("atanh", sp.atanh(x), on(interval(-0.95, 0.95))),
    # special functions
    E("erf", sp.erf(x), on(interval(-4, 4))),
    E("erfc", sp.erfc(x), on(interval(-4, 6))),
    E("gamma", sp.gamma(x), on(union((0.1, 6), (-2.9, -2.1)))),
    E("loggamma", sp.loggamma(x), on(interval(0.1, 30))),
    E("digamma", sp.polygamma(0, x), on(union((0.1, 20), (-2.9, -2.1)))),
    E(
        "trigamma",
        sp.polygamma(1, x),
        on(union((0.1, 20), (-2.9, -2.1))),
    ),
    # non-smooth (kinks and jumps avoided by the domain; exact ties are tested separately)
    E("abs", sp.Abs(x), on(nonzero(0.1, 10))),
    E("sign", sp.sign(x), on(nonzero(0.1, 10))),
    E("max", sp.Max(x, y), apart()),
    E("min", sp.Min(x, y), apart()),
    E("max0", sp.Max(x, 0), on(nonzero(0.1, 10))),
    E("heaviside", sp.Heaviside(x), on(nonzero(0.1, 10))),
    E("piecewise", sp.Piecewise((x**2, x > y), (sp.sin(x), True)), apart()),
    E("floor", sp.floor(x), on(off_integers(-5, 5))),
    E("ceiling", sp.ceiling(x), on(off_integers(-5, 5))),
]
BY_ID = {e.id: e for e in ENTRIES}
assert len(BY_ID) == len(ENTRIES)


def test_table_covers_the_sympy_vocabulary():
    """Every SymPy class in ELEMENTWISE_FUNCTIONS has a table entry (symgrad's own functions,
    such as symgrad.nn activations, are tested with their package)."""
    from symgrad.ir.ops_elementwise import ELEMENTWISE_FUNCTIONS

    covered = {type(n) for e in ENTRIES for n in sp.preorder_traversal(e.expr)}
    vocabulary = {c for c in ELEMENTWISE_FUNCTIONS if c.__module__.startswith("sympy.")}
    missing = sorted(c.__name__ for c in vocabulary - covered)
    assert not missing, f"no table entry for {missing}"


FLOAT32_IDS = ["exp", "tanh", "log", "sqrt", "atan2", "max"]


def params(kind: str, ids=None) -> list:
    out = []
    for e in ENTRIES if ids is None else [BY_ID[i] for i in ids]:
        marks = []
        if kind in e.xfail:
            marks.append(pytest.mark.xfail(strict=True, reason=e.xfail[kind]))
        out.append(pytest.param(e, id=e.id, marks=marks))
    return out


# ------------------------------------------------------------------------------------------------
# Compiled functions (one per entry and dtype) and SymPy/mpmath references (one per entry).

_COMPILED: dict = {}
_REFERENCES: dict = {}


def compiled(entry: Entry, dtype: str = "float64") -> sg.Compiled:
    key = (entry.id, dtype)
    if key not in _COMPILED:
        try:
            _COMPILED[key] = sg.compile(entry.expr, wrt=entry.symbols, dtype=dtype)
        except Exception as exc:  # remembered, so a failing compile is not retried per test
            _COMPILED[key] = exc
    got = _COMPILED[key]
    if isinstance(got, Exception):
        raise got
    return got


def _for_mpmath(expr: sp.Expr) -> sp.Expr:
    """mpmath has no log1p/expm1: at 40 digits the naive forms are exact enough."""
    expr = expr.replace(lambda e: isinstance(e, log1p), lambda e: sp.log(1 + e.args[0]))
    return expr.replace(lambda e: isinstance(e, expm1), lambda e: sp.exp(e.args[0]) - 1)


def _reference_partial(expr_real: sp.Expr, s: sp.Symbol) -> sp.Expr:
    """``sympy.diff`` with symgrad's reading of what it leaves behind (DESIGN.md): DiracDelta and
    the unevaluated derivative of floor/ceiling are zero almost everywhere."""
    d = sp.diff(expr_real, s)
    d = d.replace(lambda e: isinstance(e, sp.Derivative), lambda e: sp.S.Zero)
    return d.replace(lambda e: isinstance(e, sp.DiracDelta), lambda e: sp.S.Zero)


def reference(entry: Entry):
    """``(value, partials)`` as functions of ``{symbol: float}`` evaluated at 40 digits."""
    ref = _REFERENCES.get(entry.id)
    if ref is None:
        real = entry.expr.xreplace(REAL)
        args = [REAL[s] for s in entry.symbols]
        value = sp.lambdify(args, _for_mpmath(real), "mpmath")
        partials = [
            sp.lambdify(args, _for_mpmath(_reference_partial(real, a)), "mpmath") for a in args
        ]
        ref = _REFERENCES[entry.id] = (value, partials)
    return ref


def _mp(fn, entry: Entry, vals: dict) -> float:
    with mpmath.workdps(40):
        out = fn(*[mpmath.mpf(vals[s]) for s in entry.symbols])
        return float(out)


def kw(entry: Entry, vals: dict) -> dict:
    """Keyword arguments. All-float keyword calls run the plain-Python twin of the compiled
    function (``py_value``/``py_value_and_grad``) when the module has one."""
    return {s.name: vals[s] for s in entry.symbols}


def numba_args(entry: Entry, vals: dict) -> dict:
    """The one-dict calling form: it always goes through the Numba-compiled scalar functions."""
    return {s: vals[s] for s in entry.symbols}


def scalar_paths(entry: Entry, vals: dict) -> list[tuple[str, tuple, dict]]:
    """``(label, args, kwargs)`` for the plain-Python twin and for the Numba scalar path."""
    return [("python twin", (), kw(entry, vals)), ("numba", (numba_args(entry, vals),), {})]


# ------------------------------------------------------------------------------------------------
# Comparisons.


def assert_value_close(actual, expected, what: str, rtol=VALUE_RTOL, atol=VALUE_ATOL) -> None:
    actual, expected = float(actual), float(expected)
    if math.isinf(expected) or math.isinf(actual):
        assert actual == expected, f"{what}: got {actual!r}, expected {expected!r}"
        return
    ok = abs(actual - expected) <= atol + rtol * abs(expected)
    assert ok, (
        f"{what}: got {actual!r}, expected {expected!r} "
        f"(|diff| {abs(actual - expected):.3g}, allowed {atol + rtol * abs(expected):.3g})"
    )


def assert_scaled_close(actual, expected, rtol: float, what: str, noise: float = 0.0) -> None:
    """``|a - e| <= rtol * max(1, |a|, |e|) + noise``."""
    actual, expected = float(actual), float(expected)
    scale = max(1.0, abs(actual), abs(expected))
    ok = abs(actual - expected) <= rtol * scale + noise
    assert ok, (
        f"{what}: got {actual!r}, expected {expected!r} "
        f"(relative error {abs(actual - expected) / scale:.3g}, allowed {rtol:.3g}"
        f"{f' + noise {noise:.3g}' if noise else ''})"
    )


def assert_arrays_close(actual, expected, rtol: float, what: str) -> None:
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=1e-300, err_msg=what)


# ------------------------------------------------------------------------------------------------
# The table tests.


@pytest.mark.parametrize("entry", params("value"))
def test_value_matches_mpmath(entry):
    f = compiled(entry)
    value_ref, _ = reference(entry)

    @settings(max_examples=MAX_EXAMPLES)
    @given(entry.domain)
    def check(vals):
        expected = _mp(value_ref, entry, vals)
        for path, args, kwargs in scalar_paths(entry, vals):
            got = f(*args, **kwargs)
            assert isinstance(got, float), f"{path}: {entry.expr} at {vals} returned {got!r}"
            assert_value_close(got, expected, f"{path}: {entry.expr} at {vals}")
            value, _ = f.value_and_grad(*args, **kwargs)
            assert_value_close(value, got, f"{path}: value_and_grad value at {vals}", 0, 0)

    check()


@pytest.mark.parametrize("entry", params("sympy"))
def test_gradient_matches_sympy_diff(entry):
    f = compiled(entry)
    _, partial_refs = reference(entry)

    @settings(max_examples=MAX_EXAMPLES)
    @given(entry.domain)
    def check(vals):
        expected = [_mp(ref, entry, vals) for ref in partial_refs]
        for path, args, kwargs in scalar_paths(entry, vals):
            _, grads = f.value_and_grad(*args, **kwargs)
            assert len(grads) == len(entry.symbols)
            for s, g, e in zip(entry.symbols, grads, expected):
                assert_scaled_close(g, e, SYMPY_RTOL, f"{path}: d/d{s} {entry.expr} at {vals}")

    check()


@pytest.mark.parametrize("entry", params("fd"))
def test_gradient_matches_finite_differences(entry):
    f = compiled(entry)

    @settings(max_examples=MAX_EXAMPLES)
    @given(entry.domain)
    def check(vals):
        _, grads = f.value_and_grad(numba_args(entry, vals))
        for s, g in zip(entry.symbols, grads):
            h = FD_STEP * max(1.0, abs(vals[s]))
            up = f(**kw(entry, {**vals, s: vals[s] + h}))
            down = f(**kw(entry, {**vals, s: vals[s] - h}))
            # the step as actually represented, and the round-off of the difference quotient
            h2 = (vals[s] + h) - (vals[s] - h)
            numeric = (up - down) / h2
            noise = 16 * np.finfo(float).eps * max(abs(up), abs(down)) / h2
            assert_scaled_close(
                g, numeric, FD_RTOL, f"d/d{s} {entry.expr} at {vals} (finite differences)", noise
            )

    check()


@pytest.mark.parametrize("entry", params("jvp"))
def test_jvp_matches_reverse_gradient(entry):
    f = compiled(entry)

    @settings(max_examples=MAX_EXAMPLES)
    @given(entry.domain)
    def check(vals):
        value, grads = f.value_and_grad(numba_args(entry, vals))
        for s, g in zip(entry.symbols, grads):
            v, d = f.jvp({s: 1.0}, **kw(entry, vals))
            assert_value_close(v, value, f"jvp value of {entry.expr} at {vals}", 0, 0)
            assert_scaled_close(d, g, JVP_RTOL, f"jvp along {s} of {entry.expr} at {vals}")
        if len(entry.symbols) == 2:  # a mixed direction: <grad, t>
            t = {x: 0.375, y: -1.25}
            _, d = f.jvp(t, **kw(entry, vals))
            expected = sum(t[s] * g for s, g in zip(entry.symbols, grads))
            assert_scaled_close(d, expected, JVP_RTOL, f"jvp along {t} of {entry.expr}")

    check()


@pytest.mark.parametrize("entry", params("arrays"))
def test_arrays_match_elementwise_scalars(entry):
    f = compiled(entry)

    # Length >= 2: a length-1 array makes ``jvp`` pass a read-only tangent and compile a second
    # Numba specialisation (see test_length_one_2d_and_broadcast_arrays), doubling compile time.
    @settings(max_examples=ARRAY_EXAMPLES)
    @given(st.lists(entry.domain, min_size=2, max_size=7))
    def check(points):
        arrays = {s.name: np.array([p[s] for p in points]) for s in entry.symbols}
        scalar = [f.value_and_grad(numba_args(entry, p)) for p in points]
        values = np.array([v for v, _ in scalar])
        grads = [np.array([g[k] for _, g in scalar]) for k in range(len(entry.symbols))]

        assert_arrays_close(f(**arrays), values, ARRAY_RTOL, f"value of {entry.expr}")
        value, agrads = f.value_and_grad(**arrays)
        assert_arrays_close(value, values, ARRAY_RTOL, f"value_and_grad value of {entry.expr}")
        assert len(agrads) == len(entry.symbols)
        for s, ag, g in zip(entry.symbols, agrads, grads):
            assert_arrays_close(ag, g, ARRAY_RTOL, f"d/d{s} of {entry.expr} on arrays")
            jv, jd = f.jvp({s: 1.0}, **arrays)
            assert_arrays_close(jv, values, ARRAY_RTOL, f"jvp value of {entry.expr}")
            assert_arrays_close(jd, g, ARRAY_RTOL, f"jvp along {s} of {entry.expr} on arrays")

    check()


@pytest.mark.parametrize(
    "entry_id, point", [("tanh", {x: 0.7}), ("atan2", {x: -1.5, y: 0.5})], ids=["tanh", "atan2"]
)
def test_length_one_and_2d_arrays(entry_id, point):
    entry = BY_ID[entry_id]
    f = compiled(entry)
    value, grads = f.value_and_grad(numba_args(entry, point))
    for shape in [(1,), (2, 3)]:
        arrays = {s.name: np.full(shape, point[s]) for s in entry.symbols}
        np.testing.assert_array_equal(f(**arrays), np.full(shape, value))
        v, g = f.value_and_grad(**arrays)
        np.testing.assert_array_equal(v, np.full(shape, value))
        for k, s in enumerate(entry.symbols):
            np.testing.assert_array_equal(g[k], np.full(shape, grads[k]))
            jv, jd = f.jvp({s: 1.0}, **arrays)
            np.testing.assert_array_equal(jv, np.full(shape, value))
            np.testing.assert_array_equal(jd, np.full(shape, grads[k]))


def test_array_broadcast_against_a_scalar_sums_its_gradient():
    """``x`` an array, ``y`` a float: elementwise value; d/dy is the gradient of the sum."""
    entry = BY_ID["atan2"]
    f = compiled(entry)
    xs = np.array([-1.5, 0.25, 2.0, 3.5])
    value, (gx, gy) = f.value_and_grad(x=xs, y=0.5)
    scalar = [f.value_and_grad({x: float(v), y: 0.5}) for v in xs]
    assert_arrays_close(value, [v for v, _ in scalar], ARRAY_RTOL, "atan2 broadcast value")
    assert_arrays_close(gx, [g[0] for _, g in scalar], ARRAY_RTOL, "atan2 broadcast d/dx")
    assert np.ndim(gy) == 0
    assert_scaled_close(gy, sum(g[1] for _, g in scalar), JVP_RTOL, "atan2 broadcast d/dy (sum)")


# ------------------------------------------------------------------------------------------------
# float32: a handful of representative functions against float64.


@pytest.mark.slow
@pytest.mark.parametrize("entry", params("float32", FLOAT32_IDS))
def test_float32_matches_float64(entry):
    f32 = compiled(entry, "float32")
    f64 = compiled(entry)

    def rounded(vals):
        return {s: float(np.float32(v)) for s, v in vals.items()}

    def is_f32(v) -> bool:
        return float(np.float32(v)) == float(v) or not math.isfinite(float(v))

    @settings(max_examples=MAX_EXAMPLES)
    @given(entry.domain)
    def check(vals):
        vals = rounded(vals)
        v64, g64 = f64.value_and_grad(**kw(entry, vals))
        v32 = f32(**kw(entry, vals))
        assert is_f32(v32), f"float32 {entry.expr} returned {v32!r}, not a float32 value"
        assert_value_close(v32, v64, f"float32 {entry.expr} at {vals}", F32_RTOL, F32_ATOL)
        w32, g32 = f32.value_and_grad(**kw(entry, vals))
        assert_value_close(w32, v64, f"float32 value_and_grad {entry.expr}", F32_RTOL, F32_ATOL)
        for s, a, b in zip(entry.symbols, g32, g64):
            assert is_f32(a), f"float32 d/d{s} {entry.expr} returned {a!r}, not a float32 value"
            assert_scaled_close(a, b, F32_RTOL, f"float32 d/d{s} {entry.expr} at {vals}")
            _, d = f32.jvp({s: 1.0}, **kw(entry, vals))
            assert_scaled_close(d, b, F32_RTOL, f"float32 jvp along {s} {entry.expr} at {vals}")

    check()

    @settings(max_examples=ARRAY_EXAMPLES)
    @given(st.lists(entry.domain.map(rounded), min_size=1, max_size=7))
    def check_arrays(points):
        arrays = {s.name: np.array([p[s] for p in points], np.float32) for s in entry.symbols}
        value, grads = f32.value_and_grad(**arrays)
        assert value.dtype == np.float32, value.dtype
        assert f32(**arrays).dtype == np.float32
        for g in grads:
            assert g.dtype == np.float32, g.dtype
        for i, p in enumerate(points):
            v, g = f32.value_and_grad(**kw(entry, p))
            assert value[i] == np.float32(v), f"float32 array value [{i}] of {entry.expr}"
            for k in range(len(entry.symbols)):
                assert grads[k][i] == np.float32(g[k]), f"float32 array grad [{i}] {entry.expr}"

    check_arrays()


# ------------------------------------------------------------------------------------------------
# Non-differentiable points at exact ties: SymPy's meaning (DESIGN.md).


def _vg(entry_id: str, **vals):
    """``value_and_grad`` through the plain-Python twin, checked equal to the Numba path."""
    f = compiled(BY_ID[entry_id])
    twin = f.value_and_grad(**vals)
    numba = f.value_and_grad(dict(vals))
    assert twin == numba, f"{BY_ID[entry_id].expr} at {vals}: twin {twin} != Numba {numba}"
    return twin


def _jvp(entry_id: str, sym, **vals):
    return compiled(BY_ID[entry_id]).jvp({sym: 1.0}, **vals)[1]


@pytest.mark.parametrize("v", [-2.5, 0.0, 1.5, 3.0])
@pytest.mark.parametrize("which", ["max", "min"])
def test_max_min_tie_splits_the_gradient(which, v):
    value, grads = _vg(which, x=v, y=v)
    assert value == v
    assert grads == (0.5, 0.5)  # Heaviside(0) = 1/2 for each argument
    assert _jvp(which, x, x=v, y=v) == 0.5
    assert _jvp(which, y, x=v, y=v) == 0.5


def test_max_min_tie_on_arrays():
    xs = np.array([1.0, 2.0, 3.0, -0.0])
    ys = np.array([2.0, 2.0, 2.0, 0.0])
    value, (gx, gy) = compiled(BY_ID["max"]).value_and_grad(x=xs, y=ys)
    np.testing.assert_array_equal(value, [2.0, 2.0, 3.0, 0.0])
    np.testing.assert_array_equal(gx, [0.0, 0.5, 1.0, 0.5])
    np.testing.assert_array_equal(gy, [1.0, 0.5, 0.0, 0.5])
    value, (gx, gy) = compiled(BY_ID["min"]).value_and_grad(x=xs, y=ys)
    np.testing.assert_array_equal(value, [1.0, 2.0, 2.0, 0.0])
    np.testing.assert_array_equal(gx, [1.0, 0.5, 0.0, 0.5])
    np.testing.assert_array_equal(gy, [0.0, 0.5, 1.0, 0.5])


def test_max_with_zero_at_zero():
    assert _vg("max0", x=0.0) == (0.0, (0.5,))
    assert _jvp("max0", x, x=0.0) == 0.5
    value, (g,) = compiled(BY_ID["max0"]).value_and_grad(x=np.array([-1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(value, [0.0, 0.0, 2.0])
    np.testing.assert_array_equal(g, [0.0, 0.5, 1.0])


def test_abs_at_zero_has_gradient_sign_zero():
    assert _vg("abs", x=0.0) == (0.0, (0.0,))
    assert _jvp("abs", x, x=0.0) == 0.0
    value, (g,) = compiled(BY_ID["abs"]).value_and_grad(x=np.array([-2.0, 0.0, 3.0]))
    np.testing.assert_array_equal(value, [2.0, 0.0, 3.0])
    np.testing.assert_array_equal(g, [-1.0, 0.0, 1.0])


def test_sign_at_zero():
    assert _vg("sign", x=0.0) == (0.0, (0.0,))
    assert _jvp("sign", x, x=0.0) == 0.0
    value, (g,) = compiled(BY_ID["sign"]).value_and_grad(x=np.array([-2.0, 0.0, 3.0]))
    np.testing.assert_array_equal(value, [-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(g, [0.0, 0.0, 0.0])


@pytest.mark.parametrize("v", [-1.0, 0.0, 1e-300, 2.0])
def test_heaviside_value_half_at_zero_and_zero_gradient_everywhere(v):
    value, (g,) = _vg("heaviside", x=v)
    assert value == (0.5 if v == 0 else float(v > 0))
    assert g == 0.0
    assert _jvp("heaviside", x, x=v) == 0.0


@pytest.mark.parametrize("v", [-2.0, -1.0, 0.0, 1.0, 3.0])
@pytest.mark.parametrize("which", ["floor", "ceiling"])
def test_floor_ceiling_at_integers_have_zero_gradient(which, v):
    value, (g,) = _vg(which, x=v)
    assert value == v
    assert g == 0.0
    assert _jvp(which, x, x=v) == 0.0
    for w in (v - 1e-9, v + 1e-9):
        value, (g,) = _vg(which, x=w)
        assert value == (math.floor(w) if which == "floor" else math.ceil(w))
        assert g == 0.0


@pytest.mark.parametrize("v", [-1.0, 0.5, 2.0])
def test_piecewise_at_the_tie_takes_the_true_branch(v):
    # x > y is false at x == y, so Piecewise((x**2, x > y), (sin(x), True)) is sin there.
    value, grads = _vg("piecewise", x=v, y=v)
    assert value == math.sin(v)
    assert grads[0] == pytest.approx(math.cos(v), rel=1e-15, abs=0)
    assert grads[1] == 0.0


# ------------------------------------------------------------------------------------------------
# Domain errors: nan/inf like NumPy, never an exception from Numba.


# entry, inputs, NumPy's value, NumPy's derivative (None: only the value is checked), and the
# reason of a known bug of the plain-Python twin at this point (None: no known bug)
with np.errstate(all="ignore"):
    DOMAIN_ERRORS = [
        ("log", {"x": -1.0}, np.log(-1.0), np.reciprocal(-1.0), None),
        ("log", {"x": 0.0}, np.log(0.0), np.reciprocal(0.0), None),
        ("sqrt", {"x": -1.0}, np.sqrt(-1.0), 0.5 / np.sqrt(-1.0), None),
        ("sqrt", {"x": 0.0}, 0.0, np.inf, None),
        ("reciprocal", {"x": 0.0}, np.reciprocal(0.0), -(np.reciprocal(0.0) ** 2), None),
        ("div", {"x": 1.0, "y": 0.0}, np.divide(1.0, 0.0), None, None),
        ("div", {"x": -1.0, "y": 0.0}, np.divide(-1.0, 0.0), None, None),
        ("div", {"x": 0.0, "y": 0.0}, np.divide(0.0, 0.0), None, None),
        ("cbrt", {"x": -8.0}, np.power(-8.0, 1 / 3), None, None),
        ("pow_xy", {"x": -2.0, "y": 0.5}, np.power(-2.0, 0.5), None, None),
        ("asin", {"x": 2.0}, np.arcsin(2.0), None, None),
        ("acos", {"x": -2.0}, np.arccos(-2.0), None, None),
        ("acosh", {"x": 0.5}, np.arccosh(0.5), None, None),
        ("atanh", {"x": 1.0}, np.arctanh(1.0), None, None),
        ("log1p", {"x": -1.0}, np.log1p(-1.0), None, None),
        ("log1p", {"x": -2.0}, np.log1p(-2.0), None, None),
        ("exp", {"x": 1000.0}, np.exp(1000.0), np.exp(1000.0), None),
    ]
DOMAIN_IDS = [
    f"{e}-{','.join(f'{k}={v}' for k, v in vals.items())}" for e, vals, *_ in DOMAIN_ERRORS
]


def _same(a, b) -> bool:
    if isinstance(a, complex):
        return False
    a, b = float(a), float(b)
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.parametrize(
    "entry_id, vals, value, deriv", [d[:4] for d in DOMAIN_ERRORS], ids=DOMAIN_IDS
)
def test_domain_errors_are_nan_or_inf_not_exceptions(entry_id, vals, value, deriv):
    f = compiled(BY_ID[entry_id])
    what = f"{BY_ID[entry_id].expr} at {vals}"
    # Numba scalar functions (the one-dict form)
    got = f(dict(vals))
    assert _same(got, value), f"{what}: {got!r}, NumPy gives {value!r}"
    v, grads = f.value_and_grad(dict(vals))
    assert _same(v, value), f"{what}: value_and_grad value {v!r}, NumPy gives {value!r}"
    if deriv is not None:
        assert _same(grads[0], deriv), f"{what}: derivative {grads[0]!r}, expected {deriv!r}"
    v, _ = f.jvp({f.wrt[0]: 1.0}, dict(vals))
    assert _same(v, value), f"{what}: jvp value {v!r}, NumPy gives {value!r}"
    # the vectorised path: the bad point next to a good one
    good = 2.0 if entry_id == "acosh" else 0.5
    arrays = {k: np.array([v, good]) for k, v in vals.items()}
    out = f(**arrays)
    assert _same(out[0], value), f"{what}: array value {out[0]!r}, NumPy gives {value!r}"
    assert math.isfinite(out[1])
    _, agrads = f.value_and_grad(**arrays)
    if deriv is not None:
        assert _same(agrads[0][0], deriv), f"{what}: array derivative {agrads[0][0]!r}"


@pytest.mark.parametrize(
    "entry_id, vals, value, deriv",
    [
        pytest.param(*d[:4], marks=[pytest.mark.xfail(strict=True, reason=d[4])] if d[4] else [])
        for d in DOMAIN_ERRORS
    ],
    ids=DOMAIN_IDS,
)
def test_domain_errors_python_twin(entry_id, vals, value, deriv):
    """All-float keyword calls (the plain-Python twin) give the same nan/inf as Numba."""
    f = compiled(BY_ID[entry_id])
    what = f"{BY_ID[entry_id].expr} at {vals}"
    got = f(**vals)
    assert _same(got, value), f"{what}: {got!r}, NumPy gives {value!r}"
    v, grads = f.value_and_grad(**vals)
    assert _same(v, value), f"{what}: value_and_grad value {v!r}, NumPy gives {value!r}"
    if deriv is not None:
        assert _same(grads[0], deriv), f"{what}: derivative {grads[0]!r}, expected {deriv!r}"
