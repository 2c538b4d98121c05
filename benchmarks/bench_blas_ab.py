"""The same training steps under both BLAS backends, in one process, timed interleaved.

Which backend ``SYMGRAD_BLAS=auto`` should pick depends on the CPU (MKL's GEMM is tuned for
Intel's), and on these shared machines two separate runs differ by more than the effect, so
this script compiles every step twice in one process (once per backend; the backend is part of
the cache key, so the two are different modules) and alternates their timed loops.

Usage::

    python benchmarks/bench_blas_ab.py                       # MLP small/medium/large, RNN cells
    python benchmarks/bench_blas_ab.py --cases mlp:small rnn:lstm --rounds 21

Prints the median time per step of each backend (``common.interleaved_medians``) and the ratio
mkl / numpy (below 1: MKL faster). Needs the ``mkl`` extra.
"""

from __future__ import annotations

import argparse
import os
import sys

import common

CASES = ("mlp:small", "mlp:medium", "mlp:large", "rnn:elman", "rnn:gru", "rnn:lstm")


def build(case: str, backend: str):
    """The raw step function and its arguments, compiled with ``backend``."""
    import numpy as np

    from symgrad.codegen import blas_select, cache

    os.environ["SYMGRAD_BLAS"] = backend
    blas_select.backend.cache_clear()
    cache.library_fingerprint.cache_clear()  # the backend is part of every cache key
    kind, name = case.split(":")
    if kind == "mlp":
        import bench_mlp

        prep = bench_mlp.make_symgrad(bench_mlp.Problem(name, np), raw=True)
    else:
        import bench_rnn

        prep = bench_rnn.make_symgrad(bench_rnn.Problem(name, np), raw=True)
    return prep.names["_fn"], prep.names["_args"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    ap.add_argument("--rounds", type=int, default=15, help="timed loops per backend (median)")
    ap.add_argument("--min-time", type=float, default=0.05, help="seconds per timed loop")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    common.pin_threads(args.threads)
    from symgrad.codegen import blas_select

    if blas_select.open_mkl() is None:
        raise SystemExit("bench_blas_ab: Intel MKL is not installed (pip install 'symgrad[mkl]')")
    print(f"cpu vendor: {blas_select.cpu_vendor()}; {args.threads} thread(s); MKL "
          f"{blas_select.mkl_version().strip()}")  # fmt: skip
    rows = []
    for case in args.cases:
        runners = {}
        for b in ("numpy", "mkl"):
            fn, fargs = build(case, b)
            runners[b] = ("fn(*fargs)", {"fn": fn, "fargs": fargs})
        times = common.interleaved_medians(runners, repeat=args.rounds, min_time=args.min_time)
        med = {b: t["median"] for b, t in times.items()}
        rows.append([case, f"{med['numpy'] * 1e3:.3f}", f"{med['mkl'] * 1e3:.3f}",
                     f"{med['mkl'] / med['numpy']:.3f}"])  # fmt: skip
        print(f"  {case} done", file=sys.stderr, flush=True)
    print(common.format_table(["step", "numpy ms", "mkl ms", "mkl / numpy"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
