"""The same training steps under each BLAS backend, in one process, timed interleaved.

Which backend ``SYMGRAD_BLAS=auto`` should pick depends on the CPU (MKL's GEMM is tuned for
Intel's) and on the OpenBLAS releases NumPy and SciPy bundle, and on these shared machines two
separate runs differ by more than the effect, so this script compiles every step once per
backend in one process (the backend is part of the cache key, so these are different modules)
and alternates their timed loops.

Usage::

    python benchmarks/bench_blas_ab.py                       # MLP small/medium/large, RNN cells
    python benchmarks/bench_blas_ab.py --cases mlp:small rnn:lstm --rounds 21
    python benchmarks/bench_blas_ab.py --backends openblas numpy

Prints the median time per step of each backend (``common.interleaved_medians``) and each
backend's ratio to ``numpy`` (Numba's ``np.dot``; below 1: faster). Backends that are not
installed are left out.
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
    ap.add_argument("--backends", nargs="+", default=["numpy", "openblas", "mkl"],
                    choices=["numpy", "openblas", "mkl"])  # fmt: skip
    args = ap.parse_args(argv)
    common.pin_threads(args.threads)
    from symgrad.codegen import blas_select

    installed = {"numpy": True, "openblas": blas_select.open_numpy_openblas() is not None,
                 "mkl": blas_select.open_mkl() is not None}  # fmt: skip
    backends = ["numpy"] + [b for b in args.backends if b != "numpy" and installed[b]]
    if len(backends) < 2:
        raise SystemExit(f"bench_blas_ab: none of {args.backends} is installed besides numpy")
    print(f"cpu vendor: {blas_select.cpu_vendor()}; {args.threads} thread(s); "
          f"MKL {(blas_select.mkl_version() or 'not installed').strip()}; "
          f"NumPy's {blas_select.openblas_config() or 'OpenBLAS: none'}")  # fmt: skip
    rows = []
    for case in args.cases:
        runners = {}
        for b in backends:
            fn, fargs = build(case, b)
            runners[b] = ("fn(*fargs)", {"fn": fn, "fargs": fargs})
        times = common.interleaved_medians(runners, repeat=args.rounds, min_time=args.min_time)
        med = {b: t["median"] for b, t in times.items()}
        rows.append([case, *(f"{med[b] * 1e3:.3f}" for b in backends),
                     *(f"{med[b] / med['numpy']:.3f}" for b in backends[1:])])  # fmt: skip
        print(f"  {case} done", file=sys.stderr, flush=True)
    header = ["step", *(f"{b} ms" for b in backends), *(f"{b} / numpy" for b in backends[1:])]
    print(common.format_table(header, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
