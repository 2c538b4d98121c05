"""MLP training-step benchmark: symgrad's fused step against its peers (issue 3, Benchmarks).

One training step = forward + backward + SGD update, float32, tanh hidden layers, softmax
cross-entropy averaged over the batch, parameters updated in place (or, for JAX, returned). Sizes:

``small``   64-32-32-10, batch 16
``medium``  784-256-256-10, batch 64
``large``   784-1024-1024-10, batch 256

Every thread count runs in its own subprocess, pinned before any numeric library is imported, so
all contenders share the same thread settings. Each contender's loss and updated last weight
matrix after one step from the same initial parameters are checked against the NumPy reference
before it is timed. Also reported: achieved GFLOP/s (3 matmul passes of 2·m·k·n per layer:
forward, dX, dW) against ``np.dot``'s measured float32 GEMM rate at the same thread count, and
symgrad's cold (fresh ``SYMGRAD_CACHE_DIR``, new process) and warm compile times.

Run ``python benchmarks/bench_mlp.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import common

HERE = Path(__file__).resolve().parent

SIZES = {
    "small": ((64, 32, 32, 10), 16),
    "medium": ((784, 256, 256, 10), 64),
    "large": ((784, 1024, 1024, 10), 256),
}
LR = 1e-3
BASELINE = "symgrad step (raw Numba)"
FAMILIES = ("symgrad", "torch", "torch.compile", "jax", "pytensor", "numpy", "numba")


class Unavailable(Exception):
    """A contender that cannot run here (not installed, unsupported, too slow to build)."""


@contextmanager
def time_limit(seconds: float | None, what: str):
    """Raise :class:`Unavailable` if the block runs longer than ``seconds`` (SIGALRM).

    The alarm is only seen when control returns to Python, so a long native call (an LLVM or
    C compile) overruns until it finishes; it still stops the contender's remaining work.
    """
    if not seconds:
        yield
        return

    def handler(signum, frame):
        raise Unavailable(f"{what} took more than {seconds:g} s (--timeout)")

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def pin_cpus(threads: int) -> list[int] | None:
    """Restrict this process to ``threads`` CPUs (Linux), so no library can use more cores.

    The environment caps of :func:`common.thread_env` do not hold XLA's CPU runtime to one
    thread (JAX reached more than the 1-thread GEMM rate with them); CPU affinity does, for
    every contender alike.
    """
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))[:threads]
    os.sched_setaffinity(0, cpus)
    return cpus


def gemm_rate(np, n: int = 1024) -> dict:
    """``np.dot`` float32 GEMM GFLOP/s on ``n×n @ n×n`` (the machine's matmul ceiling here)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    out = np.empty((n, n), np.float32)
    t = common.median_time(lambda: np.dot(a, b, out=out), repeat=7, min_time=0.2)
    return {"n": n, "gflops": 2 * n**3 / t["median"] / 1e9, "seconds": t["median"]}


def step_flops(sizes, batch) -> int:
    """3 matmul passes (forward, dX, dW) of ``2·batch·fan_in·fan_out`` per layer."""
    return sum(3 * 2 * batch * a * b for a, b in zip(sizes[:-1], sizes[1:]))


# -- contenders ---------------------------------------------------------------------------------
class Problem:
    """One MLP size: data, initial parameters (float32, Xavier from symgrad's MLP builder)."""

    def __init__(self, name: str, np, seed: int = 0):
        from symgrad.runtime import MLP

        self.name = name
        self.sizes, self.batch = SIZES[name]
        self.net = MLP(list(self.sizes), activation="tanh", output="softmax")
        store = self.net.init_params(seed=seed, dtype="float32")
        self.names = [str(p) for p in self.net.params]
        self.init = {k: np.ascontiguousarray(store[k], dtype=np.float32) for k in self.names}
        rng = np.random.default_rng(seed + 1)
        self.X = rng.standard_normal((self.batch, self.sizes[0])).astype(np.float32)
        self.labels = rng.integers(0, self.sizes[-1], self.batch)
        self.Y = np.zeros((self.batch, self.sizes[-1]), np.float32)
        self.Y[np.arange(self.batch), self.labels] = 1

    def fresh(self):
        return {k: v.copy() for k, v in self.init.items()}


class Prepared:
    """``call()`` runs one step; ``check()`` runs one step from the initial parameters and
    returns ``(loss, last weight matrix after the update)`` as NumPy values."""

    def __init__(self, call, check, stmt=None, names=None):
        self.call, self.check = call, check
        self.stmt, self.names = stmt, names


def make_symgrad(pb: Problem, raw: bool) -> Prepared:

    import symgrad as sg
    from symgrad.runtime import SGD

    opt = SGD(lr=LR)
    step = sg.compile_step(pb.net.loss, pb.net.params, opt.rule, "float32")
    hyp = opt.hyper_values()

    def values(params):
        return {**params, "X": pb.X, "Y": pb.Y, **hyp}

    def check():
        p = pb.fresh()
        loss = step(values(p))
        return float(loss), p[pb.names[-2]]

    params = pb.fresh()
    if raw:
        bound = step.bind(values(params))
        bound.warm_up()
        return Prepared(bound, check, "_fn(*_args)", {"_fn": bound.fn, "_args": bound.args})
    vals = values(params)
    step(vals)
    return Prepared(lambda: step(vals), check, "_fn(_v)", {"_fn": step, "_v": vals})


def numpy_step(np):
    def step(params, X, Y, lr):
        Ws = params[0::2]
        bs = params[1::2]
        acts = [X]
        h = X
        for W, b in zip(Ws[:-1], bs[:-1]):
            h = np.tanh(h @ W + b)
            acts.append(h)
        z = h @ Ws[-1] + bs[-1]
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        s = e.sum(axis=1, keepdims=True)
        n = X.shape[0]
        loss = float(-(Y * (z - np.log(s))).sum() / n)
        d = (e / s - Y) * np.float32(1.0 / n)
        for k in range(len(Ws) - 1, -1, -1):
            a = acts[k]
            gW = a.T @ d
            gb = d.sum(axis=0, keepdims=True)
            if k:
                d = (d @ Ws[k].T) * (1 - a * a)
            Ws[k] -= lr * gW
            bs[k] -= lr * gb
        return loss

    return step


def make_numpy(pb: Problem) -> Prepared:
    import numpy as np

    step = numpy_step(np)
    lr = np.float32(LR)
    params = [pb.fresh()[k] for k in pb.names]

    def check():
        p = [pb.fresh()[k] for k in pb.names]
        return step(p, pb.X, pb.Y, lr), p[-2]

    return Prepared(lambda: step(params, pb.X, pb.Y, lr), check)


_NJIT = None


def njit_step():
    """A hand-written 3-layer step: BLAS matmuls via ``np.dot``, loops for the rest."""
    global _NJIT
    if _NJIT is not None:
        return _NJIT
    import numba
    import numpy as np

    @numba.njit(cache=True, fastmath=True)
    def step(W1, b1, W2, b2, W3, b3, X, Y, lr):
        n = X.shape[0]
        h1 = np.tanh(np.dot(X, W1) + b1)
        h2 = np.tanh(np.dot(h1, W2) + b2)
        z = np.dot(h2, W3) + b3
        k = z.shape[1]
        d3 = np.empty_like(z)
        loss = 0.0
        inv = np.float32(1.0 / n)
        for i in range(n):
            m = z[i, 0]
            for j in range(1, k):
                m = max(m, z[i, j])
            s = 0.0
            for j in range(k):
                d3[i, j] = np.exp(z[i, j] - m)
                s += d3[i, j]
            ls = np.log(s)
            for j in range(k):
                loss -= Y[i, j] * (z[i, j] - m - ls)
                d3[i, j] = (d3[i, j] / s - Y[i, j]) * inv
        d2 = np.dot(d3, W3.T) * (1 - h2 * h2)
        d1 = np.dot(d2, W2.T) * (1 - h1 * h1)
        for W, b, a, d in ((W3, b3, h2, d3), (W2, b2, h1, d2), (W1, b1, X, d1)):
            gW = np.dot(a.T, d)
            for i in range(W.shape[0]):
                for j in range(W.shape[1]):
                    W[i, j] -= lr * gW[i, j]
            for j in range(b.shape[1]):
                g = 0.0
                for i in range(n):
                    g += d[i, j]
                b[0, j] -= lr * g
        return loss / n

    _NJIT = step
    return step


def make_njit(pb: Problem) -> Prepared:
    import numpy as np

    if len(pb.sizes) != 4:
        raise Unavailable("the hand-written step has exactly 3 layers")
    step = njit_step()
    lr = np.float32(LR)
    args = [pb.fresh()[k] for k in pb.names] + [pb.X, pb.Y, lr]
    step(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])

    def check():
        p = [pb.fresh()[k] for k in pb.names]
        return float(step(*p, pb.X, pb.Y, lr)), p[-2]

    return Prepared(lambda: step(*args), check, "_fn(*_args)", {"_fn": step, "_args": args})


