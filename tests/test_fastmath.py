"""Accuracy and special values of ``symgrad.codegen.fastmath`` against NumPy, in ulp.

The reference is NumPy evaluated in more precision than the type under test (float64 for float32,
``np.longdouble`` for float64 where it is the x87 80-bit type), so that the error measured is ours
and not NumPy's own (NumPy's float32 ``exp``/``expm1`` are off by up to 2 ulp in places). Every
function is called through one ``@njit`` loop kernel, compiled once per dtype, like the loops the
code generator emits.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numba import njit

from symgrad.codegen import fastmath as fm

NAMES = ["exp", "expm1", "log", "log1p", "tanh", "sigmoid", "softplus"]
DTYPES = [np.float32, np.float64]

# Max ulp error allowed. Measured on an FMA machine (see the module docstring of fastmath): 0.8 for
# exp/log/log1p, 1.3 for expm1, 1.4-1.8 for tanh/sigmoid/softplus; the margin covers CPUs where
# llvm.fmuladd is not fused.
TOLERANCE = {
    "exp": 2.0,
    "expm1": 2.0,
    "log": 2.0,
    "log1p": 2.0,
    "tanh": 3.0,
    "sigmoid": 3.0,
    "softplus": 3.0,
}

_EXTENDED = np.finfo(np.longdouble).nmant >= 63
# Without an 80-bit long double the float64 reference is NumPy's float64 (itself within ~1 ulp).
_REFERENCE_SLACK = {np.float32: 0.0, np.float64: 0.0 if _EXTENDED else 1.0}


def _loop(fn):
    @njit
    def kernel(x, out):
        for i in range(x.shape[0]):
            out[i] = fn(x[i])

    return kernel


KERNELS = {name: _loop(getattr(fm, f"fast_{name}")) for name in NAMES}


def run(name, x):
    out = np.empty_like(x)
    KERNELS[name](x, out)
    return out


def reference(name, x):
    """NumPy's value of ``name`` at ``x``, computed in a wider type than ``x.dtype``."""
    with np.errstate(all="ignore"):
        wide = x.astype(np.float64 if x.dtype == np.float32 else np.longdouble)
        if name == "sigmoid":
            e = np.exp(-np.abs(wide))
            return np.where(wide >= 0, 1 / (1 + e), e / (1 + e))
        if name == "softplus":
            return np.logaddexp(wide.dtype.type(0), wide)
        return getattr(np, name)(wide)


def ulp_error(got, ref, dtype):
    """|got - ref| in units of the spacing of ``dtype`` in the binade of the exact value ``ref``.

    Results equal to the correctly rounded reference (including infinities, signed zeros and nan
    against nan) count as 0; any other non-finite mismatch counts as inf.
    """
    finfo = np.finfo(dtype)
    with np.errstate(all="ignore"):
        expected = ref.astype(dtype)
        _, exponent = np.frexp(ref)
        ulp = np.ldexp(np.ones_like(ref), exponent - 1 - finfo.nmant)
        ulp = np.maximum(np.where(ref == 0, 0, ulp), finfo.smallest_subnormal)
        err = np.abs(got.astype(ref.dtype) - ref) / ulp
    exact = (got == expected) & (np.signbit(got) == np.signbit(expected))
    exact |= np.isnan(got) & np.isnan(expected)
    err = np.where(exact, 0.0, err)
    return np.where(np.isnan(err), np.inf, err).astype(np.float64)


def assert_accurate(name, x):
    got = run(name, x)
    err = ulp_error(got, reference(name, x), x.dtype.type)
    tol = TOLERANCE[name] + _REFERENCE_SLACK[x.dtype.type]
    worst = int(np.argmax(err))
    assert err[worst] <= tol, (
        f"fast_{name}({x[worst]!r}) = {got[worst]!r},"
        f" reference {reference(name, x[worst : worst + 1])[0]!r}: {err[worst]:.2f} ulp > {tol}"
    )
    return float(err.max())


def samples(name, dtype, n, seed):
    """Values across the whole finite range plus dense samples where each function is curved."""
    rng = np.random.default_rng(seed)
    finfo = np.finfo(dtype)
    int_type = np.uint32 if dtype == np.float32 else np.uint64
    # Uniform random bit patterns: every binade equally likely, both signs, some inf/nan.
    anybits = rng.integers(0, np.iinfo(int_type).max, n, dtype=int_type, endpoint=True).view(dtype)
    tiny_to_max = np.exp(rng.uniform(np.log(finfo.smallest_subnormal), np.log(finfo.max), n))
    parts = [anybits, tiny_to_max.astype(dtype), -tiny_to_max.astype(dtype)]
    if name in ("log", "log1p"):
        low = -1.0 if name == "log1p" else 0.0
        parts += [rng.uniform(low, 4.0, n), rng.uniform(0.6, 1.5, n), rng.uniform(-1e-3, 1e-3, n)]
        if name == "log1p":
            parts.append(-1.0 + np.exp(rng.uniform(-60.0, 0.0, n)))
    else:
        limit = 800.0 if dtype == np.float64 else 110.0
        parts += [rng.uniform(-limit, limit, n), rng.uniform(-3.0, 3.0, n)]
    with np.errstate(over="ignore", invalid="ignore"):
        return np.concatenate(parts).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", NAMES)
