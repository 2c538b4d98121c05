"""Hypothesis strategies for SymPy expressions that symgrad can compile and differentiate.

The expression trees drawn here are *in their domain by construction*: every node carries an
interval that bounds its value for every input in ``[min_value, max_value]``, and each function is
only applied to an argument whose interval lies inside a safe part of that function's domain. When
a child's interval does not fit, the child is first passed through an *adapter* that maps the whole
real line into the needed window (for example ``log(u**2 + 1/2)``, ``asin(tanh(u)/2)``,
``1/(u**2 + 1)``, ``exp(3*sin(u))``). Magnitudes are capped the same way, so values and first
derivatives stay moderate and central finite differences are meaningful.

Non-smooth functions (``Abs``, ``sign``, ``Max``, ``Min``, ``Heaviside``, ``Piecewise``) are
opt-in. Their kinks are shifted off the "simple" values that hypothesis likes to draw (0, 1, 2, the
bounds of the range) by irrational-looking rational offsets, e.g. ``Abs(u - 7/23)``; a test then
drops the rare input draws that still land near a kink with :func:`kink_distance`.

Trees are built over real stand-ins of the given symbols (symgrad treats every symbol as real),
so SymPy's evaluation of each new node asks its assumption questions about real values, which is
quick; the caller's symbols are put back without evaluating again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .check import _lambdify

__all__ = [
    "ALL_FUNCTIONS",
    "NONSMOOTH_FUNCTIONS",
    "SMOOTH_FUNCTIONS",
    "SPECIAL_FUNCTIONS",
    "arrays_for",
    "bounded_expressions",
    "expressions",
    "input_values",
    "kink_distance",
]

#: Elementary smooth functions, offered by default. ``+ - * /`` and integer, rational and
#: symbolic powers are always offered.
SMOOTH_FUNCTIONS: frozenset[str] = frozenset(
    {
        "exp",
        "log",
        "sqrt",
        "sin",
        "cos",
        "tan",
        "tanh",
        "sinh",
        "cosh",
        "atan",
        "asin",
        "acos",
        "asinh",
        "acosh",
        "atanh",
        "erf",
        "erfc",
    }
)
#: Opt-in: functions with kinks or jumps (finite differences are only valid away from those).
NONSMOOTH_FUNCTIONS: frozenset[str] = frozenset(
    {"Abs", "sign", "Max", "Min", "Heaviside", "Piecewise"}
)
#: Opt-in: special functions whose compiled versions need more machinery.
SPECIAL_FUNCTIONS: frozenset[str] = frozenset({"gamma", "loggamma"})
#: Everything this module knows how to draw.
ALL_FUNCTIONS: frozenset[str] = SMOOTH_FUNCTIONS | NONSMOOTH_FUNCTIONS | SPECIAL_FUNCTIONS

# Values of intermediate nodes are kept inside [-_CAP, _CAP]. Products of two capped nodes stay
# far from overflow in float32, and gradients stay within a few orders of magnitude of 1.
_CAP = 30.0

# Kinks are moved off 0 by these offsets (none is a "nice" float hypothesis would draw).
_KINK_OFFSETS = (
    sp.Rational(7, 23),
    sp.Rational(-5, 17),
    sp.Rational(11, 31),
    sp.Rational(-3, 13),
    sp.Rational(2, 7),
)

_CONSTANTS = tuple(
    sp.sympify(c)
    for c in (
        1,
        2,
        3,
        -1,
        -2,
        sp.Rational(1, 2),
        sp.Rational(-1, 2),
        sp.Rational(3, 2),
        sp.Rational(1, 3),
        sp.Rational(-2, 3),
        sp.Rational(3, 4),
    )
)
_INT_EXPONENTS = (2, 3, -1, -2, 4)
_RATIONAL_EXPONENTS = tuple(
    sp.Rational(p, q) for p, q in ((1, 2), (3, 2), (-1, 2), (1, 3), (2, 3), (-3, 2), (5, 2))
)


@dataclass(frozen=True)
class _Node:
    """An expression together with an interval containing all of its values."""

    expr: sp.Expr
    lo: float
    hi: float

    @property
    def mag(self) -> float:
        return max(abs(self.lo), abs(self.hi))

    def within(self, lo: float, hi: float) -> bool:
        return lo <= self.lo and self.hi <= hi


@dataclass(frozen=True)
class _Context:
    symbols: tuple[sp.Symbol, ...]
    min_value: float
    max_value: float
    functions: frozenset[str]


def _monotone(fn: Callable[[float], float]) -> Callable[[float, float], tuple[float, float]]:
    def bound(lo: float, hi: float) -> tuple[float, float]:
        a, b = fn(lo), fn(hi)
        return (min(a, b), max(a, b))

    return bound


def _cosh_bound(lo: float, hi: float) -> tuple[float, float]:
    inner = 0.0 if lo <= 0.0 <= hi else min(abs(lo), abs(hi))
    return (math.cosh(inner), math.cosh(max(abs(lo), abs(hi))))


_GAMMA_MIN = 0.8856031944108887  # min of gamma on (0, inf), at x ~ 1.4616


def _gamma_bound(lo: float, hi: float) -> tuple[float, float]:
    return (_GAMMA_MIN, max(math.gamma(lo), math.gamma(hi)))


def _loggamma_bound(lo: float, hi: float) -> tuple[float, float]:
    return (math.log(_GAMMA_MIN), max(math.lgamma(lo), math.lgamma(hi)))


@dataclass(frozen=True)
class _Unary:
    func: Callable[[sp.Expr], sp.Expr]
    domain: tuple[float, float]  # safe window for the argument (kept away from singularities)
    bound: Callable[[float, float], tuple[float, float]]


_INF = math.inf
_UNARY: dict[str, _Unary] = {
    "exp": _Unary(sp.exp, (-3.0, 3.0), _monotone(math.exp)),
    "sinh": _Unary(sp.sinh, (-3.0, 3.0), _monotone(math.sinh)),
    "cosh": _Unary(sp.cosh, (-3.0, 3.0), _cosh_bound),
    "log": _Unary(sp.log, (0.25, _INF), _monotone(math.log)),
    "sqrt": _Unary(sp.sqrt, (0.25, _INF), _monotone(math.sqrt)),
    "sin": _Unary(sp.sin, (-_INF, _INF), lambda lo, hi: (-1.0, 1.0)),
    "cos": _Unary(sp.cos, (-_INF, _INF), lambda lo, hi: (-1.0, 1.0)),
    "tan": _Unary(sp.tan, (-1.2, 1.2), _monotone(math.tan)),
    "tanh": _Unary(sp.tanh, (-_INF, _INF), _monotone(math.tanh)),
    "atan": _Unary(sp.atan, (-_INF, _INF), _monotone(math.atan)),
    "asinh": _Unary(sp.asinh, (-_INF, _INF), _monotone(math.asinh)),
    "erf": _Unary(sp.erf, (-_INF, _INF), _monotone(math.erf)),
    "erfc": _Unary(sp.erfc, (-_INF, _INF), _monotone(math.erfc)),
    # Inverse functions: the window keeps |derivative| <= ~2.3 (no infinite slopes at the edges).
    "asin": _Unary(sp.asin, (-0.75, 0.75), _monotone(math.asin)),
    "acos": _Unary(sp.acos, (-0.75, 0.75), _monotone(math.acos)),
    "atanh": _Unary(sp.atanh, (-0.75, 0.75), _monotone(math.atanh)),
    "acosh": _Unary(sp.acosh, (1.25, _INF), _monotone(math.acosh)),
    # Special functions: positive arguments away from the poles of gamma.
    "gamma": _Unary(sp.gamma, (0.5, 4.0), _gamma_bound),
    "loggamma": _Unary(sp.loggamma, (0.5, 6.0), _loggamma_bound),
}
_KINKED_UNARY = ("Abs", "sign", "Heaviside")

# Functions that map the whole real line into [-1, 1]; the adapters use the ones the caller
# allowed, and always have the rational squash 2u/(1 + u**2) available.
_SQUASHERS = ("sin", "tanh", "cos", "erf")
# sin and cos of a large argument oscillate fast: cos(u) * du/dx stays as large as du/dx where
# u is large, while the saturating squashes damp it. Large arguments get saturating ones only.
_PERIODIC_ARG_LIMIT = 4.0


def _squash(draw: Any, ctx: _Context, node: _Node) -> sp.Expr:
    """Return an expression of ``node`` whose values lie in [-1, 1] for every real input."""
    allowed = [name for name in _SQUASHERS if name in ctx.functions]
    if node.mag > _PERIODIC_ARG_LIMIT:
        allowed = [name for name in allowed if name not in ("sin", "cos")]
    options = ["rational"] + allowed
    choice = draw(st.sampled_from(options))
    if choice == "rational":
        return 2 * node.expr / (1 + node.expr**2)
    return _UNARY[choice].func(node.expr)


def _has_even_power_factor(expr: sp.Expr) -> bool:
    factors = expr.args if expr.is_Mul else (expr,)
    return any(f.is_Pow and f.exp.is_even for f in factors)


def _adapt(
    draw: Any, ctx: _Context, node: _Node, lo: float, hi: float, *, power_base: bool = False
) -> _Node:
    """Map ``node`` into the window [lo, hi] (``hi`` may be infinite).

    Keeps the node unchanged when its interval already fits, so direct compositions such as
    ``log(exp(x) + 1)`` are drawn too. ``power_base``: the result is raised to a non-integer
    power, so an even power factor such as ``v**2`` is not kept as it is: over the reals SymPy
    writes ``(v**2)**q`` as ``Abs(v)**(2*q)``, which would bring ``Abs`` into smooth trees.
    """
    if math.isinf(lo):
        return node  # only whole-line domains are open below; anything fits
    fits = node.within(lo, hi) and not (power_base and _has_even_power_factor(node.expr))
    forms = (["identity"] if fits else []) + ["window"]
    if math.isinf(hi):
        forms.append("square")
        if "exp" in ctx.functions and lo <= 0.3:
            forms.append("exp")
    form = draw(st.sampled_from(forms))
    if form == "identity":
        return node
    if form == "square":
        # u**2 + c with c >= lo: positive with a margin, no kink anywhere.
        c = max(sp.Rational(1, 2), sp.Rational(math.ceil(lo * 4), 4))
        return _Node(node.expr**2 + c, float(c), node.mag**2 + float(c))
    if form == "exp":
        # exp(s) with s in [-1, 1] lies in [1/e, e].
        return _Node(sp.exp(_squash(draw, ctx, node)), math.exp(-1.0), math.exp(1.0))
    # window: mid + half * s with s in [-1, 1]; finite windows are used as they are, half-open
    # ones [lo, inf) become [lo, lo + 2].
    top = hi if math.isfinite(hi) else lo + 2.0
    mid = sp.Rational((lo + top) / 2).limit_denominator(1000)
    half = sp.Rational((top - lo) / 2).limit_denominator(1000)
    return _Node(mid + half * _squash(draw, ctx, node), lo, top)


def _capped(draw: Any, ctx: _Context, node: _Node) -> _Node:
    """Keep intermediate magnitudes below ``_CAP`` (prevents exp-of-exp style overflow)."""
    if node.mag <= _CAP:
        return node
    return _adapt(draw, ctx, node, -4.0, 4.0)


@st.composite
def _leaf(draw: Any, ctx: _Context) -> _Node:
    # Symbols three times as likely as constants; the first option is what shrinking goes to.
    if draw(st.integers(0, 3)) < 3:
        sym = draw(st.sampled_from(ctx.symbols))
        return _Node(sym, ctx.min_value, ctx.max_value)
    if draw(st.booleans()):
        c = draw(st.sampled_from(_CONSTANTS))
    else:
        # A few decimals only: the exact constant shows up readably in failure reports.
        c = sp.Float(round(draw(st.floats(-3.0, 3.0, allow_nan=False)), 3))
    return _Node(c, float(c), float(c))


def _mul_bound(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    products = [a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1]]
    return (min(products), max(products))


def _int_pow_bound(node: _Node, n: int) -> tuple[float, float]:
    lo, hi = node.lo, node.hi
    if n % 2 == 0:
        inner = 0.0 if lo <= 0.0 <= hi else min(abs(lo), abs(hi))
        return (inner**n, node.mag**n)
    return (lo**n, hi**n)  # odd n > 0 is monotone


def _positive_pow_bound(node: _Node, e: float) -> tuple[float, float]:
    a, b = node.lo**e, node.hi**e
    return (min(a, b), max(a, b))


# Always available, whatever the function vocabulary.
_OPERATORS = ("add", "sub", "mul", "div", "pow_int", "pow_rational", "pow_tree")


def _kink_point(draw: Any, node: _Node) -> sp.Rational:
    """A threshold inside ``node``'s range, but never a value hypothesis is keen on (0, 1, ...)."""
    mid = sp.Rational(round((node.lo + node.hi) / 2 * 1000), 1000)
    scale = max(1, round((node.hi - node.lo) / 4))
    return mid + scale * draw(st.sampled_from(_KINK_OFFSETS))


