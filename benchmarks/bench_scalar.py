"""Scalar-expression benchmark: symgrad against its peers on value + all partial derivatives.

Three sections, each measured in this one process so that every contender sees the same machine
state, and reported as ratios to symgrad (see ``benchmarks/README.md`` for how to read them):

``latency``  one call on Python floats, in µs, for three small expressions;
``points``   the same expressions over 1,000,000 float64 points, in ms, plus the effective memory
             bandwidth of the memory-bound ``(x+y)*z`` against this machine's copy bandwidth;
``compile``  cold (empty cache) and warm (cached) ``symgrad.compile`` + first call, and
             ``import symgrad``, each in a fresh subprocess.

Peers (PyTorch, JAX, PyTensor) are optional: a missing one is a "not installed" row. Every
contender's result is checked against SymPy's own derivatives before it is timed, so a fast
wrong answer shows up as a mismatch instead of a win.

Run ``python benchmarks/bench_scalar.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import common

HERE = Path(__file__).resolve().parent


# -- the expressions ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Example:
    """One benchmark expression.

    ``build(m, *symbols)`` writes the formula once against a math namespace ``m`` (``sympy``,
    ``jax.numpy``, ``torch``, ``pytensor.tensor`` all provide ``exp``/``sin``/``log``), so every
    framework computes exactly the same function without a second, drift-prone copy of it.
    """

    name: str
    formula: str
    names: tuple[str, ...]
    build: Callable
    point: tuple[float, ...]


EXAMPLES = (
    Example("add_mul", "(x+y)*z", ("x", "y", "z"), lambda m, x, y, z: (x + y) * z,
            (-2.0, 5.0, -4.0)),
    Example("neuron", "1/(1+exp(-(w0*x0+w1*x1+w2)))", ("w0", "x0", "w1", "x1", "w2"),
            lambda m, w0, x0, w1, x1, w2: 1 / (1 + m.exp(-(w0 * x0 + w1 * x1 + w2))),
            (2.0, -1.0, -3.0, -2.0, -3.0)),
    Example("transcendental", "sin(x)*exp(-y**2)+log(1+z**2)", ("x", "y", "z"),
            lambda m, x, y, z: m.sin(x) * m.exp(-(y**2)) + m.log(1 + z**2),
            (0.5, 0.3, -1.2)),
)  # fmt: skip
EXAMPLES_BY_NAME = {ex.name: ex for ex in EXAMPLES}

#: The row every ratio is taken against: symgrad's public API.
BASELINE = "symgrad value_and_grad(kw)"

#: Contender families, for ``--only``.
FAMILIES = ("symgrad", "python", "lambdify", "numba", "numpy", "jax", "torch", "pytensor")


class Unavailable(Exception):
    """A contender that cannot run here (peer not installed, mode unsupported); not an error."""


@dataclass
class Bench:
    """One prepared call: ``fn(*args, **kwargs)``, and how to read its result for the check.

    ``flat(out)`` turns the contender's own result into ``[value, grad_1, ..., grad_k]``.
    """

    fn: Callable
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    flat: Callable = list

    def call(self):
        return self.fn(*self.args, **self.kwargs)

    def timeit_source(self) -> tuple[str, dict]:
        """A ``timeit`` statement making exactly this call, and its namespace.

        The statement spells out the call (``fn(x=k0, y=k1)``) instead of going through
        ``lambda: bench.call()``, so no extra Python frame or ``**`` unpacking is timed.
        """
        names = {"_fn": self.fn}
        parts = []
        for i, a in enumerate(self.args):
            names[f"_a{i}"] = a
            parts.append(f"_a{i}")
        for i, (k, v) in enumerate(self.kwargs.items()):
            names[f"_k{i}"] = v
            parts.append(f"{k}=_k{i}")
        return f"_fn({', '.join(parts)})", names


@dataclass(frozen=True)
class Contender:
    label: str
    family: str
    make: Callable  # make(example, ctx) -> Bench, or raises Unavailable


# -- shared context: imports and compiled objects, built once per process -----------------------
class Context:
    """Imports the contenders lazily (after thread pinning) and caches per-example builds."""

    def __init__(self, threads: int):
        import numba
        import numpy as np
        import sympy as sp

        import symgrad as sg

        self.threads = threads
        self.np, self.sp, self.sg, self.numba = np, sp, sg, numba
        self._peers: dict = {}
        self._memo: dict = {}

    def peer(self, name: str):
        """An optional peer module, or :class:`Unavailable` with the reason."""
        if name not in self._peers:
            mod, why = common.try_import(name)
            if mod is not None and name == "torch":
                common.pin_torch(mod, self.threads)
            if mod is not None and name == "jax":
                # JAX computes in float32 unless told otherwise; every contender here is float64.
                mod.config.update("jax_enable_x64", True)
            self._peers[name] = (mod, why)
        mod, why = self._peers[name]
        if mod is None:
            raise Unavailable(why)
        return mod

    def memo(self, key, build: Callable):
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]

    def symbols(self, ex: Example):
        return self.memo(("symbols", ex.name), lambda: self.sp.symbols(ex.names, real=True))

    def expr(self, ex: Example):
        return self.memo(("expr", ex.name), lambda: ex.build(self.sp, *self.symbols(ex)))

    def grads(self, ex: Example):
        sp = self.sp
        return self.memo(
            ("grads", ex.name), lambda: [sp.diff(self.expr(ex), s) for s in self.symbols(ex)]
        )

    def compiled(self, ex: Example):
        return self.memo(
            ("compiled", ex.name),
            lambda: self.sg.compile(self.expr(ex), wrt=list(self.symbols(ex))),
        )

    def lambdified(self, ex: Example, modules: str, cse: bool = False):
        """SymPy's ``lambdify`` of the value and the ``sympy.diff`` gradients, one tuple out."""
        return self.memo(
            ("lambdify", ex.name, modules, cse),
            lambda: self.sp.lambdify(
                self.symbols(ex), (self.expr(ex), *self.grads(ex)), modules=modules, cse=cse
            ),
        )