def test_random_full_range(name, dtype):
    assert_accurate(name, samples(name, dtype, 20_000, seed=NAMES.index(name)))


def _float_arrays(dtype):
    width = 32 if dtype == np.float32 else 64
    return hnp.arrays(dtype, st.integers(1, 64), elements=st.floats(width=width))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", NAMES)
@settings(deadline=None, derandomize=True, max_examples=40)
@given(data=st.data())
def test_hypothesis_floats(name, dtype, data):
    # Hypothesis favours the awkward floats: 0, -0, +-inf, nan, subnormals, huge magnitudes.
    assert_accurate(name, data.draw(_float_arrays(dtype)))


def _edges(dtype):
    finfo = np.finfo(dtype)
    ln_max = math.log(float(finfo.max))
    ln_min_sub = math.log(float(finfo.smallest_subnormal))
    values = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, 10.0, -10.0, 20.0, 40.0, -40.0]
    values += [float(v) for v in (finfo.max, finfo.tiny, finfo.smallest_subnormal, finfo.eps)]
    # The overflow and underflow thresholds of exp and their neighbours.
    for edge in (ln_max, math.log(float(finfo.tiny)), ln_min_sub, ln_min_sub + math.log(0.5)):
        v = dtype(edge)
        values += [
            float(v),
            float(np.nextafter(v, dtype(np.inf))),
            float(np.nextafter(v, dtype(0))),
        ]
    # log1p near -1, tanh/expm1 saturation, powers of two where the reductions switch.
    values += [float(np.nextafter(dtype(-1), dtype(0))), -1.0 + 2.0**-20, 9.0, 19.0, 19.1]
    values += [2.0**k for k in (-149, -126, -60, -30, -24, -12, -1, 64, 127)]
    values += [-(2.0**k) for k in (-149, -60, -24, 64)]
    values += [ln_max / 2, math.log(2) / 2, -math.log(2) / 2, 0.3466, 0.7]
    x = np.array(values, dtype=np.float64).astype(dtype)
    return np.concatenate([x, -x, np.array([np.inf, -np.inf, np.nan], dtype=dtype)])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", NAMES)
def test_edge_values(name, dtype):
    assert_accurate(name, _edges(dtype))