@st.composite
def _tree(draw: Any, ctx: _Context, depth: int, min_depth: int = 0) -> _Node:
    if depth <= 0:
        return draw(_leaf(ctx))
    unary = sorted((set(_UNARY) | set(_KINKED_UNARY)) & ctx.functions)
    binary_funcs = sorted({"Max", "Min"} & ctx.functions)
    # No leaves above min_depth: a bare symbol or constant is a waste of a compile.
    kinds = ([] if min_depth > 0 else ["leaf"]) + ["operator"]
    kinds += ["function"] if unary else []
    kinds += ["nonsmooth2"] if binary_funcs else []
    kinds += ["piecewise"] if "Piecewise" in ctx.functions else []
    kind = draw(st.sampled_from(kinds))
    sub = _tree(ctx, depth - 1, min_depth - 1)
    if kind == "leaf":
        return draw(_leaf(ctx))
    if kind == "function":
        name = draw(st.sampled_from(unary))
        child = draw(sub)
        if name in _KINKED_UNARY:
            arg = child.expr - _kink_point(draw, child)
            if name == "Abs":
                # |t| <= 1.2 * mag + 0.2 for the threshold t, so |u - t| <= 3 * mag + 1.
                return _capped(draw, ctx, _Node(sp.Abs(arg), 0.0, 3.0 * child.mag + 1.0))
            if name == "sign":
                return _Node(sp.sign(arg), -1.0, 1.0)
            return _Node(sp.Heaviside(arg), 0.0, 1.0)
        spec = _UNARY[name]
        arg = _adapt(draw, ctx, child, *spec.domain, power_base=name == "sqrt")
        lo, hi = spec.bound(arg.lo, arg.hi)
        return _capped(draw, ctx, _Node(spec.func(arg.expr), lo, hi))
    if kind == "nonsmooth2":
        name = draw(st.sampled_from(binary_funcs))
        a, b = draw(sub), draw(sub)
        offset = draw(st.sampled_from(_KINK_OFFSETS))
        b_expr, b_lo, b_hi = b.expr + offset, b.lo + float(offset), b.hi + float(offset)
        if name == "Max":
            return _Node(sp.Max(a.expr, b_expr), max(a.lo, b_lo), max(a.hi, b_hi))
        return _Node(sp.Min(a.expr, b_expr), min(a.lo, b_lo), min(a.hi, b_hi))
    if kind == "piecewise":
        # The condition is drawn without non-smooth functions: SymPy turns a Piecewise inside a
        # condition into ITE(...) booleans, which are a different feature than Piecewise.
        smooth_ctx = _Context(
            ctx.symbols, ctx.min_value, ctx.max_value, ctx.functions - NONSMOOTH_FUNCTIONS
        )
        u = draw(_tree(smooth_ctx, depth - 1, min_depth - 1))
        a, b = draw(sub), draw(sub)
        expr = sp.Piecewise((a.expr, u.expr < _kink_point(draw, u)), (b.expr, True))
        return _Node(expr, min(a.lo, b.lo), max(a.hi, b.hi))
    op = draw(st.sampled_from(_OPERATORS))
    if op == "pow_int":
        n = draw(st.sampled_from(_INT_EXPONENTS))
        base = draw(sub)
        if n < 0:
            base = _adapt(draw, ctx, base, 0.5, _INF)
            lo, hi = base.hi**n, base.lo**n
        else:
            lo, hi = _int_pow_bound(base, n)
        return _capped(draw, ctx, _Node(base.expr**n, lo, hi))
    if op == "pow_rational":
        q = draw(st.sampled_from(_RATIONAL_EXPONENTS))
        base = _adapt(draw, ctx, draw(sub), 0.25, _INF, power_base=True)
        return _capped(draw, ctx, _Node(base.expr**q, *_positive_pow_bound(base, float(q))))
    a, b = draw(sub), draw(sub)
    if op == "add":
        node = _Node(a.expr + b.expr, a.lo + b.lo, a.hi + b.hi)
    elif op == "sub":
        node = _Node(a.expr - b.expr, a.lo - b.hi, a.hi - b.lo)
    elif op == "mul":
        node = _Node(a.expr * b.expr, *_mul_bound((a.lo, a.hi), (b.lo, b.hi)))
    elif op == "div":
        den = _adapt(draw, ctx, b, 0.5, _INF)
        node = _Node(a.expr / den.expr, *_mul_bound((a.lo, a.hi), (1.0 / den.hi, 1.0 / den.lo)))
    else:  # pow_tree: positive base ** bounded exponent, i.e. exp(exponent * log(base))
        base = _adapt(draw, ctx, a, 0.5, 3.0, power_base=True)
        expo = _adapt(draw, ctx, b, -2.0, 2.0)
        log_lo, log_hi = _mul_bound((math.log(base.lo), math.log(base.hi)), (expo.lo, expo.hi))
        node = _Node(base.expr**expo.expr, math.exp(log_lo), math.exp(log_hi))
    return _capped(draw, ctx, node)


