"""Recurrent training-step benchmark: symgrad's scan step against its peers (issue 4, Benchmarks).

One training step = forward over T = 50 steps, softmax cross-entropy of a linear read-out at
every step (mean over time and batch), full backpropagation through time and an SGD update,
float32, batch 32, input 64, hidden 128, 64 classes, h0 (and c0) zero. Cells:

``elman``  h = tanh(x Wx + h Wh + b)
``gru``    z = σ(x Wz + h Uz + bz), r = σ(x Wr + h Ur + br), n = tanh(x Wn + r ∘ (h Un) + bn),
           h = z ∘ h + (1 − z) ∘ n   (PyTorch's GRU with its hidden-side biases at zero)
``lstm``   i, f, o = σ(x W· + h U· + b·), g = tanh(x Wg + h Ug + bg), c = f ∘ c + i ∘ g,
           h = o ∘ tanh(c)

Contenders: symgrad (``sg.scan`` + ``compile_step``, called as the trainer does), PyTorch with a
hand-written cell loop, PyTorch's fused ``nn.RNN``/``nn.GRU``/``nn.LSTM`` (weights copied in),
JAX ``jit`` of the whole step with ``lax.scan``, and PyTensor ``scan`` in Numba mode (capped by
``--timeout``). Every contender's loss at the initial parameters is checked against a NumPy
forward pass before it is timed. Each thread count runs in its own pinned subprocess. Also:
symgrad's cold (fresh ``SYMGRAD_CACHE_DIR``) and warm compile in a new process, calling the one
compiled step with T = 10 and then T = 500.

Run ``python benchmarks/bench_rnn.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common
from bench_mlp import Unavailable, fmt_time, pin_cpus, time_limit

T_STEPS, BATCH, D_IN, HIDDEN, CLASSES = 50, 32, 64, 128, 64
LR = 1e-2
CELLS = ("elman", "gru", "lstm")
BASELINE = "symgrad scan step (raw Numba)"
FAMILIES = ("symgrad", "torch", "torch-fused", "jax", "pytensor")

#: Per cell: the gates, each ``(name, activation)``; every gate has W (D,H), U (H,H), b (1,H).
GATES = {
    "elman": (("h", "tanh"),),
    "gru": (("z", "sigmoid"), ("r", "sigmoid"), ("n", "tanh")),
    "lstm": (("i", "sigmoid"), ("f", "sigmoid"), ("o", "sigmoid"), ("g", "tanh")),
}


def param_names(cell: str) -> list[str]:
    names = []
    for g, _ in GATES[cell]:
        names += [f"W{g}", f"U{g}", f"b{g}"]
    return names + ["V", "c"]


class Problem:
    """Data and initial parameters for one cell (the same arrays for every contender)."""

    def __init__(self, cell: str, np, T: int = T_STEPS, seed: int = 0):
        self.cell, self.T = cell, T
        rng = np.random.default_rng(seed)
        f = np.float32
        self.init = {}
        for g, _ in GATES[cell]:
            self.init[f"W{g}"] = (rng.standard_normal((D_IN, HIDDEN)) / np.sqrt(D_IN)).astype(f)
            self.init[f"U{g}"] = (rng.standard_normal((HIDDEN, HIDDEN)) / np.sqrt(HIDDEN)).astype(f)
            self.init[f"b{g}"] = (0.1 * rng.standard_normal((1, HIDDEN))).astype(f)
        self.init["V"] = (rng.standard_normal((HIDDEN, CLASSES)) / np.sqrt(HIDDEN)).astype(f)
        self.init["c"] = np.zeros((1, CLASSES), f)
        self.names = param_names(cell)
        self.X = rng.standard_normal((T, BATCH, D_IN)).astype(f)
        self.labels = rng.integers(0, CLASSES, (T, BATCH))
        self.Y = np.zeros((T, BATCH, CLASSES), f)
        np.put_along_axis(self.Y, self.labels[..., None], 1, axis=2)
        self.h0 = np.zeros((BATCH, HIDDEN), f)

    def fresh(self):
        return {k: v.copy() for k, v in self.init.items()}


def cell_step(cell, P, x, h, c, ops):
    """One time step written once for NumPy, PyTorch and JAX (``ops``: sigmoid, tanh)."""
    sig, tanh = ops

    def pre(g):
        return x @ P[f"W{g}"] + h @ P[f"U{g}"] + P[f"b{g}"]

    if cell == "elman":
        return tanh(pre("h")), c
    if cell == "gru":
        z, r = sig(pre("z")), sig(pre("r"))
        n = tanh(x @ P["Wn"] + r * (h @ P["Un"]) + P["bn"])
        return z * h + (1 - z) * n, c
    i, f, o, g = sig(pre("i")), sig(pre("f")), sig(pre("o")), tanh(pre("g"))
    c = f * c + i * g
    return o * tanh(c), c


def numpy_loss(pb: Problem, np) -> float:
    P = {k: v.astype(np.float64) for k, v in pb.init.items()}
    ops = (lambda a: 1 / (1 + np.exp(-a)), np.tanh)
    h = np.zeros((BATCH, HIDDEN))
    c = np.zeros((BATCH, HIDDEN))
    total = 0.0
    for t in range(pb.T):
        h, c = cell_step(pb.cell, P, pb.X[t].astype(np.float64), h, c, ops)
        z = h @ P["V"] + P["c"]
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        total += -(pb.Y[t] * logp).sum() / BATCH
    return total / pb.T


class Prepared:
    def __init__(self, call, loss0, stmt=None, names=None):
        self.call, self.loss0 = call, loss0
        self.stmt, self.names = stmt, names


# -- symgrad ------------------------------------------------------------------------------------
def symgrad_graph(cell: str):
    """The cell's loss as SymPy: ``sg.scan`` over the sequences X and Y, with its parameters."""
    import sympy as sp

    import symgrad as sg
    from symgrad import nn

    T, n = sp.symbols("T n")
    X = sg.Sequence("X", T, n, D_IN)
    Ys = sg.Sequence("Y", T, n, CLASSES)
    x = sp.MatrixSymbol("x_t", n, D_IN)
    y = sp.MatrixSymbol("y_t", n, CLASSES)
    h = sp.MatrixSymbol("h", n, HIDDEN)
    cs = sp.MatrixSymbol("cs", n, HIDDEN)
    h0 = sp.MatrixSymbol("h0", n, HIDDEN)
    c0 = sp.MatrixSymbol("c0", n, HIDDEN)
    ones = sp.OneMatrix(n, 1)
    had = sp.HadamardProduct
    P = {}
    for g, _ in GATES[cell]:
        P[f"W{g}"] = sp.MatrixSymbol(f"W{g}", D_IN, HIDDEN)
        P[f"U{g}"] = sp.MatrixSymbol(f"U{g}", HIDDEN, HIDDEN)
        P[f"b{g}"] = sp.MatrixSymbol(f"b{g}", 1, HIDDEN)
    P["V"] = sp.MatrixSymbol("V", HIDDEN, CLASSES)
    P["c"] = sp.MatrixSymbol("c", 1, CLASSES)

    def pre(g):
        return x * P[f"W{g}"] + h * P[f"U{g}"] + ones * P[f"b{g}"]

    if cell == "elman":
        h_new = nn.tanh(pre("h"))
        states = [(h, h_new, h0)]
    elif cell == "gru":
        z, r = nn.sigmoid(pre("z")), nn.sigmoid(pre("r"))
        cand = nn.tanh(x * P["Wn"] + had(r, h * P["Un"]) + ones * P["bn"])
        h_new = had(z, h) + had(sp.OneMatrix(n, HIDDEN) - z, cand)
        states = [(h, h_new, h0)]
    else:
        i, f, o = (nn.sigmoid(pre(g)) for g in "ifo")
        c_new = had(f, cs) + had(i, nn.tanh(pre("g")))
        h_new = had(o, nn.tanh(c_new))
        states = [(h, h_new, h0), (cs, c_new, c0)]
    logits = h_new * P["V"] + ones * P["c"]
    rnn = sg.scan([(x, X), (y, Ys)], states, [nn.cross_entropy(logits, y)])
    return rnn.total() / T, [P[k] for k in param_names(cell)]