# -- section 1: per-call latency on Python floats ----------------------------------------------
def _flat_vg(out) -> list:
    value, grads = out
    return [value, *grads]


def _lat_symgrad_kw(ex, ctx):
    f = ctx.compiled(ex)
    return Bench(f.value_and_grad, kwargs=dict(zip(ex.names, ex.point)), flat=_flat_vg)


def _lat_symgrad_positional(ex, ctx):
    f = ctx.compiled(ex)
    by_name = dict(zip(ex.names, ex.point))
    # The public positional form: inputs in ``f.inputs`` order.
    return Bench(f.value_and_grad, args=tuple(by_name[s.name] for s in f.inputs), flat=_flat_vg)


def _lat_symgrad_raw(ex, ctx):
    f = ctx.compiled(ex)
    raw = f._fn["value_and_grad"]
    by_name = dict(zip(ex.names, ex.point))
    # The generated functions take inputs positionally in ``f.inputs`` order.
    return Bench(raw, args=tuple(by_name[s.name] for s in f.inputs), flat=_flat_vg)


def _lat_symgrad_twin(ex, ctx):
    f = ctx.compiled(ex)
    twin = getattr(f._module, "py_value_and_grad", None)
    if twin is None:
        raise Unavailable("this build generates no plain-Python twin")
    by_name = dict(zip(ex.names, ex.point))
    return Bench(twin, args=tuple(by_name[s.name] for s in f.inputs), flat=_flat_vg)


def _noop(*args):
    return args


def _lat_python_floor(ex, ctx):
    return Bench(_noop, args=ex.point, flat=lambda out: None)


def _lat_lambdify(modules, cse=False):
    def make(ex, ctx):
        return Bench(ctx.lambdified(ex, modules, cse), args=ex.point)

    return make


def _lat_numba_lambdify(ex, ctx):
    # The "math" printer emits plain ``exp(x)`` calls on floats, which Numba compiles as is.
    fn = ctx.memo(("njit-lambdify", ex.name), lambda: ctx.numba.njit(ctx.lambdified(ex, "math")))
    return Bench(fn, args=ex.point)


def _lat_jax(ex, ctx):
    jax = ctx.peer("jax")
    jnp = ctx.peer("jax.numpy")
    k = len(ex.names)
    vg = jax.jit(jax.value_and_grad(lambda *a: ex.build(jnp, *a), argnums=tuple(range(k))))

    def call(*args):
        # JAX dispatches asynchronously: without blocking, only the enqueueing would be timed.
        return jax.block_until_ready(vg(*args))

    return Bench(call, args=ex.point, flat=_flat_vg)


def _lat_torch(ex, ctx):
    torch = ctx.peer("torch")
    f64 = torch.float64

    def call(*args):
        leaves = [torch.tensor(a, dtype=f64, requires_grad=True) for a in args]
        out = ex.build(torch, *leaves)
        out.backward()
        # .item() so the caller gets floats, like every other row here.
        return out.item(), tuple(t.grad.item() for t in leaves)

    return Bench(call, args=ex.point, flat=_flat_vg)


