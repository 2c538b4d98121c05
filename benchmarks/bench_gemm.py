"""GEMM rates on the products of the training-step benchmarks: which BLAS generated code calls.

Every contender computes ``out = a @ b`` into a preallocated float32 ``out``, as generated code
does, on the shapes of the MLP steps (``bench_mlp.py``: forward products, weight gradients with a
transposed left operand, input gradients with a transposed right one) and of the recurrent steps
(``bench_rnn.py``: the hoisted input projection, the per-step recurrent product and its
gradients) and of the fastText full-softmax step at k = 100, batch 64 (``bench_fasttext.py``).
Contenders, all in this one process:

- ``numpy``: ``np.dot(a, b, out)`` from Python (NumPy's bundled OpenBLAS);
- ``numba np.dot``: the same call inside ``@njit`` (Numba goes through SciPy's OpenBLAS), which is
  what generated code calls without MKL;
- ``symgrad gemm (NumPy's OpenBLAS)`` and ``symgrad gemm (MKL)``: the kernels of
  :func:`symgrad.codegen.blas.gemm` for each library (``cblas_sgemm`` of NumPy's bundled
  OpenBLAS, of Intel MKL when the ``mkl`` extra is installed), what generated code calls under
  ``SYMGRAD_BLAS=openblas`` / ``mkl``;
- ``torch.mm``: PyTorch's CPU matmul (its own MKL or oneDNN), as a reference.

Run ``python benchmarks/bench_gemm.py --threads 1`` (or ``1,2``). Prints GFLOP/s (median of
timeit loops) and writes JSON to ``benchmarks/results/gemm.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    RESULTS_DIR,
    busy_warning,
    format_table,
    machine_info,
    median_time,
    pin_threads,
    run_thread_children,
    try_import,
    write_json,
)

#: (label, m, k, n, transposed operand: "" | "a" | "b")
SHAPES = [
    ("mlp medium  X·W1", 64, 784, 256, ""),
    ("mlp medium  H1·W2", 64, 256, 256, ""),
    ("mlp medium  X^T·δ1", 784, 64, 256, "a"),
    ("mlp medium  δ2·W2^T", 64, 256, 256, "b"),
    ("mlp large   X·W1", 256, 784, 1024, ""),
    ("mlp large   H1·W2", 256, 1024, 1024, ""),
    ("mlp large   H1^T·δ2", 1024, 256, 1024, "a"),
    ("mlp large   δ2·W2^T", 256, 1024, 1024, "b"),
    ("mlp small   X·W1", 16, 64, 32, ""),
    ("rnn X·U (all steps)", 1600, 64, 128, ""),
    ("rnn h·W (one step)", 32, 128, 128, ""),
    ("rnn h^T·δ (one step)", 128, 32, 128, "a"),
    ("rnn δ·W^T (one step)", 32, 128, 128, "b"),
    ("rnn h·V (output)", 32, 128, 64, ""),
    ("fasttext k=100 h·W", 64, 50, 100, ""),
    ("fasttext k=100 δ·W^T", 64, 100, 50, "b"),
    ("fasttext k=100 h^T·δ", 50, 64, 100, "a"),
]


def operands(np, m: int, k: int, n: int, transposed: str, seed: int = 0):
    """float32 ``a (m, k)``, ``b (k, n)`` and ``out``; a transposed operand is a ``.T`` view."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if transposed == "a" else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if transposed == "b" else (k, n)).astype(np.float32)
    a = a.T if transposed == "a" else a
    b = b.T if transposed == "b" else b
    return a, b, np.empty((m, n), np.float32)


def contenders(np, threads: int) -> dict:
    """``name -> callable(a, b, out)`` or the reason it is missing."""
    from numba import njit

    from symgrad.codegen import blas

    @njit(nogil=True)
    def numba_dot(a, b, out):
        np.dot(a, b, out)

    found = {"numpy": lambda a, b, out: np.dot(a, b, out), "numba np.dot": numba_dot}
    # symgrad's gemm kernels per library, installed whichever backend auto picked; the kernel
    # for each shape's layouts is looked up before timing (what a gemm call site compiles to).
    missing = {"mkl": "MKL not installed (pip install 'symgrad[mkl]')",
               "openblas": "NumPy bundles no OpenBLAS"}  # fmt: skip
    for library, label in (("openblas", "symgrad gemm (NumPy's OpenBLAS)"),
                           ("mkl", "symgrad gemm (MKL)")):  # fmt: skip
        found[label] = ("kernel", library) if blas.register_gemm(library) else missing[library]
    torch, why = try_import("torch")
    if torch is None:
        found["torch.mm"] = why
    else:
        from common import pin_torch

        pin_torch(torch, threads)

        def torch_mm(a, b, out, _mm=torch.mm, _t=torch.from_numpy):
            _mm(_t(a), _t(b), out=_t(out))

        found["torch.mm"] = torch_mm
    return found


def run_child(threads: int) -> dict:
    pin_threads(threads)
    import numba
    import numpy as np

    from symgrad.codegen import blas

    found = contenders(np, threads)
    rows = []
    for label, m, k, n, transposed in SHAPES:
        a, b, out = operands(np, m, k, n, transposed)
        expect = a.astype(np.float64) @ b
        row = {"shape": label, "mkn": [m, k, n], "gflops": {}}
        for name, fn in found.items():
            if isinstance(fn, str):
                row["gflops"][name] = None
                continue
            if isinstance(fn, tuple):
                fn = blas.gemm_kernel(fn[1], *map(numba.typeof, (a, b, out)))
            fn(a, b, out)
            if not np.allclose(out, expect, rtol=1e-3, atol=1e-3 * k**0.5):
                raise AssertionError(f"{name} gives a wrong product for {label}")
            env = {"fn": fn, "a": a, "b": b, "out": out}
            t = median_time("fn(a, b, out)", env, repeat=9, min_time=0.05)
            row["gflops"][name] = 2 * m * k * n / t["median"] / 1e9
        rows.append(row)
    missing = {k: v for k, v in found.items() if isinstance(v, str)}
    return {
        "machine": machine_info(threads),
        "blas_backend": blas.backend(),
        "mkl": blas.mkl_version(),
        "numpy_openblas": blas.openblas_config(),
        "cpu_vendor": blas.cpu_vendor(),
        "missing": missing,
        "rows": rows,
    }


def print_table(result: dict) -> None:
    names = list(result["rows"][0]["gflops"])
    print(f"\n{result['machine']['threads']} thread(s), GFLOP/s (float32, median):")
    table = []
    for row in result["rows"]:
        m, k, n = row["mkn"]
        cells = [row["gflops"][name] for name in names]
        table.append([row["shape"], f"{m}x{k}x{n}", *(c if c is not None else "-" for c in cells)])
    print(format_table(["product", "m x k x n", *names], table))
    for name, why in result["missing"].items():
        print(f"  {name}: {why}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1", help="comma-separated thread counts (1,2)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "gemm.json")
    args = parser.parse_args(argv)
    if args.child is not None:
        write_json(args.child_out, run_child(args.child))
        return 0
    warning = busy_warning()
    if warning:
        print(warning)
    threads = [int(t) for t in args.threads.split(",")]
    results = run_thread_children(__file__, threads, [])
    for result in results.values():
        print_table(result)
    print(f"wrote {write_json(args.out, results)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