def make_symgrad(pb: Problem, raw: bool) -> Prepared:
    import symgrad as sg
    from symgrad.runtime import SGD

    loss, params = symgrad_graph(pb.cell)
    opt = SGD(lr=LR)
    step = sg.compile_step(loss, params, opt.rule, "float32")

    def values(p):
        v = {**p, "X": pb.X, "Y": pb.Y, "h0": pb.h0, **opt.hyper_values()}
        if pb.cell == "lstm":
            v["c0"] = pb.h0
        return v

    loss0 = float(step(values(pb.fresh())))
    vals = values(pb.fresh())
    if raw:
        bound = step.bind(vals)
        bound.warm_up()
        return Prepared(bound, loss0, "_fn(*_args)", {"_fn": bound.fn, "_args": bound.args})
    return Prepared(lambda: step(vals), loss0, "_fn(_v)", {"_fn": step, "_v": vals})


# -- PyTorch ------------------------------------------------------------------------------------
def make_torch_loop(pb: Problem, torch) -> Prepared:
    F = torch.nn.functional
    X = torch.from_numpy(pb.X)
    y = torch.from_numpy(pb.labels.reshape(-1).astype("int64"))
    ops = (torch.sigmoid, torch.tanh)

    def params():
        return {k: torch.from_numpy(v).requires_grad_(True) for k, v in pb.fresh().items()}

    def step(P):
        h = torch.zeros(BATCH, HIDDEN)
        c = torch.zeros(BATCH, HIDDEN)
        hs = []
        for t in range(pb.T):
            h, c = cell_step(pb.cell, P, X[t], h, c, ops)
            hs.append(h)
        logits = torch.stack(hs).reshape(-1, HIDDEN) @ P["V"] + P["c"]
        loss = F.cross_entropy(logits, y)
        grads = torch.autograd.grad(loss, list(P.values()))
        with torch.no_grad():
            for p, g in zip(P.values(), grads):
                p.sub_(g, alpha=LR)
        return loss

    loss0 = float(step(params()).detach())
    P = params()
    step(P)
    return Prepared(lambda: step(P), loss0)