def _pytensor_function(ex, ctx, mode, vector: bool):
    pytensor = ctx.peer("pytensor")
    pt = ctx.peer("pytensor.tensor")
    make_var = pt.dvector if vector else pt.dscalar
    inputs = [make_var(n) for n in ex.names]
    out = ex.build(pt, *inputs)
    # Over points each partial is the gradient of the sum, as in symgrad and JAX's vmap.
    grads = pytensor.grad(out.sum() if vector else out, inputs)
    try:
        return pytensor.function(inputs, [out, *grads], mode=mode)
    except Exception as exc:  # e.g. a mode whose backend is missing
        raise Unavailable(f"mode {mode}: {type(exc).__name__}: {exc}") from None


def _lat_pytensor(mode):
    def make(ex, ctx):
        fn = _pytensor_function(ex, ctx, mode, vector=False)
        return Bench(fn, args=ex.point)

    return make


LATENCY = (
    Contender(BASELINE, "symgrad", _lat_symgrad_kw),
    Contender("symgrad value_and_grad(positional)", "symgrad", _lat_symgrad_positional),
    Contender("symgrad raw numba fn", "symgrad", _lat_symgrad_raw),
    Contender("symgrad raw python twin", "symgrad", _lat_symgrad_twin),
    Contender("python no-op call (floor)", "python", _lat_python_floor),
    Contender("lambdify(math)", "lambdify", _lat_lambdify("math")),
    Contender("lambdify(math, cse)", "lambdify", _lat_lambdify("math", cse=True)),
    Contender("lambdify(numpy)", "lambdify", _lat_lambdify("numpy")),
    Contender("numba njit(lambdify math)", "numba", _lat_numba_lambdify),
    Contender("jax jit(value_and_grad)", "jax", _lat_jax),
    Contender("torch autograd", "torch", _lat_torch),
    Contender("pytensor (default mode)", "pytensor", _lat_pytensor(None)),
    Contender("pytensor mode=NUMBA", "pytensor", _lat_pytensor("NUMBA")),
)


# -- section 2: many points --------------------------------------------------------------------
def _hand_written(np, numba):
    """Value and gradient written out by hand, in NumPy and as ``@njit`` loops, per example.

    These are the "what a careful person would type" baselines. The loops use symgrad's own
    Numba flags (``error_model="numpy"``) so the comparison is of code, not of compiler options.
    Like symgrad and lambdify, ``(x+y)*z`` returns ``z`` itself as d/dx and d/dy instead of
    copying it: the partial *is* that array.
    """
    njit = numba.njit(error_model="numpy", nogil=True)

    def add_mul_np(x, y, z):
        s = x + y
        return s * z, (z, z, s)

    @njit
    def add_mul_loop(x, y, z):
        n = x.shape[0]
        v = np.empty(n)
        s = np.empty(n)
        for i in range(n):
            t = x[i] + y[i]
            s[i] = t
            v[i] = t * z[i]
        return v, (z, z, s)

    def neuron_np(w0, x0, w1, x1, w2):
        s = 1.0 / (1.0 + np.exp(-(w0 * x0 + w1 * x1 + w2)))
        ds = s * (1.0 - s)
        return s, (ds * x0, ds * w0, ds * x1, ds * w1, ds)

    @njit
    def neuron_loop(w0, x0, w1, x1, w2):
        n = w0.shape[0]
        v = np.empty(n)
        g = np.empty((5, n))  # one block, handed out as five contiguous rows
        for i in range(n):
            s = 1.0 / (1.0 + np.exp(-(w0[i] * x0[i] + w1[i] * x1[i] + w2[i])))
            ds = s * (1.0 - s)
            v[i] = s
            g[0, i] = ds * x0[i]
            g[1, i] = ds * w0[i]
            g[2, i] = ds * x1[i]
            g[3, i] = ds * w1[i]
            g[4, i] = ds
        return v, (g[0], g[1], g[2], g[3], g[4])

    def transcendental_np(x, y, z):
        e = np.exp(-y * y)
        s = np.sin(x)
        zz = z * z
        return s * e + np.log1p(zz), (np.cos(x) * e, -2.0 * y * s * e, 2.0 * z / (1.0 + zz))

    @njit
    def transcendental_loop(x, y, z):
        n = x.shape[0]
        v, gx, gy, gz = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
        for i in range(n):
            e = np.exp(-y[i] * y[i])
            s = np.sin(x[i])
            zz = z[i] * z[i]
            v[i] = s * e + np.log1p(zz)
            gx[i] = np.cos(x[i]) * e
            gy[i] = -2.0 * y[i] * s * e
            gz[i] = 2.0 * z[i] / (1.0 + zz)
        return v, (gx, gy, gz)

    return {
        "add_mul": (add_mul_np, add_mul_loop),
        "neuron": (neuron_np, neuron_loop),
        "transcendental": (transcendental_np, transcendental_loop),
    }