def _torch_parts(pb: Problem, torch):
    def params():
        return [torch.from_numpy(v).requires_grad_(True) for v in pb.fresh().values()]

    X = torch.from_numpy(pb.X)
    y = torch.from_numpy(pb.labels.astype("int64"))

    def loss_fn(ps, X, y):
        h = X
        for W, b in zip(ps[0:-2:2], ps[1:-2:2]):
            h = torch.tanh(h @ W + b)
        return torch.nn.functional.cross_entropy(h @ ps[-2] + ps[-1], y)

    return params, X, y, loss_fn


def make_torch(pb: Problem, torch, compiled: bool) -> Prepared:
    params, X, y, loss_fn = _torch_parts(pb, torch)
    # torch.compile traces the forward (AOTAutograd compiles its backward too); calling
    # autograd.grad inside the compiled region would only cause a graph break.
    fwd = torch.compile(loss_fn) if compiled else loss_fn

    def fwd_bwd(ps, X, y):
        loss = fwd(ps, X, y)
        return loss, torch.autograd.grad(loss, ps)

    def step(ps):
        loss, grads = fwd_bwd(ps, X, y)
        with torch.no_grad():
            for p, g in zip(ps, grads):
                p.sub_(g, alpha=LR)
        return loss

    def check():
        ps = params()
        loss = step(ps)
        return float(loss.detach()), ps[-2].detach().numpy().copy()

    ps = params()
    for _ in range(3):
        step(ps)
    return Prepared(lambda: step(ps), check)