def make_torch_fused(pb: Problem, torch) -> Prepared:
    import numpy as np

    F = torch.nn.functional
    X = torch.from_numpy(pb.X)
    y = torch.from_numpy(pb.labels.reshape(-1).astype("int64"))
    # PyTorch's gate order in weight_ih/weight_hh: GRU r, z, n; LSTM i, f, g, o.
    order = {"elman": "h", "gru": "rzn", "lstm": "ifgo"}[pb.cell]
    cls = {"elman": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[pb.cell]

    def build():
        rnn = cls(D_IN, HIDDEN)
        head = torch.nn.Linear(HIDDEN, CLASSES)
        P = pb.init
        with torch.no_grad():
            rnn.weight_ih_l0.copy_(torch.from_numpy(np.concatenate([P[f"W{g}"].T for g in order])))
            rnn.weight_hh_l0.copy_(torch.from_numpy(np.concatenate([P[f"U{g}"].T for g in order])))
            rnn.bias_ih_l0.copy_(torch.from_numpy(np.concatenate([P[f"b{g}"][0] for g in order])))
            rnn.bias_hh_l0.zero_()
            head.weight.copy_(torch.from_numpy(P["V"].T.copy()))
            head.bias.copy_(torch.from_numpy(P["c"][0]))
        return rnn, head, list(rnn.parameters()) + list(head.parameters())

    def step(rnn, head, ps):
        out, _ = rnn(X)
        loss = F.cross_entropy(head(out.reshape(-1, HIDDEN)), y)
        grads = torch.autograd.grad(loss, ps)
        with torch.no_grad():
            for p, g in zip(ps, grads):
                p.sub_(g, alpha=LR)
        return loss

    loss0 = float(step(*build()).detach())
    model = build()
    step(*model)
    return Prepared(lambda: step(*model), loss0)


# -- JAX ----------------------------------------------------------------------------------------
def make_jax(pb: Problem, jax) -> Prepared:
    jnp = jax.numpy
    ops = (jax.nn.sigmoid, jnp.tanh)

    def loss_fn(P, X, Y):
        def body(carry, xy):
            h, c = carry
            x, y = xy
            h, c = cell_step(pb.cell, P, x, h, c, ops)
            logp = jax.nn.log_softmax(h @ P["V"] + P["c"], axis=1)
            return (h, c), -jnp.mean(jnp.sum(y * logp, axis=1))

        zero = jnp.zeros((X.shape[1], HIDDEN), X.dtype)
        _, losses = jax.lax.scan(body, (zero, zero), (X, Y))
        return jnp.mean(losses)

    @jax.jit
    def step(P, X, Y):
        loss, grads = jax.value_and_grad(loss_fn)(P, X, Y)
        return loss, jax.tree_util.tree_map(lambda p, g: p - LR * g, P, grads)

    X, Y = jnp.asarray(pb.X), jnp.asarray(pb.Y)

    def init():
        return {k: jnp.asarray(v) for k, v in pb.fresh().items()}

    loss0 = float(step(init(), X, Y)[0])
    state = {"P": init()}

    def call():
        loss, state["P"] = step(state["P"], X, Y)
        loss.block_until_ready()

    call()
    return Prepared(call, loss0)


# -- PyTensor -----------------------------------------------------------------------------------
def make_pytensor(pb: Problem) -> Prepared:
    import numpy as np

    pytensor, why = common.try_import("pytensor")
    if pytensor is None:
        raise Unavailable(why)
    import pytensor.tensor as pt

    pytensor.config.floatX = "float32"
    shared = {k: pytensor.shared(v.copy(), name=k, shape=v.shape) for k, v in pb.init.items()}
    X = pt.tensor3("X", dtype="float32")
    Y = pt.tensor3("Y", dtype="float32")
    ops = (pt.sigmoid, pt.tanh)
    h0 = pt.zeros((X.shape[1], HIDDEN), dtype="float32")
    P = dict(shared)

    if pb.cell == "lstm":

        def body(x, h, c):
            return cell_step("lstm", P, x, h, c, ops)

        (hs, _), _ = pytensor.scan(body, sequences=[X], outputs_info=[h0, h0])
    else:

        def body(x, h):
            return cell_step(pb.cell, P, x, h, None, ops)[0]

        hs, _ = pytensor.scan(body, sequences=[X], outputs_info=[h0])
    z = pt.dot(hs.reshape((-1, HIDDEN)), P["V"]) + P["c"]
    z = z - pt.max(z, axis=1, keepdims=True)
    logp = z - pt.log(pt.sum(pt.exp(z), axis=1, keepdims=True))
    loss = -pt.mean(pt.sum(Y.reshape((-1, CLASSES)) * logp, axis=1))
    ps = [shared[k] for k in pb.names]
    grads = pytensor.grad(loss, ps)
    lr = np.float32(LR)
    try:
        fn = pytensor.function([X, Y], loss, updates=[(p, p - lr * g) for p, g in zip(ps, grads)],
                               mode="NUMBA")  # fmt: skip
        loss0 = float(np.asarray(fn(pb.X, pb.Y)))
    except Unavailable:
        raise
    except Exception as exc:
        raise Unavailable(f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}") from exc
    fn.trust_input = True
    return Prepared(lambda: fn(pb.X, pb.Y), loss0, "_fn(_X, _Y)",
                    {"_fn": fn, "_X": pb.X, "_Y": pb.Y})  # fmt: skip


def contenders(threads: int, pytensor_timeout: float):
    def peer(name):
        mod, why = common.try_import(name)
        if mod is None:
            raise Unavailable(why)
        if name == "torch":
            common.pin_torch(mod, threads)
        return mod

    return [
        (BASELINE, "symgrad", lambda pb: make_symgrad(pb, raw=True), None),
        ("symgrad step(dict)", "symgrad", lambda pb: make_symgrad(pb, raw=False), None),
        ("PyTorch cell loop", "torch", lambda pb: make_torch_loop(pb, peer("torch")), None),
        ("PyTorch fused nn.*", "torch-fused", lambda pb: make_torch_fused(pb, peer("torch")), None),
        ("JAX jit lax.scan", "jax", lambda pb: make_jax(pb, peer("jax")), None),
        ("PyTensor scan Numba", "pytensor", make_pytensor, pytensor_timeout),
    ]


def run_child(args) -> dict:
    threads = args.child
    common.pin_threads(threads)
    cpus = pin_cpus(threads)
    import numpy as np

    result = {"machine": common.machine_info(threads), "cells": {}}
    result["machine"]["cpu_affinity"] = cpus
    repeat = 5 if args.quick else 9
    min_time = 0.1 if args.quick else 0.3
    for cell in args.cells:
        pb = Problem(cell, np)
        ref = numpy_loss(pb, np)
        rows, runners = {}, {}
        # Build and check every contender first, then time them with their loops taking turns
        # (common.interleaved_medians): on a shared machine, load that drifts during the run
        # then hits every contender alike.
        for label, family, make, limit in contenders(threads, args.timeout):
            if args.only and family not in args.only:
                continue
            t0 = time.perf_counter()
            try:
                with time_limit(limit, f"{label} build"):
                    prep = make(pb)
                build = time.perf_counter() - t0
                if abs(prep.loss0 - ref) > 1e-3 * max(1.0, abs(ref)):
                    rows[label] = {"status": f"mismatch: loss {prep.loss0:.6g} vs {ref:.6g}"}
                else:
                    rows[label] = {"status": "ok", "family": family, "build_s": build}
                    runners[label] = (prep.stmt, prep.names) if prep.stmt else prep.call
            except Unavailable as exc:
                rows[label] = {"status": f"skipped: {exc}"}
            except Exception as exc:  # a broken peer must not take the other rows down
                msg = str(exc).splitlines()[0][:160] if str(exc) else ""
                rows[label] = {"status": f"error: {type(exc).__name__}: {msg}"}
            status = rows[label]["status"]
            took = time.perf_counter() - t0
            print(f"[{threads}] {cell:5s} {label:30s} {status} (build {took:.1f} s)",
                  file=sys.stderr, flush=True)  # fmt: skip
        times = common.interleaved_medians(runners, repeat=repeat, min_time=min_time)
        for label, t in times.items():
            rows[label].update(t)
        result["cells"][cell] = {"loss0": ref, "rows": rows}
    result["machine"]["loadavg_end"] = common._loadavg()
    return result


# -- compile time -------------------------------------------------------------------------------
_COMPILE_CHILD = r"""
import sys, time, json
sys.path.insert(0, sys.argv[2])
t0 = time.perf_counter()
import numpy as np
import symgrad as sg
from symgrad.runtime import SGD
import bench_rnn as B
t1 = time.perf_counter()
cell = sys.argv[1]
loss, params = B.symgrad_graph(cell)
opt = SGD(lr=1e-2)
step = sg.compile_step(loss, params, opt.rule, "float32")
t2 = time.perf_counter()
out = {"import_s": t1 - t0, "compile_step_s": t2 - t1}
for T in (10, 500):
    pb = B.Problem(cell, np, T=T)
    v = {**pb.fresh(), "X": pb.X, "Y": pb.Y, "h0": pb.h0, **opt.hyper_values()}
    if cell == "lstm":
        v["c0"] = pb.h0
    t = time.perf_counter()
    step(v)
    out[f"call_T{T}_s"] = time.perf_counter() - t
fn = getattr(step, "_step", None)
fn = getattr(fn, "dispatcher", fn)  # the Numba function behind the wrapper that stores it
sigs = getattr(fn, "signatures", None)
out["numba_signatures"] = None if sigs is None else len(sigs)
out["total_s"] = time.perf_counter() - t1
from symgrad.codegen.native_runtime import EVENTS
out["numba_imported"] = "numba" in sys.modules
out["native_loaded"] = len(EVENTS["loaded"])
print(json.dumps(out))
"""


def _compile_once(cell: str, threads: int) -> dict:
    env = dict(os.environ, **common.thread_env(threads))
    out = {}
    here = str(Path(__file__).resolve().parent)
    with tempfile.TemporaryDirectory(prefix="symgrad-bench-rnn-") as tmp:
        for kind, phase_env in common.compile_phase_envs(tmp, env):
            proc = subprocess.run([sys.executable, "-c", _COMPILE_CHILD, cell, here],
                                  env=phase_env, capture_output=True, text=True)  # fmt: skip
            if proc.returncode:
                out[kind] = {"error": proc.stderr.strip().splitlines()[-1:]}
            else:
                out[kind] = json.loads(proc.stdout.strip().splitlines()[-1])
        out["numba floor"] = common.numba_floor(tmp, env)
    return out


def compile_times(cell: str, threads: int, repeats: int = 1) -> dict:
    """Each compile phase ``repeats`` times (fresh cache folders each time), medians per phase."""
    return common.median_of_runs([_compile_once(cell, threads) for _ in range(repeats)])


def _step_code(r: dict) -> str:
    """Where the step's machine code came from: symgrad's native entry, or Numba."""
    if r.get("numba_imported") is False:
        return f"native ({r.get('native_loaded')} entries, no Numba import)"
    return f"Numba ({r.get('numba_signatures')} signature(s))"


def print_tables(results: dict) -> None:
    for threads, res in results["threads"].items():
        print(f"\n== {threads} thread(s); T={T_STEPS} batch={BATCH} in={D_IN} hidden={HIDDEN} "
              f"classes={CLASSES} float32; load {res['machine']['loadavg_start']} -> "
              f"{res['machine'].get('loadavg_end')}")  # fmt: skip
        table = []
        for cell, block in res["cells"].items():
            base = block["rows"].get(BASELINE, {}).get("median")
            for label, r in block["rows"].items():
                if r["status"] != "ok":
                    table.append([cell, label, r["status"][:70], ""])
                    continue
                ratio = f"{r['median'] / base:.2f}x" if base else ""
                table.append([cell, label, fmt_time(r["median"]), ratio])
        print(common.format_table(["cell", "contender", "median/step", "vs symgrad"], table))
    if results.get("compile"):
        print("\nsymgrad compile_step, then the same step called at T=10 (first call: Numba "
              "compile or cache load) and T=500; new process; first use = empty model and "
              "kernel caches, cold = empty SYMGRAD_CACHE_DIR (kernels cached), "
              "warm = same folder again; seconds; median of "
              f"{common.compile_runs(results['compile'])} run(s) each")  # fmt: skip
        table = []
        for cell, c in results["compile"].items():
            for kind in common.COMPILE_PHASES:
                r = c.get(kind, {})
                if "error" in r:
                    table.append([cell, kind, str(r["error"])[:60], "", "", "", ""])
                else:
                    table.append([cell, kind, r["compile_step_s"], r["call_T10_s"],
                                  r["call_T500_s"], r["compile_step_s"] + r["call_T10_s"],
                                  _step_code(r)])  # fmt: skip
        print(
            common.format_table(
                [
                    "cell",
                    "cache",
                    "compile_step",
                    "1st call T=10",
                    "call T=500",
                    "compile+1st",
                    "step code from",
                ],
                table,
            )
        )
        for cell, c in results["compile"].items():
            floor = c.get("numba floor", {})
            if "total_s" in floor:
                print(f"{cell}: Numba's own warm-start floor (new process: import numba "
                      f"{floor['import_numba_s']:.3f} s + first call of a cached trivial "
                      f"function {floor['first_cached_call_s']:.3f} s) = {floor['total_s']:.3f} s"
                      )  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (1,2)")
    ap.add_argument("--cells", default=",".join(CELLS), help="elman,gru,lstm")
    ap.add_argument("--quick", action="store_true", help="fewer repeats, 1 thread by default")
    ap.add_argument("--only", default="", help=f"comma-separated families: {','.join(FAMILIES)}")
    ap.add_argument("--timeout", type=float, default=180.0,
                    help="seconds allowed to build PyTensor's scan (0: no limit)")  # fmt: skip
    ap.add_argument("--no-compile", action="store_true", help="skip the compile-time section")
    ap.add_argument(
        "--compile-repeats",
        type=int,
        default=None,
        help="runs of each compile phase, medians reported (default 3; 1 with --quick)",
    )
    ap.add_argument("--out", type=Path, default=common.RESULTS_DIR / "rnn.json")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--child-out", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    given = argv or sys.argv[1:]
    if args.quick and not any(a.startswith("--threads") for a in given):
        args.threads = "1"
    args.cells = [c for c in args.cells.split(",") if c]
    bad = [c for c in args.cells if c not in CELLS]
    if bad:
        ap.error(f"unknown cells {bad}; use {list(CELLS)}")
    args.only = [f for f in args.only.split(",") if f]

    if args.child is not None:
        res = run_child(args)
        args.child_out.write_text(json.dumps(res, default=common._json_default))
        return 0

    threads = [int(t) for t in args.threads.split(",") if t]
    warn = common.busy_warning()
    if warn:
        print(warn)
    results = {"benchmark": "rnn", "quick": args.quick, "lr": LR, "threads": {},
               "shape": {"T": T_STEPS, "batch": BATCH, "input": D_IN, "hidden": HIDDEN,
                         "classes": CLASSES}}  # fmt: skip
    child_args = ["--cells", ",".join(args.cells), "--timeout", str(args.timeout)]
    if args.quick:
        child_args.append("--quick")
    if args.only:
        child_args += ["--only", ",".join(args.only)]
    results["threads"] = common.run_thread_children(__file__, threads, child_args)
    if not args.no_compile and (not args.only or "symgrad" in args.only):
        results["compile"] = {}
        repeats = args.compile_repeats or (1 if args.quick else 3)
        for cell in args.cells:
            print(f"[compile] {cell} cold+warm ...", file=sys.stderr, flush=True)
            results["compile"][cell] = compile_times(cell, threads[0], repeats)
    first = next(iter(results["threads"].values()), None)
    if first:
        results["machine"] = first["machine"]
    print_tables(results)
    warn = common.busy_warning()
    if warn:
        print("\n" + warn)
    path = common.write_json(args.out, results)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