def _point_loop(ctx, scalar_fn, n_in: int, n_out: int):
    """An ``@njit`` loop applying a jitted scalar function returning an ``n_out``-tuple.

    Numba cannot splat a runtime-length list of arrays into a call, so the loop is generated
    for the arity at hand; everything else about it is fixed.
    """
    args = ", ".join(f"a{i}" for i in range(n_in))
    elems = ", ".join(f"a{i}[i]" for i in range(n_in))
    src = (
        f"def loop({args}):\n"
        f"    n = a0.shape[0]\n"
        f"    out = np.empty(({n_out}, n))\n"
        f"    for i in range(n):\n"
        f"        r = fn({elems})\n"
        f"        for j in range({n_out}):\n"
        f"            out[j, i] = r[j]\n"
        f"    return out\n"
    )
    namespace = {"np": ctx.np, "fn": scalar_fn}
    exec(src, namespace)  # the source is built above from integers only
    return ctx.numba.njit(error_model="numpy", nogil=True)(namespace["loop"])


def _arrays(ex, ctx, n: int):
    def build():
        rng = ctx.np.random.default_rng(20240611)
        # [-2, 2] keeps exp() of the neuron's pre-activation far from overflow in every peer.
        return tuple(rng.uniform(-2.0, 2.0, n) for _ in ex.names)

    return ctx.memo(("arrays", ex.name, n), build)


def _pts_symgrad_kw(ex, ctx, n):
    f = ctx.compiled(ex)
    return Bench(f.value_and_grad, kwargs=dict(zip(ex.names, _arrays(ex, ctx, n))), flat=_flat_vg)


def _pts_symgrad_raw(ex, ctx, n):
    f = ctx.compiled(ex)
    arrays = dict(zip(ex.names, _arrays(ex, ctx, n)))
    f.value_and_grad(**arrays)  # builds the array variant
    variants = getattr(f, "_variants", None)
    if not variants:
        raise Unavailable("no array variant found on the Compiled object")
    variant = next(iter(variants.values()))
    raw = variant._fn["value_and_grad"]
    return Bench(raw, args=tuple(arrays[s.name] for s in variant.inputs), flat=_flat_vg)


def _pts_lambdify_numpy(ex, ctx, n):
    return Bench(ctx.lambdified(ex, "numpy"), args=_arrays(ex, ctx, n))


def _pts_numpy_hand(ex, ctx, n):
    fn = ctx.memo("hand", lambda: _hand_written(ctx.np, ctx.numba))[ex.name][0]
    return Bench(fn, args=_arrays(ex, ctx, n), flat=_flat_vg)


def _pts_njit_hand(ex, ctx, n):
    fn = ctx.memo("hand", lambda: _hand_written(ctx.np, ctx.numba))[ex.name][1]
    return Bench(fn, args=_arrays(ex, ctx, n), flat=_flat_vg)


def _pts_numba_lambdify(ex, ctx, n):
    k = len(ex.names)

    def build():
        scalar = ctx.numba.njit(ctx.lambdified(ex, "math"))
        return _point_loop(ctx, scalar, k, k + 1)

    return Bench(ctx.memo(("njit-lambdify-loop", ex.name), build), args=_arrays(ex, ctx, n))


def _pts_jax(ex, ctx, n):
    jax = ctx.peer("jax")
    jnp = ctx.peer("jax.numpy")
    k = len(ex.names)
    vg = jax.jit(
        jax.vmap(jax.value_and_grad(lambda *a: ex.build(jnp, *a), argnums=tuple(range(k))))
    )
    # Moved to JAX once, outside the timing: a JAX program keeps its data as JAX arrays.
    args = tuple(jnp.asarray(a) for a in _arrays(ex, ctx, n))

    def call(*a):
        return jax.block_until_ready(vg(*a))

    return Bench(call, args=args, flat=_flat_vg)


def _pts_torch(ex, ctx, n):
    torch = ctx.peer("torch")

    def call(*arrays):
        # from_numpy shares memory, so making the leaves costs no copy.
        leaves = [torch.from_numpy(a).requires_grad_() for a in arrays]
        out = ex.build(torch, *leaves)
        out.backward(torch.ones_like(out))
        return out.detach(), tuple(t.grad for t in leaves)

    return Bench(call, args=_arrays(ex, ctx, n), flat=_flat_vg)