def make_jax(pb: Problem, jax) -> Prepared:
    jnp = jax.numpy

    def loss_fn(ps, X, Y):
        h = X
        for W, b in zip(ps[0:-2:2], ps[1:-2:2]):
            h = jnp.tanh(h @ W + b)
        z = h @ ps[-2] + ps[-1]
        return -jnp.mean(jnp.sum(Y * jax.nn.log_softmax(z, axis=1), axis=1))

    @jax.jit
    def step(ps, X, Y):
        loss, grads = jax.value_and_grad(loss_fn)(ps, X, Y)
        return loss, [p - LR * g for p, g in zip(ps, grads)]

    X, Y = jnp.asarray(pb.X), jnp.asarray(pb.Y)

    def init():
        return [jnp.asarray(v) for v in pb.fresh().values()]

    state = {"ps": init()}

    def call():
        loss, state["ps"] = step(state["ps"], X, Y)
        loss.block_until_ready()

    def check():
        loss, ps = step(init(), X, Y)
        return float(loss), jax.device_get(ps[-2])

    call()
    return Prepared(call, check)


def make_pytensor(pb: Problem, mode: str) -> Prepared:
    import numpy as np

    pytensor, why = common.try_import("pytensor")
    if pytensor is None:
        raise Unavailable(why)
    import pytensor.tensor as pt

    pytensor.config.floatX = "float32"
    shared = {k: pytensor.shared(v.copy(), name=k, shape=v.shape) for k, v in pb.init.items()}
    ps = [shared[k] for k in pb.names]
    X = pt.matrix("X", dtype="float32")
    Y = pt.matrix("Y", dtype="float32")
    h = X
    for W, b in zip(ps[0:-2:2], ps[1:-2:2]):
        h = pt.tanh(pt.dot(h, W) + b)
    z = pt.dot(h, ps[-2]) + ps[-1]
    z = z - pt.max(z, axis=1, keepdims=True)
    logp = z - pt.log(pt.sum(pt.exp(z), axis=1, keepdims=True))
    loss = -pt.mean(pt.sum(Y * logp, axis=1))
    grads = pytensor.grad(loss, ps)
    lr = np.float32(LR)
    updates = [(p, p - lr * g) for p, g in zip(ps, grads)]
    try:
        fn = pytensor.function([X, Y], loss, updates=updates, mode=mode)
        fn(pb.X, pb.Y)
    except Unavailable:
        raise
    except Exception as exc:
        raise Unavailable(f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}") from exc
    fn.trust_input = True

    def check():
        for k, v in pb.init.items():
            shared[k].set_value(v.copy())
        loss = fn(pb.X, pb.Y)
        return float(np.asarray(loss)), shared[pb.names[-2]].get_value()

    return Prepared(lambda: fn(pb.X, pb.Y), check, "_fn(_X, _Y)",
                    {"_fn": fn, "_X": pb.X, "_Y": pb.Y})  # fmt: skip