def _function_names(functions: Iterable[str | Any] | None) -> frozenset[str]:
    if functions is None:
        return SMOOTH_FUNCTIONS
    names = frozenset(
        f if isinstance(f, str) else getattr(f, "__name__", str(f)) for f in functions
    )
    unknown = names - ALL_FUNCTIONS
    if unknown:
        raise ValueError(
            f"unknown function name(s) {sorted(unknown)}; choose from {sorted(ALL_FUNCTIONS)}"
        )
    return names


def _real_stand_ins(
    symbols: tuple[sp.Symbol, ...],
) -> tuple[tuple[sp.Symbol, ...], dict[sp.Symbol, sp.Symbol]]:
    """Real symbols to build the trees over, and the map back to the caller's symbols.

    SymPy evaluates every node as it is built (``acosh(u)`` asks whether ``u`` is zero, a power
    of a power whether its base is real, ...). Over a symbol without assumptions those queries
    reason about complex values: ``cosh(w).is_real`` with a complex ``w`` splits ``w`` into real
    and imaginary parts and reduces the imaginary part modulo pi with a polynomial gcd, which for
    ``w = (tanh(x) + 3/2)**-4`` already runs for minutes. Over real symbols (what symgrad
    assumes anyway) the same queries are answered from the argument's realness at once.
    """
    names = [s.name for s in symbols]
    twins: list[sp.Symbol] = []
    originals: dict[sp.Symbol, sp.Symbol] = {}
    for s in symbols:
        if s.is_real:
            twins.append(s)
            continue
        # Same name and class, so SymPy orders the arguments of sums and products as it would
        # for the caller's symbol; a Dummy only where two of the caller's symbols share a name.
        make = sp.Symbol if names.count(s.name) == 1 else sp.Dummy
        twin = make(s.name, real=True)
        twins.append(twin)
        originals[twin] = s
    return tuple(twins), originals