def _pts_pytensor(mode):
    def make(ex, ctx, n):
        fn = _pytensor_function(ex, ctx, mode, vector=True)
        return Bench(fn, args=_arrays(ex, ctx, n))

    return make


POINTS = (
    Contender(BASELINE, "symgrad", _pts_symgrad_kw),
    Contender("symgrad raw numba fn", "symgrad", _pts_symgrad_raw),
    Contender("lambdify(numpy)", "lambdify", _pts_lambdify_numpy),
    Contender("numpy by hand", "numpy", _pts_numpy_hand),
    Contender("numba njit loop(lambdify math)", "numba", _pts_numba_lambdify),
    Contender("numba njit loop by hand", "numba", _pts_njit_hand),
    Contender("jax jit(vmap(value_and_grad))", "jax", _pts_jax),
    Contender("torch autograd", "torch", _pts_torch),
    Contender("pytensor (default mode)", "pytensor", _pts_pytensor(None)),
    Contender("pytensor mode=NUMBA", "pytensor", _pts_pytensor("NUMBA")),
)


# -- running and checking ----------------------------------------------------------------------
def _reference(ex, ctx, args) -> list:
    """``[value, *grads]`` from SymPy's own derivatives, evaluated by NumPy: the oracle."""
    np = ctx.np
    out = ctx.lambdified(ex, "numpy")(*args)
    shape = np.shape(args[0])
    return [np.broadcast_to(np.asarray(o, dtype=np.float64), shape) for o in out]


def _check(bench: Bench, out, ref, np) -> str:
    flat = bench.flat(out)
    if flat is None:
        return "n/a"
    if len(flat) != len(ref):
        return f"MISMATCH: {len(flat)} outputs, expected {len(ref)}"
    worst = 0.0
    for got, want in zip(flat, ref):
        got = np.asarray(got, dtype=np.float64)
        if got.shape != want.shape:
            got = np.broadcast_to(got, want.shape)
        err = np.abs(got - want) / (np.abs(want) + 1e-12)
        worst = max(worst, float(np.max(err)) if err.size else 0.0)
    return "ok" if worst <= 1e-9 else f"MISMATCH: max rel err {worst:.2e}"


def _bytes_moved(bench: Bench, out, np) -> int:
    """Bytes read (every input array) plus bytes written (outputs that are not inputs).

    Counting only what a kernel must touch makes the figure comparable to copy bandwidth: an
    output that *is* an input (d/dx of ``(x+y)*z`` is ``z``) was never written.
    """
    inputs = [a for a in (*bench.args, *bench.kwargs.values()) if hasattr(a, "nbytes")]
    inputs = [np.asarray(a) for a in inputs]
    total = sum(a.nbytes for a in inputs)
    seen: list = []
    for o in bench.flat(out) or []:
        o = np.asarray(o)
        if o.ndim == 0:
            continue
        if any(np.shares_memory(o, a) for a in inputs) or any(o is s for s in seen):
            continue
        seen.append(o)
        total += o.nbytes
    return total


