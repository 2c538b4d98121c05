"""``symgrad.codegen.special`` (digamma, trigamma, polygamma) against ``scipy.special``.

The functions are called through ``@njit`` loop kernels compiled once per dtype, as generated code
calls them. Positive arguments are compared in relative terms; negative ones in absolute terms
scaled by the reflection formula's terms, because ``digamma`` has a root in every interval
``(-k-1, -k)`` where no float64 evaluation (scipy's included) keeps a small relative error.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import scipy.special as sc
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from symgrad.codegen import special as sp


@njit
def _digamma_loop(x, out):
    for i in range(x.shape[0]):
        out[i] = sp.digamma(x[i])


@njit
def _trigamma_loop(x, out):
    for i in range(x.shape[0]):
        out[i] = sp.trigamma(x[i])


@njit
def _polygamma_loop(n, x, out):
    for i in range(x.shape[0]):
        out[i] = sp.polygamma(n, x[i])


def ours(n, x):
    """polygamma(n, x) elementwise through the kernels (n = 0, 1 use digamma, trigamma)."""
    x = np.asarray(x)
    out = np.empty_like(x)
    if n == 0:
        _digamma_loop(x, out)
    elif n == 1:
        _trigamma_loop(x, out)
    else:
        _polygamma_loop(n, x, out)
    return out


def scipy_ref(n, x):
    with np.errstate(all="ignore"):
        return sc.digamma(x) if n == 0 else sc.polygamma(n, x)


def _errors(got, ref, scale):
    same = (got == ref) | (np.isnan(got) & np.isnan(ref))
    with np.errstate(all="ignore"):
        err = np.where(same, 0.0, np.abs(got - ref) / scale)
    return np.where(np.isnan(err), np.inf, err)


def assert_close(n, x, rtol):
    """Agreement with scipy to ``rtol``, or, where scipy is off, with mpmath to ``rtol``.

    The error is relative for x > 0, with a floor at 2**52 times the smallest normal number:
    results there have subnormal intermediates (n! * zeta(n + 1, x) for huge x), in scipy too.
    For x < 0 it is measured against the size of the reflection terms ``psi_n(1 - x)`` and
    ``pi * cot(pi x)``: near the roots of the result, cancellation between them limits any
    float64 evaluation to that absolute accuracy.
    """
    x = np.asarray(x, dtype=np.float64)
    got, ref = ours(n, x), scipy_ref(n, x)
    scale = np.maximum(np.abs(ref), np.finfo(np.float64).tiny * 2.0**52)
    neg = x < 0
    if neg.any():
        with np.errstate(all="ignore"):
            cot = np.abs(np.pi / np.tan(np.pi * x[neg]))
        scale[neg] += np.abs(scipy_ref(n, 1.0 - x[neg])) + cot
    err = _errors(got, ref, scale)
    # scipy loses digits near the poles of negative arguments and for large orders; there the
    # arbiter is mpmath (40 digits).
    suspect = np.flatnonzero(err > rtol)
    if suspect.size:
        mpmath.mp.dps = 40
        exact = np.array([float(mpmath.psi(n, mpmath.mpf(float(v)))) for v in x[suspect]])
        err[suspect] = _errors(got[suspect], exact, scale[suspect])
    worst = int(np.argmax(err))
    assert err[worst] <= rtol, (
        f"polygamma({n}, {x[worst]!r}) = {got[worst]!r}, scipy {ref[worst]!r}, err {err[worst]:.3g}"
    )


def _samples(seed, n=1500):
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [
            rng.uniform(0.0, 3.0, n),
            rng.uniform(3.0, 30.0, n),
            np.exp(rng.uniform(-300.0, 300.0, n)),
            1.4616321449683622 + rng.uniform(-0.05, 0.05, n),  # the positive root of digamma
            rng.uniform(-30.0, 0.0, n),
        ]
    )


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 6])
def test_matches_scipy_on_samples(n):
    # Both implementations are within a few ulp of the truth for x > 0 (checked below against
    # mpmath), so they agree to a few parts in 1e15.
    assert_close(n, _samples(seed=n), rtol=4e-15 if n <= 1 else 1e-14)


@pytest.mark.parametrize("n", [0, 1, 2])
@settings(deadline=None, derandomize=True, max_examples=150)
@given(x=st.floats(min_value=-1e4, max_value=1e300, allow_nan=False, allow_infinity=False))
def test_matches_scipy_hypothesis(n, x):
    assert_close(n, [x], rtol=4e-15 if n <= 1 else 1e-14)


SPECIAL_X = [0.0, -0.0, -1.0, -2.0, -7.0, -1e300, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 1e300]


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_special_values_like_scipy(n):
    x = np.array(SPECIAL_X)
    got, ref = ours(n, x), scipy_ref(n, x)
    for xi, g, r in zip(x, got, ref, strict=True):
        if np.isnan(r):
            assert np.isnan(g), (n, xi, g)
        elif r == 0 or np.isinf(r):
            assert g == r and np.signbit(g) == np.signbit(r), (n, xi, g, r)
        else:
            assert g == pytest.approx(r, rel=1e-15), (n, xi, g, r)


def test_accuracy_against_mpmath():
    # Including right at the positive root x0 = 1.4616..., where digamma(x) ~ 0.97 (x - x0): the
    # (x - x0) * R(x) form keeps the relative error at a few ulp.
    x0 = 1.4616321449683622
    xs = [x0, np.nextafter(x0, 2), np.nextafter(x0, 1), x0 + 1e-9, x0 - 1e-6, 0.5, 2.0, 9.99, 10.0]
    xs += [1e-10, 123.456, -0.5, -1.5, -2.25]
    mpmath.mp.dps = 40
    for n in (0, 1, 2):
        got = ours(n, np.array(xs))
        for x, g in zip(xs, got, strict=True):
            exact = float(mpmath.psi(n, mpmath.mpf(x)))
            assert abs(g - exact) <= 4 * math.ulp(exact), (n, x, g, exact)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_float32_in_float32_out(n):
    x = np.array([0.25, 1.5, 3.0, 17.5, -0.5, -2.75, 1e20, 0.0, -3.0, np.inf], dtype=np.float32)
    got = ours(n, x)
    assert got.dtype == np.float32
    with np.errstate(over="ignore"):
        want = scipy_ref(n, x.astype(np.float64)).astype(np.float32)
    np.testing.assert_array_max_ulp(got, want, maxulp=1)


def test_polygamma_orders_0_and_1_are_digamma_and_trigamma():
    x = np.array([0.3, 2.5, 40.0, -1.25])
    out = np.empty_like(x)
    _polygamma_loop(0, x, out)
    np.testing.assert_array_equal(out, ours(0, x))
    _polygamma_loop(1, x, out)
    np.testing.assert_array_equal(out, ours(1, x))
    _polygamma_loop(-1, x, out)
    assert np.isnan(out).all()


def test_derivative_relations():
    # trigamma is the derivative of digamma, polygamma(2) of trigamma (central differences).
    x = np.array([0.7, 1.3, 4.2, 25.0, -0.4, -3.6])
    h = 1e-6
    for n in (0, 1):
        slope = (ours(n, x + h) - ours(n, x - h)) / (2 * h)
        np.testing.assert_allclose(slope, ours(n + 1, x), rtol=1e-7)


def test_python_scalar_calls():
    assert sp.digamma(1.0) == pytest.approx(-0.5772156649015329, rel=1e-15)
    assert sp.trigamma(1.0) == pytest.approx(math.pi**2 / 6, rel=1e-15)
    assert sp.polygamma(2, 1.0) == pytest.approx(-2 * 1.2020569031595942, rel=1e-15)
    assert isinstance(sp.digamma(np.float32(2.0)), np.float32)
    assert sp.digamma(3) == pytest.approx(1.5 - 0.5772156649015329, rel=1e-15)


def test_accuracy_does_not_depend_on_the_first_callers_flags():
    """A ``fastmath`` caller compiled first must not change what later callers compute."""
    script = (
        "import numpy as np\n"
        "from numba import njit\n"
        "from symgrad.codegen import special as sp\n"
        "@njit(fastmath={'reassoc'})\n"
        "def first(x):\n"
        "    return sp.polygamma(2, x)\n"
        "first(2.5)\n"
        "@njit\n"
        "def later(x):\n"
        "    return sp.polygamma(2, x)\n"
        "print(repr(float(later(-15.500417088718741))))\n"
    )
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    mpmath.mp.dps = 40
    exact = float(mpmath.psi(2, mpmath.mpf(-15.500417088718741)))
    assert abs(float(out.stdout.strip()) - exact) <= 4 * abs(exact) * np.finfo(np.float64).eps