def _restore_symbols(expr: sp.Expr, originals: Mapping[sp.Symbol, sp.Symbol]) -> sp.Expr:
    """Put the caller's symbols back without evaluating again (which would redo the queries)."""
    if not originals:
        return expr
    with sp.evaluate(False):
        return expr.xreplace(dict(originals))


def bounded_expressions(
    symbols: Sequence[sp.Symbol],
    max_depth: int = 3,
    functions: Iterable[str | Any] | None = None,
    *,
    min_depth: int = 1,
    min_value: float = -2.0,
    max_value: float = 2.0,
) -> st.SearchStrategy[tuple[sp.Expr, tuple[float, float]]]:
    """Like :func:`expressions`, but draw ``(expr, (lo, hi))`` pairs.

    ``lo <= expr <= hi`` holds for every assignment of the symbols in ``[min_value, max_value]``
    (the interval is conservative, not tight).
    """
    symbols = tuple(symbols)
    if not symbols:
        raise ValueError("expressions need at least one symbol")
    if not all(isinstance(s, sp.Symbol) for s in symbols):
        raise TypeError("expressions are drawn over scalar sympy Symbols only")
    if not min_value <= max_value:
        raise ValueError("min_value must not exceed max_value")
    if max_depth < 1 or min_depth < 0:
        raise ValueError("need max_depth >= 1 and min_depth >= 0")
    twins, originals = _real_stand_ins(symbols)
    ctx = _Context(twins, float(min_value), float(max_value), _function_names(functions))
    # A constant tree has a zero gradient: it tests nothing, so ask for at least one symbol.
    return (
        _tree(ctx, max_depth, max(1, min(min_depth, max_depth)))
        .filter(lambda node: bool(node.expr.free_symbols))
        .map(lambda node: (_restore_symbols(node.expr, originals), (node.lo, node.hi)))
    )