def contenders(threads: int):
    """``(label, family, make(problem))`` in table order."""

    def peer(name):
        mod, why = common.try_import(name)
        if mod is None:
            raise Unavailable(why)
        if name == "torch":
            common.pin_torch(mod, threads)
        return mod

    return [
        (BASELINE, "symgrad", lambda pb: make_symgrad(pb, raw=True)),
        ("symgrad step(dict)", "symgrad", lambda pb: make_symgrad(pb, raw=False)),
        ("NumPy by hand", "numpy", make_numpy),
        ("@njit by hand", "numba", make_njit),
        ("PyTorch eager", "torch", lambda pb: make_torch(pb, peer("torch"), False)),
        ("torch.compile", "torch.compile", lambda pb: make_torch(pb, peer("torch"), True)),
        ("JAX jit", "jax", lambda pb: make_jax(pb, peer("jax"))),
        ("PyTensor Numba", "pytensor", lambda pb: make_pytensor(pb, "NUMBA")),
        ("PyTensor C", "pytensor", lambda pb: make_pytensor(pb, "FAST_RUN")),
    ]


# -- child: one thread count --------------------------------------------------------------------
def run_child(args) -> dict:
    threads = args.child
    common.pin_threads(threads)
    cpus = pin_cpus(threads)
    import numpy as np

    result = {"machine": common.machine_info(threads), "gemm": None, "sizes": {}}
    result["machine"]["cpu_affinity"] = cpus
    result["gemm"] = gemm_rate(np, 512 if args.quick else 1024)
    print(f"[{threads} thread(s)] np.dot float32 GEMM {result['gemm']['gflops']:.1f} GFLOP/s",
          file=sys.stderr, flush=True)  # fmt: skip
    repeat = 5 if args.quick else 9
    min_time = 0.05 if args.quick else 0.2
    for size in args.sizes:
        pb = Problem(size, np)
        ref_loss, ref_W = make_numpy(pb).check()
        # The load on a shared machine drifts: measure the GEMM ceiling around each size too.
        gemm_before = gemm_rate(np, 512 if args.quick else 1024)["gflops"]
        rows, runners = {}, {}
        # Build and check every contender, then time them with their loops taking turns
        # (common.interleaved_medians), so drifting load hits every contender alike.
        for label, family, make in contenders(threads):
            if args.only and family not in args.only:
                continue
            t0 = time.perf_counter()
            try:
                with time_limit(args.timeout, f"{label} build"):
                    prep = make(pb)
                    build = time.perf_counter() - t0
                    loss, W = prep.check()
                ok = abs(loss - ref_loss) <= 1e-3 * max(1.0, abs(ref_loss)) and np.allclose(
                    np.asarray(W), ref_W, rtol=1e-3, atol=1e-5
                )
                if not ok:
                    rows[label] = {"status": f"mismatch: loss {loss} vs {ref_loss}"}
                else:
                    rows[label] = {"status": "ok", "family": family, "build_s": build}
                    runners[label] = (prep.stmt, prep.names) if prep.stmt else prep.call
            except Unavailable as exc:
                rows[label] = {"status": f"skipped: {exc}"}
            except Exception as exc:  # a broken peer must not take the other rows down
                msg = str(exc).splitlines()[0][:160] if str(exc) else ""
                rows[label] = {"status": f"error: {type(exc).__name__}: {msg}"}
            print(f"[{threads}] {size:6s} {label:26s} {rows[label]['status']}",
                  file=sys.stderr, flush=True)  # fmt: skip
        times = common.interleaved_medians(runners, repeat=repeat, min_time=min_time)
        for label, t in times.items():
            rows[label].update(t)
        gemm_after = gemm_rate(np, 512 if args.quick else 1024)["gflops"]
        result["sizes"][size] = {
            "gemm_gflops": (gemm_before + gemm_after) / 2,
            "gemm_gflops_before_after": [gemm_before, gemm_after],
            "layers": list(pb.sizes), "batch": pb.batch,
            "flops": step_flops(pb.sizes, pb.batch), "rows": rows,
        }  # fmt: skip
    result["machine"]["loadavg_end"] = common._loadavg()
    return result


