"""Digamma, trigamma and polygamma for generated Numba code.

``d/dx loggamma(x) = digamma(x)``, ``d/dx gamma(x) = gamma(x) * digamma(x)`` and
``d/dx polygamma(n, x) = polygamma(n + 1, x)``, so the backward pass of any graph that uses
``gamma``/``loggamma`` needs these, and Numba has none of them (``math.lgamma`` and
``math.gamma`` exist, their derivatives do not).

Each public function is a plain Python function with a Numba ``overload``: in ``@njit`` code it
compiles for float32 and float64 arguments (integers count as float64) and returns the argument's
float type; called from Python it evaluates one scalar. The work is done in float64 (float32 results
are rounded from it), because these are scalar loops with data-dependent trip counts and libm calls,
which no compiler vectorises anyway.

Method (written for this module; coefficients fitted with mpmath)
------------------------------------------------------------------
* ``digamma``, ``x > 0``: ``digamma(x) = log x - 1/(2x) - sum B_2k / (2k x**2k)`` for
  ``x >= 10`` (the asymptotic series, 8 terms, error < 1e-17); below that, the recurrence
  ``digamma(x + 1) = digamma(x) + 1/x`` moves ``x`` into ``[1, 2]``, where
  ``digamma(x) = (x - x0) * R(x)`` with ``x0`` the positive root (kept as a double-double) and ``R``
  a degree-22 polynomial (``mpmath.chebyfit`` of ``digamma(y)/(y - x0)`` in ``t = y - 1.5`` on
  ``[-0.5, 0.5]``), so that the result stays accurate to a few ulp right up to the root.
* ``trigamma``, ``x > 0``: ``sum 1/(x + k)**2`` up to ``x + k >= 10``, then
  ``1/x + 1/(2x**2) + sum B_2k / x**(2k+1)`` (9 terms). All terms are positive: no cancellation.
* ``polygamma(n >= 2, x > 0) = (-1)**(n+1) n! zeta(n + 1, x)``, with the Hurwitz zeta function from
  direct summation up to ``x + k >= 20 + n`` plus the Euler-Maclaurin tail.
* ``x < 0`` (not an integer): the reflection formula ``psi(1 - x) - psi(x) = pi cot(pi x)``,
  differentiated ``n`` times; ``cot`` and its derivatives are evaluated at ``x - round(x)`` so that
  the argument reduction is exact. Near the roots that ``digamma`` has in every interval
  ``(-k-1, -k)`` the result has an absolute (not relative) error of a few ulp of ``digamma(1 - x)``.

Special values follow ``scipy.special``: ``digamma(+0.0) = -inf``, ``digamma(-0.0) = +inf``,
``digamma`` at negative integers and ``-inf`` is nan; for ``n >= 1``, ``polygamma(n, x)`` at
``x = 0``, a negative integer or ``-inf`` is ``(-1)**(n+1) * inf``; ``polygamma(n, inf)`` is
``inf`` for ``n = 0`` and a zero of sign ``(-1)**(n+1)`` otherwise; nan gives nan. A negative or
non-integral order ``n`` gives nan.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.extending import overload

__all__ = ["digamma", "trigamma", "polygamma"]

# fastmath is set (to off) rather than left out: an unset option is inherited from the first
# caller that compiles these, and a generated function's ``reassoc`` then rearranged the
# reflection formula's sums for every later caller in the process (polygamma(2, -15.5) lost
# 7e-14 relative to mpmath after a generated gradient had used it).
_JIT = {"error_model": "numpy", "fastmath": False}

# Positive root of digamma as hi + lo (mpmath: 1.46163214496836234126265954232572132846819620...).
_X0_HI = 1.4616321449683622
_X0_LO = 9.549995429965697e-17

# digamma(1.5 + t) / (1.5 + t - x0) on |t| <= 0.5, lowest order first; max relative error 5e-17.
_ROOT_POLY = (
    0.9510558760318328,
    -0.4236274212814606,
    0.24054248424078697,
    -0.14840492305388092,
    0.09498872445289039,
    -0.06192213327548831,
    0.040760833940846085,
    -0.026975796659787055,
    0.017907248317313294,
    -0.011908220105959716,
    0.007927021796868154,
    -0.005279937255532708,
    0.003518106563802472,
    -0.0023454947397380833,
    0.0015633696313653504,
    -0.0010364584817312839,
    0.0006909255761282986,
    -0.00048595039220036254,
    0.00032395945401345196,
    -0.00014480643368061614,
    9.653646261410062e-05,
    -0.0001782188548855923,
    0.00011881232908510335,
)

# Bernoulli numbers B_2 ... B_18 (exact rationals, rounded once).
_B = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510, 43867 / 798)
# B_2k / (2k) for the digamma series and B_2k for the trigamma series.
_DIGAMMA_SERIES = tuple(b / (2 * k) for k, b in enumerate(_B[:8], start=1))
_TRIGAMMA_SERIES = _B
# B_2j / (2j)! for j = 1..20, for the Euler-Maclaurin tail of the Hurwitz zeta function.
_EM_SERIES = (
    0.08333333333333333,
    -0.001388888888888889,
    3.306878306878307e-05,
    -8.267195767195768e-07,
    2.08767569878681e-08,
    -5.284190138687493e-10,
    1.3382536530684679e-11,
    -3.3896802963225827e-13,
    8.586062056277845e-15,
    -2.174868698558062e-16,
    5.5090028283602295e-18,
    -1.3954464685812522e-19,
    3.534707039629467e-21,
    -8.953517427037546e-23,
    2.267952452337683e-24,
    -5.744790668872202e-26,
    1.455172475614865e-27,
    -3.6859949406653103e-29,
    9.336734257095045e-31,
    -2.36502241570063e-32,
)


@njit(**_JIT)
def _poly(z, coeffs):
    acc = coeffs[len(coeffs) - 1]
    for i in range(len(coeffs) - 2, -1, -1):
        acc = acc * z + coeffs[i]
    return acc


@njit(**_JIT)
def _cot_pi(r):
    """cot(pi r) for |r| <= 1/2, exactly 0 at r = +-1/2 (cos(pi r) = sin(pi (1/2 - |r|)))."""
    return math.sin(math.pi * (0.5 - abs(r))) / math.sin(math.pi * r)


@njit(**_JIT)
def _digamma_positive(x):
    """digamma(x) for finite x > 0."""
    if x >= 10.0:
        w = 1.0 / x
        return math.log(x) - 0.5 * w - (w * w) * _poly(w * w, _DIGAMMA_SERIES)
    acc = 0.0
    if x < 1.0:
        acc = -1.0 / x
        x += 1.0
    while x > 2.0:  # x - 1 is exact for x >= 1
        x -= 1.0
        acc += 1.0 / x
    root = (x - _X0_HI) - _X0_LO  # x - _X0_HI is exact (Sterbenz)
    return acc + root * _poly(x - 1.5, _ROOT_POLY)


@njit(**_JIT)
def _digamma(x):
    if not (x > 0.0):
        if x != x or x == -np.inf:
            return np.nan
        if x == 0.0:
            return -1.0 / x  # -inf for +0.0, +inf for -0.0, as scipy
        r = x - np.round(x)  # exact; cot(pi x) = cot(pi r)
        if r == 0.0:
            return np.nan  # pole at a negative integer
        # psi(x) = psi(1 - x) - pi cot(pi x); 1 - x > 1.
        return _digamma_positive(1.0 - x) - math.pi * _cot_pi(r)
    if x == np.inf:
        return np.inf
    return _digamma_positive(x)


@njit(**_JIT)
def _trigamma_positive(x):
    """trigamma(x) for x > 0 (inf allowed)."""
    acc = 0.0
    while x < 10.0:
        acc += 1.0 / (x * x)
        x += 1.0
    w = 1.0 / x
    z = w * w
    return acc + w * (1.0 + 0.5 * w + z * _poly(z, _TRIGAMMA_SERIES))


@njit(**_JIT)
def _trigamma(x):
    if x > 0.0:
        return _trigamma_positive(x)
    if x != x:
        return np.nan
    r = x - np.round(x) if x > -np.inf else 0.0
    if r == 0.0:
        return np.inf  # x = 0, a negative integer or -inf: scipy's convention
    # psi1(x) = pi**2 / sin(pi x)**2 - psi1(1 - x)
    s = math.sin(math.pi * r)
    return (math.pi * math.pi) / (s * s) - _trigamma_positive(1.0 - x)


@njit(**_JIT)
def _hurwitz_zeta(s, a):
    """zeta(s, a) = sum_k (a + k)**-s for integer s >= 2 and a > 0 (inf allowed)."""
    acc = 0.0
    big = 20.0 + s  # makes the Euler-Maclaurin terms shrink by >= 10x each
    while a < big:
        acc += a**-s
        a += 1.0
    # Tail: a**(1-s)/(s-1) + a**-s/2 + sum_j B_2j/(2j)! * s(s+1)...(s+2j-2) * a**(-s-2j+1).
    ap1 = a ** (1.0 - s)
    ap = ap1 / a
    tail = ap1 / (s - 1.0) + 0.5 * ap
    rising = s  # s (s+1) ... (s+2j-2)
    term_scale = ap / a
    inv_a2 = 1.0 / (a * a)
    for j in range(len(_EM_SERIES)):
        term = _EM_SERIES[j] * rising * term_scale
        tail += term
        if abs(term) <= 1e-17 * abs(tail):
            break
        rising *= (s + 2 * j + 1.0) * (s + 2 * j + 2.0)
        term_scale *= inv_a2
    return acc + tail


@njit(**_JIT)
def _cot_derivative(n, c):
    """The n-th derivative of cot at a point where cot = c, as a polynomial in c.

    With d/du cot u = -(1 + cot(u)**2), cot^(n) = Q_n(cot) where Q_0(c) = c and
    Q_{k+1}(c) = -(1 + c**2) Q_k'(c); Q_n has degree n + 1.
    """
    q = np.zeros(n + 2)
    q[1] = 1.0
    for k in range(n):
        new = np.zeros(n + 2)
        for i in range(1, k + 3):  # derivative coefficient i * q[i] goes to c**(i-1) and c**(i+1)
            d = i * q[i]
            new[i - 1] -= d
            if i + 1 < n + 2:
                new[i + 1] -= d
        q = new
    acc = q[n + 1]
    for i in range(n, -1, -1):
        acc = acc * c + q[i]
    return acc


@njit(**_JIT)
def _polygamma(n, x):
    if n == 0:
        return _digamma(x)
    if n == 1:
        return _trigamma(x)
    if n < 0 or x != x:
        return np.nan
    sign = 1.0 if n % 2 == 1 else -1.0  # (-1)**(n+1)
    factorial = math.gamma(n + 1.0)
    if x == np.inf:
        return sign * 0.0
    if x > 0.0:
        return sign * (factorial * _hurwitz_zeta(n + 1.0, x))
    r = x - np.round(x) if x > -np.inf else 0.0
    if r == 0.0:
        return sign * np.inf  # pole, or -inf: scipy's convention
    # Reflection, differentiated n times: psi_n(x) = (-1)**n psi_n(1 - x) - pi**(n+1) cot^(n)(pi x)
    # where (-1)**n psi_n(1 - x) = -n! zeta(n + 1, 1 - x).
    reflected = -(factorial * _hurwitz_zeta(n + 1.0, 1.0 - x))
    return reflected - math.pi ** (n + 1) * _cot_derivative(n, _cot_pi(r))


def _call(impl, *args):
    """Python-mode evaluation: float32 stays float32, anything else is float64."""
    x = args[-1]
    if isinstance(x, np.float32):
        return np.float32(impl(*args[:-1], np.float64(x)))
    return impl(*args[:-1], np.float64(x))


def _result(x):
    """Implementation wrapper choosing the result type from Numba type ``x`` (None: unsupported)."""
    if isinstance(x, types.Float) and x.bitwidth == 32:
        return np.float32
    if isinstance(x, (types.Float, types.Integer, types.Boolean)):
        return np.float64
    return None


def digamma(x):
    """Digamma function ``psi(x) = d/dx log(gamma(x))``.

    Parameters
    ----------
    x : float32 or float64 scalar

    Returns
    -------
    Same float type as ``x``; nan at the poles ``x = -1, -2, ...``; ``-inf``/``+inf`` at ``+0.0``
    and ``-0.0``.
    """
    return _call(_digamma, x)


def trigamma(x):
    """Trigamma function ``psi_1(x) = d/dx digamma(x)``; ``+inf`` at the poles ``0, -1, ...``."""
    return _call(_trigamma, x)


def polygamma(n, x):
    """Polygamma function ``psi_n(x)``, the ``n``-th derivative of ``digamma``.

    Parameters
    ----------
    n : int
        Order, ``n >= 0`` (``0`` is ``digamma``, ``1`` is ``trigamma``); a negative order gives nan.
    x : float32 or float64 scalar

    Returns
    -------
    Same float type as ``x``.
    """
    if n != int(n):
        return np.nan
    return _call(_polygamma, int(n), x)


@overload(digamma, jit_options=_JIT)
def _digamma_overload(x):
    out = _result(x)
    if out is not None:
        return lambda x: out(_digamma(np.float64(x)))
    return None


@overload(trigamma, jit_options=_JIT)
def _trigamma_overload(x):
    out = _result(x)
    if out is not None:
        return lambda x: out(_trigamma(np.float64(x)))
    return None


@overload(polygamma, jit_options=_JIT)
def _polygamma_overload(n, x):
    out = _result(x)
    if out is None or not isinstance(n, types.Integer):
        return None
    return lambda n, x: out(_polygamma(n, np.float64(x)))
