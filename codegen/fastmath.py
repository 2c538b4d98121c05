"""Vectorisable exp/log family kernels for generated Numba loops.

Why this module exists
----------------------
The elementwise loops that symgrad emits call transcendental functions once per element. Inside an
``@njit`` loop, Numba lowers ``math.exp``/``math.tanh``/... to calls into the C math library. LLVM
can only vectorise such calls when it has a vector math library to map them to (Intel SVML), and
the llvmlite wheels on PyPI ship without SVML, so every element pays for a scalar libm call
(10-60 ns per element measured) and NumPy's own SIMD ufuncs (1-7 ns) win. The functions below are
written with nothing but arithmetic, fused multiply-adds, comparisons/selects and integer bit
manipulation of the float encoding, so LLVM's loop vectoriser turns a loop that calls them into
SIMD code: about 1 ns per float32 element and 2-3 ns per float64 element over 1e6 elements, on a
par with NumPy's best ufuncs, and fused with the rest of the loop body instead of one pass and
one temporary array per operation (``benchmarks/bench_fastmath.py``).

Method
------
* ``exp``/``expm1``: ``x = n*ln2 + r`` with ``|r| <= ln2/2`` (Cody-Waite reduction with a split
  ``ln2`` so that ``n*LN2_HI`` is exact), ``expm1(r) = r + r**2 * S(r)`` with a polynomial ``S``,
  and ``2**n`` built directly in the exponent field. ``2**n`` is applied as two factors so that
  results in the subnormal range are rounded once and correctly, instead of flushing to zero.
* ``log``/``log1p``: ``1 + v = 2**k * m`` with ``m`` in ``[sqrt(1/2), sqrt(2))`` read from the bit
  pattern, ``f = m - 1`` (exact), ``s = f / (2 + f)`` and ``log(1 + f) = f - f**2/2 + s*(f**2/2 +
  s**2 * P(s**2))``, which keeps the large terms exact. ``log1p`` also carries the rounding error of
  ``1 + v`` as a first-order correction, so it stays accurate for tiny arguments.
* ``tanh``, ``sigmoid`` and ``softplus`` are built on those cores in forms that never overflow and
  never cancel catastrophically (see each function).

The polynomial coefficients were fitted for this module with
``mpmath.chebyfit(F, interval, degree + 1)`` (near-minimax) and rounded to the target type:
``F = (expm1(r) - r) / r**2`` on ``|r| <= 1.0005*ln2/2`` (degree 10 for float64, 5 for float32) and
``F = (2*atanh(sqrt(z)) - 2*sqrt(z)) / z**1.5`` on ``0 <= z <= 0.02945`` (degree 6 and 3).

Usage
-----
Each ``fast_*`` function is a plain Python function that Numba types and lowers like a builtin:
in ``@njit`` code it compiles to a call of the float32 or float64 variant matching the argument
type (integers are treated as float64), which LLVM always inlines, and returns that same type.
The variants are compiled with ``fastmath=False`` and ``error_model="numpy"`` whatever the caller
uses, so a caller compiled with ``fastmath=True`` cannot break their handling of inf and nan, and
divisions carry no zero checks that would block
vectorisation. Called from Python they evaluate one scalar (handy for testing, not fast).

Each variant is compiled once per installation, not once per process: ``kernel_cache`` keeps its
LLVM IR on disk and later processes load it in milliseconds instead of compiling for 0.5 s.

Accuracy
--------
Max error over the whole finite range, against NumPy evaluated in higher precision (float32: same
numbers within 0.05), on a CPU with FMA: exp 0.78 ulp, log 0.86, log1p 0.87, expm1 1.23,
sigmoid 1.45, softplus 1.56, tanh 1.73 (float32 1.46); ``tests/test_fastmath.py`` allows 2 and 3.
Without FMA hardware ``llvm.fmuladd`` is a multiply and an add: measured with
``NUMBA_CPU_NAME=x86-64``, tanh and sigmoid then reach 2.5 ulp, the others do not change.
Overflow gives inf, underflow gives correctly rounded subnormals and then 0, nan propagates,
``log(0) = -inf``, ``log(x < 0) = nan``, ``tanh``/``sigmoid`` saturate to exactly +-1 / 0 and 1,
and odd functions keep the sign of a zero argument (``tanh``, ``expm1``, ``log1p``).

Subnormal *intermediates* (for instance ``r*r`` for a tiny argument) are slow on x86 CPUs (a
microcode assist per instruction); arrays full of tiny or subnormal values therefore run several
times slower than typical data. The results stay correct.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.core.imputils import lower_builtin
from numba.extending import type_callable

from .fastmath_bits import JIT_OPTIONS as _JIT
from .fastmath_bits import as_float as _as_float
from .fastmath_bits import as_int as _as_int
from .fastmath_bits import fma as _fma
from .fastmath_bits import horner as _horner
from .fastmath_bits import wrap_int as _wrap
from .kernel_cache import inlinable_kernel

__all__ = [
    "fast_exp",
    "fast_expm1",
    "fast_log",
    "fast_log1p",
    "fast_tanh",
    "fast_sigmoid",
    "fast_softplus",
]


# ----------------------------------------------------------------------------------------------
# Per-type constants. LN2_HI has few enough significant bits (42 resp. 16) that n*LN2_HI is exact
# for every exponent n that can occur; LN2_HI + LN2_LO matches ln 2 to ~2**-97 resp. ~2**-44.

_CONSTANTS = {
    64: {
        "inv_ln2": 1.4426950408889634,
        "ln2_hi": float.fromhex("0x1.62e42fefa3800p-1"),
        "ln2_lo": float.fromhex("0x1.ef35793c76730p-45"),
        # exp(-746) < half the smallest subnormal; exp(710) > the largest double.
        "exp_lo": -746.0,
        "exp_hi": 710.0,
        # expm1(x) rounds to -1 below this; tanh(x) rounds to +-1 above tanh_sat.
        "expm1_lo": -38.0,
        "tanh_sat": 20.0,
        # Subnormal inputs of log are scaled by 2**subnormal_shift first.
        "subnormal_shift": 54,
        "S": (
            0.5,
            0.1666666666666667,
            0.04166666666666667,
            0.008333333333326112,
            0.001388888888888373,
            0.0001984126987490126,
            2.4801587325605324e-05,
            2.7557255297969643e-06,
            2.755727357010214e-07,
            2.5105259538448494e-08,
            2.0914717341716378e-09,
        ),
        "P": (
            0.666666666666667,
            0.3999999999989924,
            0.2857142862609589,
            0.2222221111514416,
            0.18182890556695602,
            0.1533167403016786,
            0.1461703754879165,
        ),
    },
    32: {
        "inv_ln2": 1.4426950216293335,
        "ln2_hi": float.fromhex("0x1.62e4p-1"),
        "ln2_lo": float.fromhex("0x1.7f7d1cp-20"),
        "exp_lo": -104.0,
        "exp_hi": 89.0,
        "expm1_lo": -18.0,
        "tanh_sat": 10.0,
        "subnormal_shift": 25,
        "S": (0.5, 0.16666667, 0.041666463, 0.0083333105, 0.0013933686, 0.0001989103),
        "P": (0.6666667, 0.40000123, 0.28550804, 0.23330964),
    },
}


def _variant(bitwidth):
    """Compile-ready kernels for one float type; all constants are frozen in that type."""
    ft, it = (np.float32, np.int32) if bitwidth == 32 else (np.float64, np.int64)
    c = _CONSTANTS[bitwidth]
    mant, bias = (23, 127) if bitwidth == 32 else (52, 1023)

    def bits(v):
        return int(np.array(v, dtype=ft).view(it))

    zero, one, two, half = ft(0.0), ft(1.0), ft(2.0), ft(0.5)
    inf, nan = ft(np.inf), ft(np.nan)
    inv_ln2, ln2_hi, ln2_lo = ft(c["inv_ln2"]), ft(c["ln2_hi"]), ft(c["ln2_lo"])
    exp_lo, exp_hi, expm1_lo = ft(c["exp_lo"]), ft(c["exp_hi"]), ft(c["expm1_lo"])
    tanh_sat, min_normal = ft(c["tanh_sat"]), ft(np.finfo(ft).tiny)
    sub_shift = c["subnormal_shift"]
    sub_scale = ft(2.0**sub_shift)
    # Below `tiny`, expm1(x) and log1p(x) round to x; returning x also keeps the sign of -0.0.
    tiny = ft(2.0 ** -(mant + 2))
    # Adding 1.5 * 2**mant rounds to an integer and leaves it in the low mantissa bits.
    shift = ft(1.5 * 2.0**mant)
    shift_bits = bits(shift)
    sqrt_half_bits = bits(math.sqrt(0.5))
    s_coeffs = tuple(ft(v) for v in c["S"])
    p_coeffs = tuple(ft(v) for v in c["P"])

    @njit(**_JIT)
    def pow2(n):
        # 2**n for -bias < n <= bias, written straight into the exponent field.
        return _as_float((n + bias) << mant, one)

    @njit(**_JIT)
    def reduce(x):
        # x = n*ln2 + (r + r_lo) with |r| <= ln2/2 (+ rounding). Returns r, q and the integer n
        # with expm1(r + r_lo) ~ r + q: keeping r apart lets callers add it exactly.
        t = _fma(x, inv_ln2, shift)
        nf = t - shift
        r_hi = _fma(-nf, ln2_hi, x)  # exact
        r = _fma(-nf, ln2_lo, r_hi)
        r_lo = _fma(-nf, ln2_lo, r_hi - r)  # what rounding r dropped
        q = _fma(r * r, _horner(r, s_coeffs), _fma(r_lo, r, r_lo))
        return r, q, _wrap(_as_int(t) - shift_bits, one)

    @njit(**_JIT)
    def exp(x):
        # Clamping keeps n in range; comparisons with nan are false, so nan flows through.
        x = exp_lo if x < exp_lo else x
        x = exp_hi if x > exp_hi else x
        r, q, n = reduce(x)
        # Two factors 2**(n//2) * 2**(n - n//2): each is a normal number even when the result is
        # subnormal or overflows, and the product rounds once.
        n1 = n >> 1
        return ((one + (r + q)) * pow2(n1)) * pow2(n - n1)

    @njit(**_JIT)
    def scale_expm1(r, q, n, t):
        # expm1(x) = t*(r + q) + (t - 1) with t = 2**n, exact t - 1 for the n that matter. For
        # n = 1 the sum cancels, and t*r + (t - 1) = 1 + 2r is exact, so add that first.
        y = _fma(t, r + q, t - one)
        return _fma(t, q, _fma(t, r, t - one)) if n == 1 else y

    @njit(**_JIT)
    def expm1_small(x):
        # expm1 for |x| small enough that 2**n is a normal number (true for |x| <= 2*tanh_sat).
        r, q, n = reduce(x)
        return scale_expm1(r, q, n, pow2(n))

    @njit(**_JIT)
    def expm1(x):
        xc = expm1_lo if x < expm1_lo else x
        xc = exp_hi if xc > exp_hi else xc
        r, q, n = reduce(xc)
        # Only n = bias + 1 (just below overflow) has no normal 2**n: use 2**bias, then double.
        nb = bias if n > bias else n
        t = pow2(nb)
        y = scale_expm1(r, q, n, t)
        y = y * two if n > bias else y
        return x if abs(x) < tiny else y

    @njit(**_JIT)
    def split(u):
        # u = 2**k * (1 + f) with 1 + f in [sqrt(1/2), sqrt(2)); f = m - 1 is exact.
        b = _as_int(u)
        k = _wrap(b - sqrt_half_bits, one) >> mant
        return k, _as_float(b - (k << mant), one) - one

    @njit(**_JIT)
    def log_tail(k, f, s, corr):
        # k*ln2 + log(1 + f) + corr, given s = f/(2+f). log(1+f) = 2*atanh(s)
        # = f - f**2/2 + s*(f**2/2 + s**2*P(s**2)); the big terms f, f**2/2, k*ln2_hi are exact or
        # nearly so, and the small ones are added first.
        z = s * s
        hfsq = half * f * f
        kf = _as_float(k + shift_bits, one) - shift  # exact int -> float without cvt instructions
        t = _fma(s, _fma(z, _horner(z, p_coeffs), hfsq), _fma(kf, ln2_lo, corr))
        return _fma(kf, ln2_hi, f - (hfsq - t))

    @njit(**_JIT)
    def log(x):
        sub = x < min_normal
        k, f = split(x * sub_scale if sub else x)
        y = log_tail(k - sub_shift if sub else k, f, f / (two + f), zero)
        y = y if x < inf else x
        return y if x > zero else (-inf if x == zero else nan)

    @njit(**_JIT)
    def log1p_core(v):
        # log(1 + v) for 1 + v finite and positive.
        u = one + v
        # The rounding error of 1 + v: exact for v <= 2**mant (Fast2Sum for |v| <= 1, and beyond
        # that u - 1 and v - (u - 1) are exact), and negligible next to log(u) for larger v.
        err = v - (u - one)
        k, f = split(u)
        # log(1 + f + e) = log(1 + f) + e/(1 + f) to first order, e = err * 2**-k. The factor
        # 1/(1 + f) = (1 - s)/(1 + s) ~ (1 - s)**2 * (1 + s**2) is plenty for a sub-ulp term.
        s = f / (two + f)
        kc = bias - 1 if k > bias - 1 else k
        corr = (err * pow2(-kc)) * ((one - s) * (one - s) * _fma(s, s, one))
        return log_tail(k, f, s, corr)

    @njit(**_JIT)
    def log1p(x):
        y = log1p_core(x)
        u = one + x
        y = y if u < inf else u
        y = y if u > zero else (-inf if u == zero else nan)
        return x if abs(x) < tiny else y

    @njit(**_JIT)
    def div_sum(a, b, c):
        # a / (b + c) for |b| >= |c|, without the up-to-1-ulp error of rounding b + c first:
        # d + d_err = b + c exactly (Fast2Sum), then one Newton correction of a * (1/d).
        d = b + c
        d_err = (b - d) + c
        rd = one / d
        y = a * rd
        return _fma(_fma(-y, d, a) - y * d_err, rd, y)

    @njit(**_JIT)
    def tanh(x):
        # tanh|x| = e / (e + 2) with e = expm1(2|x|): no cancellation for small |x|, no overflow
        # thanks to the clamp, and exactly 1 beyond tanh_sat. copysign keeps tanh(-0.0) = -0.0.
        a = abs(x)
        ac = tanh_sat if a > tanh_sat else a
        e = expm1_small(ac + ac)
        y = div_sum(e, e, two) if e > two else div_sum(e, two, e)
        y = one if a > tanh_sat else y
        return math.copysign(y, x)

    @njit(**_JIT)
    def sigmoid(x):
        # e = exp(-|x|) never overflows; 1/(1 + e) for x >= 0 and e/(1 + e) for x < 0 both avoid
        # cancellation, and the second underflows gracefully through the subnormals.
        e = exp(-abs(x))
        return div_sum(one if x >= zero else e, one, e)

    @njit(**_JIT)
    def softplus(x):
        # log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)), with exp(-|x|) in [0, 1].
        y = (x if x > zero else zero) + log1p_core(exp(-abs(x)))
        return y if x == x else x

    return {
        "exp": exp,
        "expm1": expm1,
        "log": log,
        "log1p": log1p,
        "tanh": tanh,
        "sigmoid": sigmoid,
        "softplus": softplus,
    }


_VARIANTS = {32: _variant(32), 64: _variant(64)}


def _call(name, x):
    """Python-mode evaluation of one scalar (float32 stays float32, anything else is float64)."""
    if isinstance(x, np.float32):
        return np.float32(_VARIANTS[32][name](x))
    return _VARIANTS[64][name](np.float64(x))


def _register(stub, name):
    """Make ``stub`` compile, in ``@njit`` code, to a direct call of the matching variant.

    ``stub`` is typed and lowered like a builtin (no wrapper function around the kernel), and
    the kernel is marked ``alwaysinline`` (``inline_llvm`` says why): the calling loop
    vectorises only when no call is left in it. The kernel's code comes from ``kernel_cache``:
    its LLVM IR from an earlier process when available, compiled by Numba otherwise.
    """
    kernels = {32: _VARIANTS[32][name], 64: _VARIANTS[64][name]}

    def width(argtype) -> int:
        return argtype.bitwidth if isinstance(argtype, types.Float) else 64

    @type_callable(stub)
    def _type(context):
        def typer(x):
            if isinstance(x, types.Float) and x.bitwidth in kernels:
                return x
            if isinstance(x, (types.Integer, types.Boolean)):
                return types.float64
            return None

        return typer

    def _lower(context, builder, sig, args):
        (argtype,) = sig.args
        bits = width(argtype)
        float_type = types.float32 if bits == 32 else types.float64
        kernel_sig = float_type(float_type)
        library, fndesc = inlinable_kernel(name, kernels[bits], kernel_sig)
        (value,) = args
        if argtype != float_type:
            value = context.cast(builder, value, argtype, float_type)
        context.add_linking_libs([library])
        return context.call_internal(builder, fndesc, kernel_sig, [value])

    for argtype in (types.Float, types.Integer, types.Boolean):
        lower_builtin(stub, argtype)(_lower)
    return stub


def fast_exp(x):
    """Exponential ``e**x``; inf above ~709.78 (float32: ~88.72), subnormals then 0 below."""
    return _call("exp", x)


def fast_expm1(x):
    """``exp(x) - 1``, accurate also for tiny ``|x|``; -1 for very negative ``x``."""
    return _call("expm1", x)


def fast_log(x):
    """Natural logarithm; ``log(0) = -inf``, ``log(x < 0) = nan``, subnormal ``x`` supported."""
    return _call("log", x)


def fast_log1p(x):
    """``log(1 + x)``, accurate also for tiny ``|x|``; -inf at ``x = -1``, nan below."""
    return _call("log1p", x)


def fast_tanh(x):
    """Hyperbolic tangent; exactly +-1 for ``|x| > 20`` (float32: 10), odd in the sign of zero."""
    return _call("tanh", x)


def fast_sigmoid(x):
    """Logistic function ``1 / (1 + exp(-x))``; saturates to exactly 1 and (via subnormals) 0."""
    return _call("sigmoid", x)


def fast_softplus(x):
    """``log(1 + exp(x))`` without overflow: equals ``x`` for large ``x``, ``exp(x)`` for very
    negative ``x``."""
    return _call("softplus", x)


for _stub in (fast_exp, fast_expm1, fast_log, fast_log1p, fast_tanh, fast_sigmoid, fast_softplus):
    _register(_stub, _stub.__name__.removeprefix("fast_"))
del _stub