def expressions(
    symbols: Sequence[sp.Symbol],
    max_depth: int = 3,
    functions: Iterable[str | Any] | None = None,
    *,
    min_depth: int = 1,
    min_value: float = -2.0,
    max_value: float = 2.0,
) -> st.SearchStrategy[sp.Expr]:
    """Draw random SymPy expression trees over ``symbols`` that symgrad can differentiate.

    Every drawn expression is real, finite and differentiable for *every* assignment of the
    symbols in ``[min_value, max_value]``: each function is applied to an argument kept inside a
    safe part of its domain by construction (e.g. ``log(u**2 + 1/2)``, ``acosh(u**2 + 2)``,
    ``atanh(tanh(u)/2)``, division by ``u**2 + 1``), and intermediate magnitudes are capped
    (about 30), so there is no ``exp(exp(exp(...)))`` overflow.

    Parameters
    ----------
    symbols : sequence of sympy.Symbol
        The free symbols to draw from; each expression uses at least one of them.
    max_depth : int, default 3
        Maximum nesting depth of drawn operations. The domain adapters (``u**2 + 1/2`` ...) add
        depth on top of it.
    functions : iterable of str or SymPy function classes, optional
        The function vocabulary. Defaults to :data:`SMOOTH_FUNCTIONS`. ``+ - * /`` and powers
        (integer, rational, and positive base to a bounded symbolic exponent) are always used.
        Opt in to :data:`NONSMOOTH_FUNCTIONS` (their kinks are offset from 0 by constants such
        as 7/23; skip inputs near a kink with :func:`kink_distance`) or to
        :data:`SPECIAL_FUNCTIONS` (``gamma``, ``loggamma`` on positive arguments).
    min_depth : int, default 1
        Every leaf lies at least this deep (capped at ``max_depth``), so no bare symbol is
        drawn; raise it for bigger trees when each tree is expensive (a compile, say).
    min_value, max_value : float, default -2, 2
        The input range for which the domain guarantee holds.

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        A strategy of ``sympy.Expr``.

    Examples
    --------
    >>> import math, sympy as sp
    >>> from hypothesis import given, settings
    >>> from symgrad.testing import expressions, input_values
    >>> x, y = sp.symbols("x y")
    >>> @settings(max_examples=20, derandomize=True, database=None)
    ... @given(expressions([x, y], max_depth=3), input_values([x, y]))
    ... def test_finite(expr, values):
    ...     assert expr.free_symbols <= {x, y}
    ...     assert math.isfinite(float(expr.subs(values)))
    >>> test_finite()
    """
    return bounded_expressions(
        symbols,
        max_depth,
        functions,
        min_depth=min_depth,
        min_value=min_value,
        max_value=max_value,
    ).map(lambda pair: pair[0])