SPECIAL = [
    # (name, x, expected); expected compared exactly, including the sign of zero.
    ("exp", np.inf, np.inf),
    ("exp", -np.inf, 0.0),
    ("exp", 1e4, np.inf),
    ("exp", -1e4, 0.0),
    ("exp", 0.0, 1.0),
    ("exp", -0.0, 1.0),
    ("expm1", -0.0, -0.0),
    ("expm1", 0.0, 0.0),
    ("expm1", -np.inf, -1.0),
    ("expm1", -1e4, -1.0),
    ("expm1", np.inf, np.inf),
    ("expm1", 1e4, np.inf),
    ("log", 0.0, -np.inf),
    ("log", -0.0, -np.inf),
    ("log", -1.0, np.nan),
    ("log", -np.inf, np.nan),
    ("log", np.inf, np.inf),
    ("log", 1.0, 0.0),
    ("log1p", -1.0, -np.inf),
    ("log1p", -2.0, np.nan),
    ("log1p", -0.0, -0.0),
    ("log1p", 0.0, 0.0),
    ("log1p", np.inf, np.inf),
    ("tanh", -0.0, -0.0),
    ("tanh", 0.0, 0.0),
    ("tanh", np.inf, 1.0),
    ("tanh", -np.inf, -1.0),
    ("tanh", 30.0, 1.0),
    ("tanh", -30.0, -1.0),
    ("tanh", 1e300, 1.0),
    ("sigmoid", np.inf, 1.0),
    ("sigmoid", -np.inf, 0.0),
    ("sigmoid", 40.0, 1.0),
    ("sigmoid", -1e4, 0.0),
    ("sigmoid", 0.0, 0.5),
    ("sigmoid", -0.0, 0.5),
    ("softplus", np.inf, np.inf),
    ("softplus", -np.inf, 0.0),
    ("softplus", 1e30, 1e30),
    ("softplus", -1e4, 0.0),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(("name", "x", "expected"), SPECIAL)
def test_special_values(name, x, expected, dtype):
    with np.errstate(over="ignore"):  # 1e300 and 1e30 become inf in float32
        got = run(name, np.array([x, np.nan], dtype=dtype))
        want = dtype(expected)
    assert got.dtype == dtype
    assert np.isnan(got[1]), f"fast_{name}(nan) = {got[1]!r}"
    if np.isnan(want):
        assert np.isnan(got[0])
    else:
        assert got[0] == want and np.signbit(got[0]) == np.signbit(want), (name, x, got[0])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_subnormal_results_are_not_flushed(dtype):
    # exp and sigmoid deep in the negative range land in the subnormals, correctly rounded.
    x = np.array([-740.0, -745.0] if dtype == np.float64 else [-90.0, -103.0], dtype=dtype)
    for name in ("exp", "sigmoid", "softplus"):
        got = run(name, x)
        assert np.all(got > 0) and np.all(got < np.finfo(dtype).tiny), (name, got)
        assert_accurate(name, x)
    # ... and log of subnormal inputs is finite and accurate.
    sub = np.array([np.finfo(dtype).smallest_subnormal, np.finfo(dtype).tiny / 3], dtype=dtype)
    assert_accurate("log", sub)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", NAMES)
def test_loop_is_vectorised(name, dtype):
    # The reason the module exists: the loop must compile to SIMD code, not a call per element.
    run(name, np.ones(4, dtype=dtype))
    (llvm_ir,) = [
        v
        for k, v in KERNELS[name].inspect_llvm().items()
        if str(k[0].dtype) == np.dtype(dtype).name
    ]
    scalar = "float" if dtype == np.float32 else "double"
    assert re.search(rf"<(\d+) x {scalar}>", llvm_ir), f"fast_{name} loop not vectorised"
    assert not re.search(r"call \w+ @(exp|log|tanh|expm1|log1p)f?\(", llvm_ir)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_python_scalar_calls(dtype):
    for name in NAMES:
        value = getattr(fm, f"fast_{name}")(dtype(0.75))
        assert isinstance(value, dtype if dtype == np.float32 else float)
        assert value == run(name, np.array([0.75], dtype=dtype))[0]
    assert fm.fast_exp(1) == run("exp", np.array([1.0]))[0]  # integers act as float64


@njit(fastmath=True)
def _fastmath_caller(x, out):
    for i in range(x.shape[0]):
        out[0, i] = fm.fast_exp(x[i])
        out[1, i] = fm.fast_log(x[i])
        out[2, i] = fm.fast_tanh(x[i])
        out[3, i] = fm.fast_softplus(x[i])


def test_fastmath_caller_keeps_special_values():
    # The kernels carry their own fastmath=False, so nan/inf survive a fastmath=True caller.
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -1.0])
    out = np.empty((4, x.size))
    _fastmath_caller(x, out)
    expected = [
        [np.nan, np.inf, 0.0, 1.0, math.exp(-1.0)],
        [np.nan, np.inf, np.nan, -np.inf, np.nan],
        [np.nan, 1.0, -1.0, 0.0, math.tanh(-1.0)],
        [np.nan, np.inf, 0.0, math.log(2.0), math.log1p(math.exp(-1.0))],
    ]
    np.testing.assert_allclose(out, np.array(expected), rtol=1e-15, atol=0)


def test_kernels_are_inlined_into_large_callers():
    # LLVM's cost model kept the calls once a caller had many call sites (a training step), and a
    # call left in a loop stops vectorisation; inline_llvm marks the kernels alwaysinline.
    n_loops = 12
    lines = ["def many_loops(x, out):"]
    for k in range(n_loops):
        lines.append("    for i in range(x.shape[0]):")
        body = f"fast_tanh(x[i] * {k + 1}.0) + fast_sigmoid(x[i] - {k}.0)"
        lines.append(f"        out[{k}, i] = {body}")
    namespace = {"fast_tanh": fm.fast_tanh, "fast_sigmoid": fm.fast_sigmoid}
    exec("\n".join(lines), namespace)
    many_loops = njit(namespace["many_loops"])
    x = np.linspace(-3.0, 3.0, 16)
    out = np.empty((n_loops, x.size))
    many_loops(x, out)
    (llvm_ir,) = many_loops.inspect_llvm().values()
    assert not re.findall(r"call [^\n]*fastmath", llvm_ir)
    assert re.search(r"<\d+ x double>", llvm_ir)
    expected = [np.tanh(x * (k + 1)) + 1 / (1 + np.exp(-(x - k))) for k in range(n_loops)]
    np.testing.assert_allclose(out, expected, rtol=1e-14)


def test_inline_attribute_is_added_to_the_definition_line():
    from symgrad.codegen.inline_llvm import _with_attribute

    text = "declare i32 @g(i32)\ndefine linkonce_odr i32 @f(i32 %x) local_unnamed_addr #0 {\nret"
    marked = _with_attribute(text, "f").splitlines()[1]
    assert marked.endswith("local_unnamed_addr alwaysinline #0 {")
    plain = "define i32 @f(i32 %x) {\nret"
    assert _with_attribute(plain, "f").splitlines()[0] == "define i32 @f(i32 %x) alwaysinline {"
    assert _with_attribute(plain, "h") is None
    assert _with_attribute("define i32 @f(i32 %x) noinline {", "f") is None