# -- compile time -------------------------------------------------------------------------------
_COMPILE_CHILD = r"""
import sys, time, json
t0 = time.perf_counter()
import numpy as np
import symgrad as sg
from symgrad.runtime import MLP, SGD
t1 = time.perf_counter()
sizes, batch = json.loads(sys.argv[1])
net = MLP(sizes, activation="tanh", output="softmax")
opt = SGD(lr=1e-3)
step = sg.compile_step(net.loss, net.params, opt.rule, "float32")
t2 = time.perf_counter()
p = net.init_params(seed=0, dtype="float32")
X = np.zeros((batch, sizes[0]), np.float32)
Y = np.zeros((batch, sizes[-1]), np.float32); Y[:, 0] = 1
step({**p, "X": X, "Y": Y, **opt.hyper_values()})
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "compile_step_s": t2 - t1, "first_call_s": t3 - t2,
                  "total_s": t3 - t1}))
"""


def _compile_once(size: str, threads: int) -> dict:
    """symgrad's step in new processes, one per :data:`common.COMPILE_PHASES` entry."""
    sizes, batch = SIZES[size]
    env = dict(os.environ, **common.thread_env(threads))
    out = {}
    with tempfile.TemporaryDirectory(prefix="symgrad-bench-mlp-") as tmp:
        for kind, phase_env in common.compile_phase_envs(tmp, env):
            proc = subprocess.run([sys.executable, "-c", _COMPILE_CHILD,
                                   json.dumps([list(sizes), batch])],
                                  env=phase_env, capture_output=True, text=True)  # fmt: skip
            if proc.returncode:
                out[kind] = {"error": proc.stderr.strip().splitlines()[-1:]}
            else:
                out[kind] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def compile_times(size: str, threads: int, repeats: int = 1) -> dict:
    """Each compile phase ``repeats`` times (fresh cache folders each time), medians per phase."""
    return common.median_of_runs([_compile_once(size, threads) for _ in range(repeats)])


# -- parent: run children, print tables ---------------------------------------------------------
def fmt_time(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} µs" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