def _resolve_shape(shape: Any, dims: Mapping[Any, int] | None) -> tuple[int, ...]:
    if isinstance(shape, (sp.MatrixBase, sp.MatrixExpr)) or hasattr(shape, "shape"):
        shape = shape.shape
    if isinstance(shape, (int, np.integer, sp.Basic)):
        shape = (shape,)
    named = {getattr(k, "name", k): v for k, v in (dims or {}).items()}
    out = []
    for d in shape:
        if isinstance(d, sp.Basic) and not d.is_Integer:
            d = d.xreplace(
                {s: sp.Integer(named[s.name]) for s in d.free_symbols if s.name in named}
            )
            if not d.is_Integer:
                raise ValueError(f"dimension {d} is symbolic; give its size in dims=")
        out.append(int(d))
    if any(n < 0 for n in out):
        raise ValueError(f"negative dimension in shape {tuple(out)}")
    return tuple(out)


def _float_elements(min_value: float, max_value: float, dtype: Any) -> st.SearchStrategy[float]:
    width = 32 if np.dtype(dtype) == np.float32 else 64
    # Subnormals are valid inputs, but they only exercise denormal arithmetic, not gradients.
    return st.floats(
        min_value,
        max_value,
        allow_nan=False,
        allow_infinity=False,
        allow_subnormal=False,
        width=width,
    )


