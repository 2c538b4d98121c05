"""Per-element cost of the ``symgrad.codegen.fastmath`` kernels against NumPy and ``math.*`` loops.

For float32 and float64 and ``n = 1_000_000`` elements, times (median of ``--repeats`` runs, the
contenders interleaved so that background load hits them alike):

* ``numpy``: NumPy's ufunc writing into a preallocated array (``scipy.special.expit`` for the
  sigmoid, ``np.logaddexp(0, x)`` for the softplus, as NumPy has no ufunc for them);
* ``math loop``: an ``@njit`` loop calling ``math.<fn>`` (a scalar libm call per element, since
  pip's llvmlite has no SVML);
* ``fast loop``: the same loop calling ``fast_<fn>``.

It also reports whether LLVM vectorised each fast loop (packed arithmetic on ymm/zmm registers in
the machine code). Prints a table and writes ``benchmarks/results/fastmath.json``.

Run from the repository root: ``python benchmarks/bench_fastmath.py`` (``--quick`` for a smoke run).
"""

# ruff: noqa: E402  (the thread pools must be pinned before NumPy and Numba are imported)

from __future__ import annotations

import os

# Pin every thread pool before NumPy/Numba load: these machines have 2 shared cores.
for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import json
import math
import platform
import re
import time
from pathlib import Path

import numba
import numpy as np
from numba import njit

from symgrad.codegen import fastmath as fm

try:
    from scipy.special import expit as _expit
except ImportError:  # scipy is a dependency; keep the script usable without it anyway
    _expit = None

RESULTS = Path(__file__).resolve().parent / "results" / "fastmath.json"


@njit
def _math_sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


@njit
def _math_softplus(x):
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _loop(fn):
    """An elementwise ``@njit`` loop over ``fn``, shaped like symgrad's generated kernels."""

    @njit(fastmath=False)
    def kernel(x, out):
        for i in range(x.shape[0]):
            out[i] = fn(x[i])

    return kernel


def _np_sigmoid(x, out):
    if _expit is not None:
        return _expit(x, out=out)
    np.negative(x, out=out)
    np.exp(out, out=out)
    out += 1
    return np.reciprocal(out, out=out)


# name -> (numpy(x, out), math scalar function, fast scalar function, input sampler(rng, n))
CASES = {
    "exp": (np.exp, math.exp, fm.fast_exp, lambda rng, n: rng.uniform(-10.0, 10.0, n)),
    "expm1": (np.expm1, math.expm1, fm.fast_expm1, lambda rng, n: rng.uniform(-10.0, 10.0, n)),
    "log": (np.log, math.log, fm.fast_log, lambda rng, n: rng.uniform(0.01, 100.0, n)),
    "log1p": (np.log1p, math.log1p, fm.fast_log1p, lambda rng, n: rng.uniform(-0.99, 100.0, n)),
    "tanh": (np.tanh, math.tanh, fm.fast_tanh, lambda rng, n: rng.uniform(-5.0, 5.0, n)),
    "sigmoid": (
        _np_sigmoid,
        _math_sigmoid,
        fm.fast_sigmoid,
        lambda rng, n: rng.uniform(-10.0, 10.0, n),
    ),
    "softplus": (
        lambda x, out: np.logaddexp(0, x, out=out),
        _math_softplus,
        fm.fast_softplus,
        lambda rng, n: rng.uniform(-10.0, 10.0, n),
    ),
}

_PACKED = re.compile(r"\bv(?:fmadd\d+|fnmadd\d+|fmsub\d+|mul|add|div)p[sd]\s+%[yz]mm")


def _vectorised(kernel):
    """True if the compiled loop does packed float arithmetic on 256/512-bit registers."""
    return any(_PACKED.search(asm) for asm in kernel.inspect_asm().values())


def _load():
    """1-minute load average (nan where the OS has none)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return float("nan")


def _median_ns(times, n):
    return float(np.median(times)) / n * 1e9


def run(n, repeats, names):
    rng = np.random.default_rng(20240601)
    rows = []
    for name in names:
        np_fn, math_fn, fast_fn, sample = CASES[name]
        math_loop, fast_loop = _loop(math_fn), _loop(fast_fn)
        for dtype in (np.float32, np.float64):
            x = sample(rng, n).astype(dtype)
            out = np.empty_like(x)
            contenders = {"numpy": np_fn, "math_loop": math_loop, "fast_loop": fast_loop}
            for call in contenders.values():  # compile and warm caches
                call(x, out)
            times = {key: [] for key in contenders}
            for _ in range(repeats):
                for key, call in contenders.items():
                    start = time.perf_counter()
                    call(x, out)
                    times[key].append(time.perf_counter() - start)
            row = {"function": name, "dtype": np.dtype(dtype).name}
            row.update({f"{key}_ns": _median_ns(t, n) for key, t in times.items()})
            # The minimum is less sensitive to other processes on a shared machine.
            row.update({f"{key}_min_ns": min(t) / n * 1e9 for key, t in times.items()})
            row["fast_vectorised"] = _vectorised(fast_loop)
            row["math_vectorised"] = _vectorised(math_loop)
            rows.append(row)
            print(
                f"{name:9s} {row['dtype']:8s} {row['numpy_ns']:8.2f} {row['math_loop_ns']:10.2f}"
                f" {row['fast_loop_ns']:10.2f}   {'yes' if row['fast_vectorised'] else 'NO'}",
                flush=True,
            )
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=25)
    parser.add_argument("--quick", action="store_true", help="n=100000, 5 repeats, no JSON")
    parser.add_argument("--only", nargs="*", choices=sorted(CASES), default=list(CASES))
    args = parser.parse_args()
    n, repeats = (100_000, 5) if args.quick else (args.n, max(args.repeats, 20))

    load_start = _load()
    print(f"ns per element, median of {repeats} runs, n = {n}, 1 thread")
    print(f"{'function':9s} {'dtype':8s} {'numpy':>8s} {'math loop':>10s} {'fast loop':>10s}   vec")
    rows = run(n, repeats, args.only)
    load_end = _load()
    busy = max(load_start, load_end) > 0.5 * (os.cpu_count() or 1)
    if busy:
        print(
            f"warning: load average {load_start:.1f} -> {load_end:.1f} on {os.cpu_count()} CPUs;"
            " other processes shared the CPUs, trust the ratios more than the absolute times"
        )
    if args.quick:
        return
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "n": n,
        "repeats": repeats,
        "statistic": "median ns per element (*_min_ns: minimum)",
        "threads": 1,
        "numpy": np.__version__,
        "numba": numba.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cpu_count": os.cpu_count(),
        "loadavg_start": load_start,
        "loadavg_end": load_end,
        "busy_machine": busy,
    }
    RESULTS.write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
