"""Gradient checks for compiled symgrad functions.

:func:`check_grad` compares reverse-mode gradients (``f.grad``) and forward-mode directional
derivatives (``f.jvp``) with central finite differences of ``f`` itself;
:func:`check_grad_sympy` compares them with ``sympy.diff`` evaluated through ``sympy.lambdify``.

Both share one engine. A *reference* answers two questions about the differentiated output ``y``
(the first output of a multi-output function): its derivative along one coordinate of one input
(used for every checked element of the reverse-mode gradient, and for the forward mode when there
are few input elements), and its derivative along an arbitrary direction (used for the forward
mode when there are many input elements, with a few seeded random directions).

Precision: finite differences are taken on ``f`` itself, in the dtype it was compiled with (its
``dtype`` attribute, float64 if absent). A float32 function is therefore checked with a larger
step and looser tolerances, and with inputs first rounded to float32 so the analytic and numeric
sides see the same point. Differences are Richardson-extrapolated from steps ``h`` and ``h/2``,
and each comparison allows for the round-off of the quotients (estimated from the magnitudes of
the function values, so large values cause no false alarms) and for the truncation error left
(estimated from the two steps).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

__all__ = ["GradCheckResult", "check_grad", "check_grad_sympy"]

_MODES = ("both", "reverse", "forward")

# Per dtype: finite-difference step (relative to max(1, |x|)) and tolerances. float32 uses a
# step near the optimum for central differences, (3 * eps_machine) ** (1/3) ~ 5e-3.
_FD_DEFAULTS = {
    np.dtype(np.float64): (1e-6, 1e-5, 1e-5),
    np.dtype(np.float32): (5e-3, 2e-3, 2e-3),
}
# Against exact sympy derivatives only the compiled code's own round-off remains.
_SYMPY_DEFAULTS = {
    np.dtype(np.float64): (1e-7, 1e-7),
    np.dtype(np.float32): (1e-3, 1e-3),
}
# Round-off allowance of a difference quotient, in units of eps_machine * |f| / step: compiled
# code is a few ulps off, and sums over array outputs add more.
_NOISE_ULPS = 16.0
# Forward mode: every coordinate direction up to this many input elements, else random ones.
_MAX_JVP_COORDINATES = 32
_N_RANDOM_DIRECTIONS = 3
# Reverse mode: every element up to this many input elements, else a seeded random sample (plus
# the random-direction check <grad, v> == jvp(v)).
_MAX_REVERSE_COORDINATES = 512
# Mismatches listed in an error message.
_MAX_REPORTED = 12


@dataclass(frozen=True)
class GradCheckResult:
    """Outcome of a passed gradient check.

    Attributes
    ----------
    max_error : dict
        Largest relative error ``|analytic - reference| / max(1, |analytic|, |reference|)``
        per checked ``wrt`` symbol name, over all modes.
    max_error_by_mode : dict
        The same, split by mode: ``{"reverse": {...}, "forward": {...}}`` (plus ``"value"``,
        with no symbols, when values were compared). A random-direction check involves every
        symbol, so its error counts for each of them.
    n_comparisons : int
        Number of scalar comparisons made.
    reference : str
        ``"finite differences"`` or ``"sympy"``.
    rtol, atol, eps : float
        The tolerances and finite-difference step used (``eps`` is ``None`` for sympy).
    """

    max_error: dict[str, float]
    max_error_by_mode: dict[str, dict[str, float]]
    n_comparisons: int
    reference: str
    rtol: float
    atol: float
    eps: float | None = None

    def __getitem__(self, symbol: Any) -> float:
        return self.max_error[_key_name(symbol)]


def _key_name(key: Any) -> str:
    if isinstance(key, str):
        return key
    name = getattr(key, "name", None)
    if isinstance(name, str):
        return name
    raise TypeError(f"inputs must be keyed by sympy symbol or name, got {key!r}")


def _as_dtype(f: Any) -> np.dtype:
    dtype = np.dtype(getattr(f, "dtype", None) or np.float64)
    if dtype not in _FD_DEFAULTS:
        raise ValueError(f"cannot check a function compiled for dtype {dtype}")
    return dtype


def _main_output(out: Any) -> np.ndarray:
    # A function compiled from [main, aux...] returns all outputs; gradients are of the main one.
    if isinstance(out, (tuple, list)):
        out = out[0]
    return np.asarray(out, dtype=np.float64)


def _fmt_index(index: tuple[int, ...]) -> str:
    return "()" if not index else str(tuple(int(i) for i in index))


@dataclass
class _Mismatch:
    mode: str
    where: str
    analytic: float
    numeric: float
    err: float
    allowed: float
    note: str = ""

    def line(self, reference: str) -> str:
        text = (
            f"  [{self.mode}] {self.where}: analytic={self.analytic:.10g}, "
            f"{reference}={self.numeric:.10g}, |diff|={abs(self.analytic - self.numeric):.3g} "
            f"(allowed {self.allowed:.3g}, relative error {self.err:.3g})"
        )
        return text + (f" -- {self.note}" if self.note else "")


@dataclass
class _Collector:
    rtol: float
    atol: float
    reference: str
    wrt: Sequence[str]
    mismatches: list[_Mismatch] = field(default_factory=list)
    errors: dict[str, dict[str, float]] = field(default_factory=dict)
    count: int = 0

    def compare(
        self,
        mode: str,
        symbols: Sequence[str],
        where: str,
        analytic: Any,
        numeric: Any,
        noise: Any = 0.0,
    ) -> None:
        """Compare arrays elementwise; ``where`` is formatted with ``out`` = output index."""
        a, n = np.broadcast_arrays(
            np.asarray(analytic, dtype=np.float64), np.asarray(numeric, dtype=np.float64)
        )
        noise = np.broadcast_to(np.asarray(noise, dtype=np.float64), a.shape)
        with np.errstate(all="ignore"):
            diff = np.abs(a - n)
            scale = np.maximum(1.0, np.maximum(np.abs(a), np.abs(n)))
            allowed = self.atol + self.rtol * np.maximum(np.abs(a), np.abs(n)) + noise
            err = np.where(np.isfinite(diff), diff / scale, np.inf)
        bad = ~(diff <= allowed)  # NaN on either side counts as a mismatch
        self.count += a.size
        # Messages name the exact call ("reverse (f.grad)"); the result groups by mode.
        by_mode = self.errors.setdefault(mode.split(" ")[0], {})
        worst = float(np.max(err)) if err.size else 0.0
        for s in symbols:
            by_mode[s] = max(by_mode.get(s, 0.0), worst)
        for idx in np.argwhere(bad) if a.ndim else ([()] if bool(bad) else []):
            idx = tuple(int(i) for i in idx)
            note = ""
            if not np.isfinite(n[idx]):
                note = f"the {self.reference} value is not finite (point outside the domain?)"
            elif not np.isfinite(a[idx]):
                note = "the analytic value is not finite"
            self.mismatches.append(
                _Mismatch(
                    mode,
                    where.format(out=_fmt_index(idx)),
                    float(a[idx]),
                    float(n[idx]),
                    float(err[idx]),
                    float(allowed[idx]),
                    note,
                )
            )

    def finish(self, eps: float | None) -> GradCheckResult:
        if self.mismatches:
            # Non-finite values first (they usually explain the rest), then by error.
            worst = sorted(
                self.mismatches,
                key=lambda m: (math.isfinite(m.err), -m.err if math.isfinite(m.err) else 0.0),
            )
            lines = [m.line(self.reference) for m in worst[:_MAX_REPORTED]]
            more = len(worst) - len(lines)
            header = (
                f"gradient check against {self.reference} failed: {len(worst)} mismatch(es) "
                f"(rtol={self.rtol:g}, atol={self.atol:g}"
                + (f", eps={eps:g}" if eps is not None else "")
                + "), worst first:"
            )
            tail = [f"  ... and {more} more"] if more > 0 else []
            raise AssertionError("\n".join([header, *lines, *tail]))
        max_error = {s: 0.0 for s in self.wrt}
        for by_mode in self.errors.values():
            for s, e in by_mode.items():
                if s in max_error:
                    max_error[s] = max(max_error[s], e)
        return GradCheckResult(
            max_error=max_error,
            max_error_by_mode={m: dict(v) for m, v in self.errors.items()},
            n_comparisons=self.count,
            reference=self.reference,
            rtol=self.rtol,
            atol=self.atol,
            eps=eps,
        )


class _Target:
    """Calls the function under test with normalised inputs (names -> float64 arrays)."""

    def __init__(self, f: Any, inputs: Mapping[str, np.ndarray], cotangent: Any) -> None:
        self.f = f
        self.dtype = _as_dtype(f)
        self.wrt_all = [_key_name(s) for s in f.wrt]
        self.x0 = {k: self.round(v) for k, v in inputs.items()}
        self.y0 = self.value(self.x0)
        self.cot = (
            np.ones_like(self.y0)
            if cotangent is None
            else np.broadcast_to(np.asarray(cotangent, dtype=np.float64), self.y0.shape)
        )
        self.user_cotangent = cotangent

    def round(self, value: Any) -> np.ndarray:
        """Round to what ``f`` actually computes with, kept as float64 for the arithmetic.

        Integer arrays (index inputs choosing embedding rows) stay integers.
        """
        arr = np.asarray(value)
        if arr.dtype.kind in "iu":
            return arr.astype(np.int64)
        return np.asarray(value, dtype=np.float64).astype(self.dtype).astype(np.float64)

    def pack(self, inputs: Mapping[str, np.ndarray]) -> dict[str, Any]:
        return {k: self._packed(v) for k, v in inputs.items()}

    def _packed(self, v: np.ndarray) -> Any:
        if v.dtype.kind in "iu":
            return v
        return float(v) if v.ndim == 0 else np.ascontiguousarray(v, dtype=self.dtype)

    def value(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        return _main_output(self.f(self.pack(inputs)))

    def _split_grads(self, grads: Any, what: str) -> dict[str, np.ndarray]:
        if not isinstance(grads, (tuple, list)):
            grads = (grads,)
        if len(grads) != len(self.wrt_all):
            raise AssertionError(
                f"{what} returned {len(grads)} gradient(s) for {len(self.wrt_all)} wrt symbol(s)"
            )
        out = {}
        for name, g in zip(self.wrt_all, grads, strict=True):
            g = np.asarray(g, dtype=np.float64)
            want = self.x0[name].shape if name in self.x0 else g.shape
            if g.shape != want:
                raise AssertionError(
                    f"{what}: gradient for {name!r} has shape {g.shape}, its input has {want}"
                )
            out[name] = g
        return out

    def grads(self) -> dict[str, np.ndarray]:
        packed = self.pack(self.x0)
        if self.user_cotangent is None:
            return self._split_grads(self.f.grad(packed), "f.grad")
        _, grads = self.f.value_and_grad(packed, seed=self.user_cotangent)
        return self._split_grads(grads, "f.value_and_grad(..., seed=cotangent)")

    def keyword_calls(self) -> tuple[np.ndarray, tuple | None]:
        """``f(**inputs)`` and ``f.value_and_grad(**inputs)``, the keyword call forms.

        The other calls pass one dict. Both forms are public, and an implementation may take
        different routes for them (symgrad has a fast path for keyword calls with Python
        floats), so the checks compare the two. A symbol named ``seed`` can only go in a dict.
        """
        packed = self.pack(self.x0)
        if "seed" in packed:
            return self.y0, None
        value = _main_output(self.f(**packed))
        if self.user_cotangent is not None or not hasattr(self.f, "value_and_grad"):
            return value, None
        vg_value, grads = self.f.value_and_grad(**packed)
        return value, (_main_output(vg_value), self._split_grads(grads, "f.value_and_grad"))

    def jvp(self, tangents: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        packed_t = {k: float(v) if v.ndim == 0 else np.asarray(v) for k, v in tangents.items()}
        value, deriv = self.f.jvp(packed_t, **self.pack(self.x0))
        return _main_output(value), _main_output(deriv)


class _FiniteDifferences:
    """Central differences of the target around its base point, Richardson-extrapolated.

    Each derivative is estimated with steps ``h`` and ``h/2``: ``D = D(h/2) + (D(h/2) - D(h))/3``
    cancels the O(h**2) error term, which matters for the large float32 step near sharp
    features (a bump of width ~10h is off by ~1 % with plain central differences).
    ``|D(h/2) - D(h)| / 3`` estimates the error left and is added to the allowed difference,
    with the round-off of both quotients.
    """

    label = "finite differences"

    def __init__(self, target: _Target, eps: float) -> None:
        self.t = target
        self.eps = eps
        self.ulp = float(np.finfo(target.dtype).eps)

    def _quotient(self, plus: dict, minus: dict, step: Any) -> tuple[np.ndarray, np.ndarray]:
        y_p, y_m = self.t.value(plus), self.t.value(minus)
        deriv = (y_p - y_m) / step
        noise = _NOISE_ULPS * self.ulp * (np.abs(y_p) + np.abs(y_m)) / abs(step)
        return deriv, noise

    @staticmethod
    def _extrapolate(coarse: tuple, fine: tuple) -> tuple[np.ndarray, np.ndarray]:
        (d1, n1), (d2, n2) = coarse, fine
        with np.errstate(invalid="ignore"):
            deriv = d2 + (d2 - d1) / 3.0
            slack = (4.0 * n2 + n1) / 3.0 + np.abs(d2 - d1) / 3.0
        return deriv, slack

    def _coordinate_step(self, name: str, idx: tuple[int, ...], h: float) -> tuple:
        x = self.t.x0[name]
        xi = float(x[idx])
        plus, minus = dict(self.t.x0), dict(self.t.x0)
        plus[name], minus[name] = x.copy(), x.copy()
        plus[name][idx] = self.t.round(xi + h)
        minus[name][idx] = self.t.round(xi - h)
        step = float(plus[name][idx] - minus[name][idx])  # the step actually taken
        if step == 0.0:
            raise ValueError(f"finite-difference step eps={self.eps:g} vanishes at {name}={xi}")
        return self._quotient(plus, minus, step)

    def coordinate(self, name: str, idx: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        h = self.eps * max(1.0, abs(float(self.t.x0[name][idx])))
        coarse = self._coordinate_step(name, idx, h)
        return self._extrapolate(coarse, self._coordinate_step(name, idx, h / 2.0))

    def _direction_step(self, v: Mapping[str, np.ndarray], h: float) -> tuple:
        plus, minus, realised = dict(self.t.x0), dict(self.t.x0), {}
        for k, vk in v.items():
            plus[k] = self.t.round(self.t.x0[k] + h * vk)
            minus[k] = self.t.round(self.t.x0[k] - h * vk)
            # Rounding to float32 bends the direction slightly; check along the bent one.
            realised[k] = (plus[k] - minus[k]) / (2.0 * h)
        return realised, self._quotient(plus, minus, 2.0 * h)

    def direction(self, v: Mapping[str, np.ndarray]) -> tuple[dict, np.ndarray, np.ndarray]:
        scale = max([1.0] + [float(np.max(np.abs(self.t.x0[k]), initial=0.0)) for k in v])
        h = self.eps * scale
        realised, coarse = self._direction_step(v, h)
        # The h/2 step bends differently under float32 rounding, by ~ulp(x)/h relative
        # (~3e-5): far below the float32 tolerance.
        _, fine = self._direction_step(v, h / 2.0)
        deriv, slack = self._extrapolate(coarse, fine)
        return realised, deriv, slack


class _SympyReference:
    """Exact derivatives from ``sympy.diff`` of the expression with real symbols."""

    label = "sympy"

    def __init__(self, target: _Target, expr: Any, wrt: Sequence[str]) -> None:
        self.t = target
        names, value_fn, partial_fns = _sympy_functions(_hashable(expr), tuple(wrt))
        missing = [n for n in names if n not in target.x0]
        if missing:
            raise KeyError(f"no input value given for {missing}")
        args = [target.x0[n] for n in names]
        # symgrad broadcasts all inputs against each other, like NumPy.
        out_shape = np.broadcast_shapes(*(a.shape for a in target.x0.values()))
        if target.y0.shape != out_shape:
            raise AssertionError(
                f"f returned an output of shape {target.y0.shape}; the inputs broadcast to "
                f"{out_shape}"
            )
        with np.errstate(all="ignore"):
            self.value = np.broadcast_to(np.asarray(value_fn(*args), np.float64), out_shape)
            self.partials = {
                name: np.broadcast_to(np.asarray(fn(*args), np.float64), out_shape)
                for name, fn in partial_fns.items()
            }

    def coordinate(self, name: str, idx: tuple[int, ...]) -> tuple[np.ndarray, float]:
        shape = self.t.x0[name].shape
        onehot = np.zeros(shape)
        onehot[idx] = 1.0
        out_shape = self.t.y0.shape
        return self.partials[name] * np.broadcast_to(onehot, out_shape), 0.0

    def direction(self, v: Mapping[str, np.ndarray]) -> tuple[dict, np.ndarray, float]:
        out_shape = self.t.y0.shape
        deriv = np.zeros(out_shape)
        for k, vk in v.items():
            deriv = deriv + self.partials[k] * np.broadcast_to(vk, out_shape)
        return dict(v), deriv, 0.0


def _hashable(expr: Any) -> sp.Basic:
    if isinstance(expr, (list, tuple)):
        expr = expr[0]
    return sp.sympify(expr)


@functools.lru_cache(maxsize=64)
def _sympy_functions(expr: sp.Basic, wrt: tuple[str, ...]) -> tuple[list[str], Any, dict]:
    """Lambdified value and partial derivatives; cached, as a test checks many input values."""
    real, twins = _real_expr(expr)
    names = sorted(twins)
    dummies = [twins[n] for n in names]
    partials = {}
    for name in wrt:
        if name not in twins:
            partials[name] = _lambdify(dummies, sp.S.Zero)
            continue
        # DiracDelta terms (from Heaviside and sign) become zero in _lambdify: the derivative
        # away from the jump.
        d = sp.diff(real, twins[name])
        if d.has(sp.Derivative, sp.Subs):
            raise TypeError(f"sympy cannot differentiate {expr} with respect to {name}: {d}")
        partials[name] = _lambdify(dummies, d)
    return names, _lambdify(dummies, real), partials


def _real_expr(expr: Any) -> tuple[sp.Expr, dict[str, sp.Dummy]]:
    """Replace every Symbol by a real Dummy of the same name (d|x|/dx = sign(x), not complex)."""
    if isinstance(expr, (list, tuple)):
        expr = expr[0]
    expr = sp.sympify(expr)
    if expr.atoms(sp.MatrixSymbol) or getattr(expr, "is_Matrix", False):
        raise TypeError("check_grad_sympy handles scalar expressions; use check_grad for matrices")
    symbols = sorted(expr.free_symbols, key=lambda s: s.name)
    names = [s.name for s in symbols]
    if len(set(names)) != len(names):
        raise ValueError(f"two different symbols share a name in {expr}")
    twins = {s.name: sp.Dummy(s.name, real=True) for s in symbols}
    return expr.xreplace({s: twins[s.name] for s in symbols}), twins


# SymPy prints Heaviside of Max/Min (with real arguments) as nested numpy.select calls that
# NumPy 2 rejects; an opaque function printed by name avoids that rewrite.
_HEAVISIDE = sp.Function("_symgrad_heaviside")
_NAMESPACE = {"_symgrad_heaviside": lambda x, h0=0.5: np.heaviside(x, h0)}


def _lambdify(args: Sequence[sp.Symbol], expr: sp.Basic) -> Any:
    """``sympy.lambdify`` to NumPy/SciPy with ``DiracDelta -> 0`` (valid away from jumps)."""
    expr = expr.replace(lambda e: isinstance(e, sp.DiracDelta), lambda e: sp.S.Zero)
    expr = expr.replace(lambda e: isinstance(e, sp.Heaviside), lambda e: _HEAVISIDE(*e.args))
    return sp.lambdify(args, expr, modules=[_NAMESPACE, "scipy", "numpy"])


def _normalise_inputs(inputs: Mapping[Any, Any]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for key, value in inputs.items():
        name = _key_name(key)
        if name in out:
            raise ValueError(f"input {name!r} given twice")
        arr = np.asarray(value)
        # Integer arrays are index inputs (embedding rows): they stay integers.
        out[name] = arr if arr.dtype.kind in "iu" else np.asarray(value, dtype=np.float64)
    return out


def _compile(expr: Any, wrt: Any) -> tuple[Any, Any]:
    from .. import compile as sg_compile  # lazily: symgrad may import this module itself

    if wrt is None:
        main = expr[0] if isinstance(expr, (list, tuple)) else expr
        wrt = sorted(sp.sympify(main).free_symbols, key=lambda s: s.name)
    return sg_compile(expr, wrt=list(wrt)), wrt


def _checked_wrt(f: Any, wrt: Any, inputs: Mapping[str, np.ndarray]) -> list[str]:
    all_names = [_key_name(s) for s in f.wrt]
    names = all_names if wrt is None else [_key_name(s) for s in wrt]
    unknown = [n for n in names if n not in all_names]
    if unknown:
        raise ValueError(f"{unknown} not among the function's wrt symbols {all_names}")
    missing = [n for n in names if n not in inputs]
    if missing:
        raise KeyError(f"no input value given for wrt symbol(s) {missing}")
    return names


def _run(
    target: _Target,
    reference: Any,
    wrt: Sequence[str],
    mode: str,
    rtol: float,
    atol: float,
    seed: int | None,
) -> _Collector:
    col = _Collector(rtol, atol, reference.label, wrt)
    rng = np.random.default_rng(0 if seed is None else seed)
    coords = [
        (n, tuple(int(i) for i in idx)) for n in wrt for idx in np.ndindex(target.x0[n].shape)
    ]
    reverse = mode in ("both", "reverse")
    forward = mode in ("both", "forward")
    grads = target.grads() if reverse else {}

    if reverse:
        # value, value_and_grad and their keyword-call forms may be separately compiled
        # functions: they must agree with f(dict) and f.grad(dict).
        value, vg = target.keyword_calls()
        col.compare("value", [], "f(**inputs) vs f(inputs), output element {out}", value, target.y0)
        if vg is not None:
            value, g2 = vg
            label = "reverse (f.value_and_grad)"
            col.compare(label, [], "value vs f(inputs), output element {out}", value, target.y0)
            for n in wrt:
                col.compare(
                    label, [n], f"gradient vs f.grad, {n!r}, element {{out}}", g2[n], grads[n]
                )
        sample = coords
        if len(coords) > _MAX_REVERSE_COORDINATES:
            pick = rng.choice(len(coords), _MAX_REVERSE_COORDINATES, replace=False)
            sample = [coords[i] for i in sorted(pick)]
    else:
        sample = []

    fwd_coords = forward and len(coords) <= _MAX_JVP_COORDINATES
    in_sample = set(sample)
    for name, idx in dict.fromkeys(sample + (coords if fwd_coords else [])):
        deriv, noise = reference.coordinate(name, idx)
        where = f"symbol {name!r}, element {_fmt_index(idx)}"
        if (name, idx) in in_sample:
            numeric = np.sum(target.cot * deriv)
            slack = np.sum(np.abs(target.cot) * noise)
            col.compare("reverse (f.grad)", [name], where, grads[name][idx], numeric, slack)
        if fwd_coords:
            # Only the one symbol gets a tangent: jvp must accept a subset of wrt.
            tangents = {name: np.zeros_like(target.x0[name])}
            tangents[name][idx] = 1.0
            _, jvp = target.jvp(tangents)
            col.compare(
                "forward (f.jvp)",
                [name],
                f"tangent along {where}, output element {{out}}",
                jvp,
                deriv,
                noise,
            )

    random_dirs = (forward and not fwd_coords) or (reverse and len(sample) < len(coords))
    if forward:
        value, _ = target.jvp({n: np.zeros_like(target.x0[n]) for n in wrt})
        col.compare(
            "forward (f.jvp)", [], "value of f.jvp vs f(), output element {out}", value, target.y0
        )
    if random_dirs:
        for k in range(_N_RANDOM_DIRECTIONS):
            v = {n: rng.standard_normal(target.x0[n].shape) for n in wrt}
            vmax = max(float(np.max(np.abs(vn), initial=0.0)) for vn in v.values()) or 1.0
            v = {n: vn / vmax for n, vn in v.items()}
            tangents, deriv, noise = reference.direction(v)
            label = f"random direction #{k} (seed={seed})"
            if forward:
                _, jvp = target.jvp(tangents)
                col.compare(
                    "forward (f.jvp)", wrt, f"{label}, output element {{out}}", jvp, deriv, noise
                )
            if reverse:
                dot = sum(float(np.sum(grads[n] * tangents[n])) for n in wrt)
                numeric = np.sum(target.cot * deriv)
                col.compare(
                    "reverse (<f.grad, v>)",
                    wrt,
                    label,
                    dot,
                    numeric,
                    np.sum(np.abs(target.cot) * noise),
                )
    return col


def _prepare(
    f: Any, inputs: Mapping[Any, Any], wrt: Any, mode: str, cotangent: Any
) -> tuple[_Target, list[str]]:
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, not {mode!r}")
    named = _normalise_inputs(inputs)
    if isinstance(f, (sp.Basic, list, tuple)):
        f, wrt = _compile(f, wrt)
    names = _checked_wrt(f, wrt, named)
    target = _Target(f, named, cotangent)
    if not np.all(np.isfinite(target.y0)):
        raise AssertionError(f"the function value is not finite at the given inputs: {target.y0}")
    return target, names


def check_grad(
    f: Any,
    inputs: Mapping[Any, Any],
    *,
    wrt: Sequence[Any] | None = None,
    eps: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    mode: str = "both",
    seed: int | None = None,
    cotangent: Any = None,
) -> GradCheckResult:
    """Check a compiled function's gradients against central finite differences.

    Reverse mode: every element of every ``wrt`` gradient from ``f.grad`` is compared with
    ``(F(x + h e_i) - F(x - h e_i)) / 2h`` where ``F = sum(cotangent * f(x))`` and
    ``h = eps * max(1, |x_i|)``, Richardson-extrapolated with the same quotient at ``h/2``
    (above 512 input elements: a seeded random sample of 512 elements, plus ``<grad, v>`` along
    random directions ``v``). ``f.value_and_grad`` must also agree with
    ``f`` and ``f.grad``. Forward mode: ``f.jvp`` along each coordinate direction (up to 32 input
    elements; otherwise along 3 seeded random directions) is compared elementwise with the
    difference quotient of the whole output. A comparison passes when
    ``|analytic - numeric| <= atol + rtol * max(|analytic|, |numeric|) + slack``, where
    ``slack`` bounds the rounding error of the difference quotients plus the truncation error
    left after extrapolation (estimated from the two steps).

    Finite differences are taken on ``f`` itself, in its own ``dtype``; a float32 function gets
    its inputs rounded to float32 first, a step of 5e-3 and tolerances of 2e-3.

    Parameters
    ----------
    f : compiled function or sympy expression
        A ``symgrad.compile`` result (anything with ``wrt``, ``__call__``, ``grad`` and ``jvp``,
        optionally ``value_and_grad`` and ``dtype``). A SymPy expression (or ``[main, aux...]``
        list) is compiled first, in float64, with ``wrt`` (default: its free symbols by name).
    inputs : mapping
        Input values keyed by symbol or name, for all inputs of ``f``.
    wrt : sequence of symbols or names, optional
        The symbols whose gradients to check (default: all of ``f.wrt``).
    eps : float, optional
        Relative finite-difference step (default 1e-6 for float64, 5e-3 for float32).
    rtol, atol : float, optional
        Tolerances (default 1e-5 for float64, 2e-3 for float32).
    mode : {"both", "reverse", "forward"}
        Which derivatives to check.
    seed : int, optional
        Seed of the random directions and of the element sample for large inputs (default 0,
        so repeated checks are identical). This is *not* the output cotangent.
    cotangent : array_like, optional
        Output cotangent for non-scalar outputs, passed to ``f.value_and_grad(..., seed=...)``;
        default ones (the gradient of the sum).

    Returns
    -------
    GradCheckResult
        The largest relative error per symbol (``result.max_error``, or ``result[symbol]``).

    Raises
    ------
    AssertionError
        On any mismatch. The message lists the mismatches, worst first, each with the mode, the
        symbol, the element index, the analytic and the numeric value.

    Examples
    --------
    >>> import sympy as sp, symgrad as sg
    >>> from symgrad.testing import check_grad
    >>> x, y = sp.symbols("x y")
    >>> f = sg.compile(sp.sin(x) * sp.exp(y), wrt=[x, y])
    >>> result = check_grad(f, {x: 0.3, y: -1.2})
    >>> result[x] < 1e-6
    True
    """
    target, names = _prepare(f, inputs, wrt, mode, cotangent)
    d_eps, d_rtol, d_atol = _FD_DEFAULTS[target.dtype]
    eps = d_eps if eps is None else float(eps)
    rtol = d_rtol if rtol is None else float(rtol)
    atol = d_atol if atol is None else float(atol)
    reference = _FiniteDifferences(target, eps)
    return _run(target, reference, names, mode, rtol, atol, seed).finish(eps)


def check_grad_sympy(
    expr: Any,
    wrt: Sequence[Any],
    inputs: Mapping[Any, Any],
    *,
    f: Any = None,
    rtol: float | None = None,
    atol: float | None = None,
    mode: str = "both",
    seed: int | None = None,
    cotangent: Any = None,
) -> GradCheckResult:
    """Check value and gradients of a compiled scalar expression against ``sympy.diff``.

    Every symbol is replaced by a ``real=True`` twin before differentiating (so
    ``d|x|/dx = sign(x)``, as symgrad defines it); the derivatives are evaluated with
    ``sympy.lambdify`` (NumPy and SciPy). ``DiracDelta`` terms, from differentiating
    ``Heaviside`` or ``sign``, are taken as zero, which holds away from the jump. Scalar
    symbols given arrays are handled as symgrad does: elementwise values, gradients of
    ``sum(cotangent * value)``.

    Parameters
    ----------
    expr : sympy expression or list
        The scalar expression (``[main, aux...]``: the main one is checked). No MatrixSymbols.
    wrt : sequence of symbols
        The symbols ``f`` differentiates with respect to, in ``f``'s order.
    inputs : mapping
        Input values keyed by symbol or name.
    f : compiled function, optional
        The function to check; default ``symgrad.compile(expr, wrt=wrt)`` (float64).
    rtol, atol : float, optional
        Tolerances (default 1e-7 for float64, 1e-3 for float32).
    mode, seed, cotangent
        As for :func:`check_grad`.

    Returns
    -------
    GradCheckResult
        Errors per symbol; also checks ``f(inputs)`` against the lambdified expression.
    """
    if f is None:
        from .. import compile as sg_compile

        f = sg_compile(expr, wrt=list(wrt))
    target, _ = _prepare(f, inputs, None, mode, cotangent)
    names = [_key_name(s) for s in wrt]
    if names != target.wrt_all:
        raise ValueError(f"wrt {names} differs from the function's wrt {target.wrt_all}")
    d_rtol, d_atol = _SYMPY_DEFAULTS[target.dtype]
    rtol = d_rtol if rtol is None else float(rtol)
    atol = d_atol if atol is None else float(atol)
    reference = _SympyReference(target, expr, names)
    col = _Collector(rtol, atol, reference.label, names)
    col.compare(
        "value", [], "f() vs lambdify(expr), output element {out}", target.y0, reference.value
    )
    run = _run(target, reference, names, mode, rtol, atol, seed)
    run.mismatches[:0] = col.mismatches
    run.count += col.count
    return run.finish(None)