def print_tables(results: dict) -> None:
    for threads, res in results["threads"].items():
        gemm = res["gemm"]["gflops"]
        print(f"\n== {threads} thread(s); np.dot float32 GEMM {gemm:.1f} GFLOP/s "
              f"(n={res['gemm']['n']}); load {res['machine']['loadavg_start']} -> "
              f"{res['machine'].get('loadavg_end')}")  # fmt: skip
        for size, block in res["sizes"].items():
            rows = block["rows"]
            base = rows.get(BASELINE, {}).get("median")
            size_gemm = block.get("gemm_gflops", gemm)
            table = []
            for label, r in rows.items():
                if r["status"] != "ok":
                    table.append([label, r["status"][:70], "", "", ""])
                    continue
                gf = block["flops"] / r["median"] / 1e9
                ratio = f"{r['median'] / base:.2f}x" if base else ""
                table.append([label, fmt_time(r["median"]), ratio, round(gf, 2),
                              f"{100 * gf / size_gemm:.0f}%"])  # fmt: skip
            layers = "-".join(map(str, block["layers"]))
            print(f"\n{size}: MLP {layers}, batch {block['batch']} "
                  f"({block['flops'] / 1e6:.2f} MFLOP/step; GEMM around it "
                  f"{size_gemm:.1f} GFLOP/s)")  # fmt: skip
            print(
                common.format_table(
                    ["contender", "median/step", "vs symgrad", "GFLOP/s", "of GEMM"], table
                )
            )
    if results.get("compile"):
        print("\nsymgrad compile_step + first call, new process (first use = empty model and "
              "kernel caches, cold = empty SYMGRAD_CACHE_DIR with kernels cached, warm = same "
              "folder again); seconds; median of "
              f"{common.compile_runs(results['compile'])} run(s) each")  # fmt: skip
        table = []
        for size, c in results["compile"].items():
            for kind in common.COMPILE_PHASES:
                r = c.get(kind, {})
                if "error" in r:
                    table.append([size, kind, str(r["error"])[:60], "", "", ""])
                else:
                    table.append([size, kind, r["compile_step_s"], r["first_call_s"],
                                  r["total_s"], r["import_s"]])  # fmt: skip
        print(
            common.format_table(
                ["size", "cache", "compile_step", "first call", "total", "import"], table
            )
        )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (1,2)")
    ap.add_argument("--sizes", default="small,medium,large", help="small,medium,large")
    ap.add_argument("--quick", action="store_true", help="fewer repeats; small size by default")
    ap.add_argument("--only", default="", help=f"comma-separated families: {','.join(FAMILIES)}")
    ap.add_argument("--timeout", type=float, default=240.0,
                    help="seconds allowed to build one contender (0: none)")  # fmt: skip
    ap.add_argument("--no-compile", action="store_true", help="skip the compile-time section")
    ap.add_argument(
        "--compile-repeats",
        type=int,
        default=None,
        help="runs of each compile phase, medians reported (default 3; 1 with --quick)",
    )
    ap.add_argument("--out", type=Path, default=common.RESULTS_DIR / "mlp.json")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--child-out", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    sizes_given = any(a.startswith("--sizes") for a in (argv or sys.argv[1:]))
    if args.quick and not sizes_given:
        args.sizes = "small"
    args.sizes = [s for s in args.sizes.split(",") if s]
    bad = [s for s in args.sizes if s not in SIZES]
    if bad:
        ap.error(f"unknown sizes {bad}; use {list(SIZES)}")
    args.only = [f for f in args.only.split(",") if f]

    if args.child is not None:
        res = run_child(args)
        args.child_out.write_text(json.dumps(res, default=common._json_default))
        return 0

    threads = [int(t) for t in args.threads.split(",") if t]
    warn = common.busy_warning()
    if warn:
        print(warn)
    results = {"benchmark": "mlp", "quick": args.quick, "lr": LR, "threads": {}}
    child_args = ["--sizes", ",".join(args.sizes), "--timeout", str(args.timeout)]
    if args.quick:
        child_args.append("--quick")
    if args.only:
        child_args += ["--only", ",".join(args.only)]
    results["threads"] = common.run_thread_children(__file__, threads, child_args)
    if not args.no_compile and (not args.only or "symgrad" in args.only):
        results["compile"] = {}
        repeats = args.compile_repeats or (1 if args.quick else 3)
        for size in args.sizes:
            print(f"[compile] {size} cold+warm ...", file=sys.stderr, flush=True)
            results["compile"][size] = compile_times(size, threads[0], repeats)
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