def run_section(contenders, examples, ctx, args, make_extra=(), *, scale: float, unit: str):
    """Prepare, check and time every contender on every example; returns the result rows.

    Timing loops are interleaved across an example's contenders (round ``r`` times each of
    them once) so that background load drifting during the run hits all rows alike and the
    ratios stay meaningful even when absolute times do not.
    """
    np = ctx.np
    rows = []
    for ex in examples:
        prepared = []
        for c in contenders:
            row = {"example": ex.name, "contender": c.label, "family": c.family}
            rows.append(row)
            try:
                bench = c.make(ex, ctx, *make_extra)
                out = bench.call()  # compiles (JIT peers) and yields the result to check
                ref = _reference(ex, ctx, _bench_inputs(bench, ex, ctx, np))
                row["check"] = _check(bench, out, ref, np)
                if ex.name == "add_mul" and unit == "ms":
                    row["bytes_moved"] = _bytes_moved(bench, out, np)
            except Unavailable as exc:
                row["status"] = str(exc)
                continue
            except Exception as exc:
                row["status"] = f"error: {type(exc).__name__}: {exc}"
                continue
            row["status"] = "ok"
            stmt, names = bench.timeit_source()
            prepared.append((row, stmt, names))
        # Calibrate each, then interleave the timed loops.
        timers = []
        for row, stmt, names in prepared:
            cal = common.median_time(stmt, names, repeat=1, min_time=args.min_time)
            timers.append((row, timeit.Timer(stmt, globals=names), cal["number"], []))
        for _ in range(args.repeat):
            for _row, timer, number, samples in timers:
                samples.append(timer.timeit(number) / number)
        base = None
        for row, _timer, number, samples in timers:
            samples.sort()
            row[f"median_{unit}"] = samples[len(samples) // 2] * scale
            row[f"min_{unit}"] = samples[0] * scale
            row["number"], row["repeat"] = number, len(samples)
            if row["contender"] == BASELINE:
                base = row[f"median_{unit}"]
        for row in rows:
            if row["example"] == ex.name and f"median_{unit}" in row and base:
                row["ratio_to_symgrad"] = row[f"median_{unit}"] / base
            if "bytes_moved" in row and f"median_{unit}" in row:
                row["gbs"] = row["bytes_moved"] / (row[f"median_{unit}"] / scale) / 1e9
        print(f"  {ex.name}: {len(prepared)} contenders timed", file=sys.stderr, flush=True)
    return rows


def _bench_inputs(bench: Bench, ex: Example, ctx, np) -> tuple:
    """The inputs a bench was given, as NumPy values in the example's symbol order."""
    if bench.kwargs:
        return tuple(np.asarray(bench.kwargs[n]) for n in ex.names)
    if bench.fn is _noop or not bench.args:
        return tuple(ex.point)
    return tuple(np.asarray(a) for a in bench.args)


# -- section 3: compile time in fresh processes ------------------------------------------------
# Timed phases, in order: ``compile`` (lower, differentiate, optimise, emit or load the cached
# module), the first public call on floats, the first call of the raw Numba function on floats
# (the public scalar call may run a plain-Python twin and leave Numba cold), and the first
# public call on arrays (builds the vectorised variant and compiles its loop).
_CHILD_COMPILE = """
import json, sys, time
t0 = time.perf_counter()
import symgrad as sg
t1 = time.perf_counter()
sys.path.insert(0, {here!r})
import numpy as np
import sympy as sp
from bench_scalar import EXAMPLES_BY_NAME
ex = EXAMPLES_BY_NAME[{name!r}]
syms = sp.symbols(ex.names, real=True)
expr = ex.build(sp, *syms)
point = dict(zip(ex.names, ex.point))
arrays = {{k: np.full(1000, v) for k, v in point.items()}}
t2 = time.perf_counter()
f = sg.compile(expr, wrt=list(syms))
t3 = time.perf_counter()
f.value_and_grad(**point)
t4 = time.perf_counter()
f._fn["value_and_grad"](*[point[s.name] for s in f.inputs])
t5 = time.perf_counter()
f.value_and_grad(**arrays)
t6 = time.perf_counter()
print(json.dumps({{"import_s": t1 - t0, "compile_s": t3 - t2, "first_call_s": t4 - t3,
                  "first_numba_call_s": t5 - t4, "first_array_call_s": t6 - t5}}))
"""

# Numba's own floor: the first call, in a new process, of a one-line function that Numba has
# already cached on disk. Every warm symgrad process pays this once (loading cached machine code
# still initialises Numba's compiler), so it is the bound for a warm "1st numba call".
_CHILD_NUMBA_FLOOR = """
import json, sys, time
sys.path.insert(0, {folder!r})
t0 = time.perf_counter()
import numba_floor_probe
t1 = time.perf_counter()
numba_floor_probe.plus_one(1.0)
t2 = time.perf_counter()
print(json.dumps({{"import_s": t1 - t0, "first_call_s": t2 - t1}}))
"""

_NUMBA_FLOOR_MODULE = """
from numba import njit


@njit(cache=True)
def plus_one(x):
    return x + 1.0
"""

#: The phases above, in the order they run; their sum is the row's total.
_PHASES = ("compile_s", "first_call_s", "first_numba_call_s", "first_array_call_s")

_CHILD_IMPORT = """
import time
t0 = time.perf_counter()
import {modules}
print(time.perf_counter() - t0)
"""


def _child_env(cache_dir: str | None) -> dict:
    env = dict(os.environ)
    # A global NUMBA_CACHE_DIR would move Numba's cache out of symgrad's folder and blur
    # the cold/warm distinction; measure the default layout.
    env.pop("NUMBA_CACHE_DIR", None)
    if cache_dir is not None:
        env["SYMGRAD_CACHE_DIR"] = cache_dir
    return env


def _run_child(code: str, env: dict) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=900
    )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"child exited {proc.returncode}: {tail[0]}")
    return proc.stdout.strip().splitlines()[-1]