def arrays_for(
    shape: Any,
    *,
    dims: Mapping[Any, int] | None = None,
    min_value: float = -2.0,
    max_value: float = 2.0,
    dtype: Any = "float64",
) -> st.SearchStrategy[np.ndarray]:
    """Draw arrays of finite floats in ``[min_value, max_value]`` for a given shape.

    Parameters
    ----------
    shape : tuple, int, sympy.MatrixSymbol or matrix expression
        The array shape. Symbolic dimensions (e.g. the ``n`` of ``MatrixSymbol("X", n, 3)``) are
        bound through ``dims``.
    dims : mapping, optional
        Sizes for symbolic dimensions, keyed by Symbol or name.
    min_value, max_value : float
        Element range.
    dtype : str or numpy dtype, default "float64"
        ``"float32"`` draws float32-representable values and returns float32 arrays.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, not {dtype}")
    return hnp.arrays(
        dtype, _resolve_shape(shape, dims), elements=_float_elements(min_value, max_value, dtype)
    )


@st.composite
def _input_values(
    draw: Any,
    symbols: tuple[Any, ...],
    min_value: float,
    max_value: float,
    dims: Mapping[Any, int] | None,
    dtype: Any,
) -> dict[Any, Any]:
    values: dict[Any, Any] = {}
    for sym in symbols:
        if isinstance(sym, sp.MatrixSymbol):
            values[sym] = draw(
                arrays_for(sym, dims=dims, min_value=min_value, max_value=max_value, dtype=dtype)
            )
        else:
            values[sym] = draw(_float_elements(min_value, max_value, dtype))
    return values


def input_values(
    symbols: Iterable[Any],
    min_value: float = -2.0,
    max_value: float = 2.0,
    *,
    dims: Mapping[Any, int] | None = None,
    dtype: Any = "float64",
) -> st.SearchStrategy[dict[Any, Any]]:
    """Draw one input dict ``{symbol: value}`` for ``symbols``.

    Scalar symbols get Python floats in ``[min_value, max_value]`` (no NaN, infinities or
    subnormals); ``MatrixSymbol``\\ s get arrays of their shape (see :func:`arrays_for`, symbolic
    dimensions are bound through ``dims``). With ``dtype="float32"`` every value is exactly
    representable in float32, so float32 and float64 runs see the same inputs.
    """
    return _input_values(tuple(symbols), float(min_value), float(max_value), dims, dtype)


def _real_twins(expr: sp.Expr) -> tuple[sp.Expr, dict[sp.Symbol, sp.Dummy]]:
    twins = {s: sp.Dummy(s.name, real=True) for s in expr.free_symbols if isinstance(s, sp.Symbol)}
    return expr.xreplace(twins), twins


def _kink_arguments(expr: sp.Expr) -> list[sp.Expr]:
    """Expressions whose zeros are the kinks or jumps of ``expr``."""
    args: list[sp.Expr] = []
    for node in sp.preorder_traversal(expr):
        if isinstance(node, (sp.Abs, sp.sign, sp.Heaviside)):
            args.append(node.args[0])
        elif isinstance(node, (sp.Max, sp.Min)):
            # Conservative: every pairwise tie, even between two args that are not the extreme.
            items = node.args
            args.extend(a - b for i, a in enumerate(items) for b in items[i + 1 :])
        elif isinstance(node, sp.Piecewise):
            for _, cond in node.args:
                for rel in sp.preorder_traversal(cond):
                    if isinstance(rel, sp.core.relational.Relational):
                        args.append(rel.lhs - rel.rhs)
    return args


def kink_distance(expr: sp.Expr, values: Mapping[Any, Any]) -> float:
    """Linearised distance from ``values`` to the nearest kink or jump of ``expr``.

    For each kink argument ``g`` (the argument of ``Abs``/``sign``/``Heaviside``, the pairwise
    differences inside ``Max``/``Min``, ``lhs - rhs`` of ``Piecewise`` conditions) this is
    ``|g| / sum_i |dg/dx_i|`` at ``values``: roughly how far an input may move before ``g``
    changes sign. Array values give the minimum over elements. Returns ``inf`` for expressions
    without kinks. Finite differences with steps well below this distance are valid: skip
    points closer than ~1e-3 for float64 checks (steps ~1e-6) and ~5e-2 for float32 checks
    (steps ~5e-3).

    Examples
    --------
    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> kink_distance(sp.Abs(2 * x - 1), {x: 0.75})
    0.25
    """
    kinks = _kink_arguments(expr)
    if not kinks:
        return math.inf
    by_name = {getattr(k, "name", k): v for k, v in values.items()}
    real, twins = _real_twins(sp.Tuple(*kinks))
    order = sorted(twins, key=lambda s: s.name)
    missing = [s.name for s in order if s.name not in by_name]
    if missing:
        raise KeyError(f"no value given for {missing}")
    args = [np.asarray(by_name[s.name], dtype=np.float64) for s in order]
    dummies = [twins[s] for s in order]
    best = math.inf
    for g in real:
        grad_l1 = sum((sp.Abs(sp.diff(g, d)) for d in dummies), sp.S.Zero)
        fn = _lambdify(dummies, sp.Tuple(g, grad_l1))
        with np.errstate(all="ignore"):
            g_val, slope = (np.asarray(v, dtype=np.float64) for v in fn(*args))
            dist = np.where(slope > 0, np.abs(g_val) / np.where(slope > 0, slope, 1.0), np.inf)
            dist = np.where(g_val == 0, 0.0, dist)  # exactly on a kink, even if g is flat there
        best = min(best, float(np.min(dist)) if dist.size else math.inf)
    return best