def _median(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2]


def run_compile(examples, args) -> dict:
    """Cold and warm compile + first calls per example, and import times, in subprocesses."""
    runs = args.compile_runs
    imports = {}
    # numba is listed alone because symgrad imports it at the first compile, not at import:
    # its import time is inside every "compile" figure below.
    for label, modules in (
        ("symgrad", "symgrad"),
        ("numba", "numba"),
        ("numpy+sympy+numba", "numpy, sympy, numba"),
    ):
        code = _CHILD_IMPORT.format(modules=modules)
        _run_child(code, _child_env(None))  # discarded: fills the OS file cache and .pyc files
        times = [float(_run_child(code, _child_env(None))) for _ in range(max(runs, 3))]
        imports[label] = {"median_s": _median(times), "min_s": min(times), "runs": len(times)}
    with tempfile.TemporaryDirectory(prefix="numba-floor-") as folder:
        (Path(folder) / "numba_floor_probe.py").write_text(_NUMBA_FLOOR_MODULE)
        code = _CHILD_NUMBA_FLOOR.format(folder=folder)
        cold_floor = json.loads(_run_child(code, _child_env(None)))
        warm_floor = [json.loads(_run_child(code, _child_env(None))) for _ in range(max(runs, 3))]
    numba_floor = {
        "cold": cold_floor,
        "warm": {k: _median([t[k] for t in warm_floor]) for k in ("import_s", "first_call_s")},
        "runs": len(warm_floor),
    }
    rows = []
    for ex in examples:
        code = _CHILD_COMPILE.format(here=str(HERE), name=ex.name)
        cold, warm, cache_files, warm_misses = [], [], [], 0
        for _ in range(runs):
            with tempfile.TemporaryDirectory(prefix="symgrad-bench-cache-") as tmp:
                cold.append(json.loads(_run_child(code, _child_env(tmp))))
                # Machine code Numba left for the next process: none means warm recompiles.
                before = {p.name for p in Path(tmp).rglob("*") if p.is_file()}
                cache_files.append(sum(1 for n in before if n.endswith((".nbi", ".nbc"))))
                warm.append(json.loads(_run_child(code, _child_env(tmp))))
                # A warm run that writes files missed the cache; with symgrad's sources in the
                # cache key, an edit to them between the two runs is enough to cause that.
                after = {p.name for p in Path(tmp).rglob("*") if p.is_file()}
                warm_misses += bool(after - before)
        row = {
            "example": ex.name,
            "runs": runs,
            "numba_cache_files": cache_files[-1],
            "warm_cache_misses": warm_misses,
        }
        for kind, samples in (("cold", cold), ("warm", warm)):
            row[kind] = {key: _median([s[key] for s in samples]) for key in ("import_s", *_PHASES)}
            row[kind]["total_s"] = _median([sum(s[k] for k in _PHASES) for s in samples])
        rows.append(row)
        print(f"  {ex.name}: compile timed", file=sys.stderr, flush=True)
    return {"import": imports, "numba_floor": numba_floor, "rows": rows}


# -- output ------------------------------------------------------------------------------------
def _status_note(row) -> str:
    if row.get("status") != "ok":
        return str(row.get("status", ""))[:70]
    check = row.get("check", "")
    return "" if check in ("ok", "n/a") else check


def print_latency(rows) -> None:
    print("\n== latency: one call, value + all partials, Python floats in (µs/call, median) ==")
    print("x symgrad = time / symgrad value_and_grad(kw) time; above 1 means symgrad is faster")
    table = []
    for r in rows:
        table.append([r["example"], r["contender"], r.get("median_us"),
                      _ratio(r), _status_note(r)])  # fmt: skip
    print(common.format_table(["example", "contender", "µs/call", "x symgrad", "note"], table))


def print_points(section) -> None:
    bw = section["copy_bandwidth"]
    n = section["n"]
    print(f"\n== points: value + all partials over {n:,} float64 points (ms/call, median) ==")
    print(
        f"copy bandwidth: {bw['copyto_gbs']:.1f} GB/s into an existing array, "
        f"{bw['copy_alloc_gbs']:.1f} GB/s into a new one (read + write bytes)"
    )
    print("GB/s (add_mul only) = bytes read + bytes newly written / time")
    table = []
    for r in section["rows"]:
        gbs = r.get("gbs")
        table.append([r["example"], r["contender"], r.get("median_ms"), _ratio(r),
                      None if gbs is None else f"{gbs:.1f}", _status_note(r)])  # fmt: skip
    print(common.format_table(["example", "contender", "ms", "x symgrad", "GB/s", "note"], table))


def print_compile(section) -> None:
    print("\n== compile: time to first results in a fresh process (s, median) ==")
    print("cold = empty SYMGRAD_CACHE_DIR, warm = the same folder again in a new process")
    print(
        "`import numba` happens at the first Numba call (an all-float call runs the Python twin "
        "and never imports it): it is inside the 1st numba call and 1st array call columns"
    )
    for label, t in section["import"].items():
        print(f"import {label}: {t['median_s']:.3f} s")
    floor = section["numba_floor"]
    print(
        "numba floor, first call of a trivial @njit(cache=True) function in a new process "
        f"(after its import): {floor['warm']['first_call_s']:.3f} s cached, "
        f"{floor['cold']['first_call_s']:.3f} s uncached"
    )
    table = []
    for r in section["rows"]:
        for kind in ("cold", "warm"):
            t = r[kind]
            note = ""
            if kind == "warm" and r["warm_cache_misses"]:
                note = f"cache missed in {r['warm_cache_misses']}/{r['runs']} runs"
            table.append([r["example"], kind, *(t[k] for k in _PHASES), t["total_s"], note])
    headers = ["example", "cache", "sg.compile", "1st call", "1st numba call",
               "1st array call", "total", "note"]  # fmt: skip
    print(common.format_table(headers, table))


def _ratio(row) -> str | None:
    ratio = row.get("ratio_to_symgrad")
    return None if ratio is None else f"{common.fmt_number(ratio)}x"


# -- command line ------------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--section", choices=("latency", "points", "compile", "all"), default="all")
    p.add_argument("--quick", action="store_true", help="fewer repeats and points (smoke test)")
    p.add_argument("--threads", type=int, default=1, help="threads for every contender (1)")
    p.add_argument(
        "--only",
        default=",".join(FAMILIES),
        help=f"comma-separated contender families to run, from: {', '.join(FAMILIES)}",
    )
    p.add_argument("--points", type=int, default=None, help="points in section 2 (1,000,000)")
    p.add_argument("--output", type=Path, default=common.RESULTS_DIR / "scalar.json")
    a = p.parse_args(argv)
    a.families = [f.strip() for f in a.only.split(",") if f.strip()]
    unknown = set(a.families) - set(FAMILIES)
    if unknown:
        p.error(f"unknown families in --only: {', '.join(sorted(unknown))}")
    a.repeat = 3 if a.quick else 7
    a.min_time = 0.02 if a.quick else 0.2
    a.compile_runs = 1 if a.quick else 3
    if a.points is None:
        a.points = 100_000 if a.quick else 1_000_000
    return a


def main(argv=None) -> int:
    args = parse_args(argv)
    # Before any numeric import: thread pools are sized once, when their library loads.
    env = common.pin_threads(args.threads)
    ctx = Context(args.threads)
    sections = ("latency", "points", "compile") if args.section == "all" else (args.section,)
    result = {
        "benchmark": "scalar",
        "schema": 1,
        "command": [Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)],
        "quick": args.quick,
        "families": args.families,
        "thread_env": env,
        "machine": common.machine_info(args.threads),
        "examples": {
            ex.name: {"formula": ex.formula, "symbols": list(ex.names), "point": list(ex.point)}
            for ex in EXAMPLES
        },
    }
    warning = common.busy_warning()
    if warning:
        print(warning, file=sys.stderr)
    keep = set(args.families)
    started = time.perf_counter()
    if "latency" in sections:
        print("latency section...", file=sys.stderr, flush=True)
        chosen = [c for c in LATENCY if c.family in keep]
        rows = run_section(chosen, EXAMPLES, ctx, args, scale=1e6, unit="us")
        result["latency"] = {"unit": "us", "rows": rows}
        print_latency(rows)
    if "points" in sections:
        print("points section...", file=sys.stderr, flush=True)
        chosen = [c for c in POINTS if c.family in keep]
        bw = common.copy_bandwidth(repeat=args.repeat)
        rows = run_section(chosen, EXAMPLES, ctx, args, (args.points,), scale=1e3, unit="ms")
        result["points"] = {"unit": "ms", "n": args.points, "copy_bandwidth": bw, "rows": rows}
        print_points(result["points"])
    if "compile" in sections:
        print("compile section...", file=sys.stderr, flush=True)
        result["compile"] = run_compile(EXAMPLES, args)
        print_compile(result["compile"])
    result["elapsed_s"] = time.perf_counter() - started
    path = common.write_json(args.output, result)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
