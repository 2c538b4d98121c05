"""word2vec training-speed benchmark: symgrad's compiled SGD step against a hand-written NumPy
step of the same objective and update (issue 5: the goal is ≥ 10× NumPy's speed).

Both contenders are those of ``examples/word2vec.py`` (skip-gram and CBOW with negative
sampling, unigram^0.75 negatives, subsampling, dynamic windows, linear learning-rate decay):
symgrad's step bound once and called with each batch (``CompiledStep``), symgrad's public
checked call ``step(dict)``, and the NumPy reference of ``examples/word2vec_numpy.py`` (gathers,
``einsum``, ``np.add.at`` on the touched rows). They run the same loop over the same examples of
one epoch of the text, from the same tables, with the same learning rates; the repeats of the
contenders are interleaved so they share the machine's load, and the medians are reported. After
the first repeat the tables of every contender are compared with NumPy's.

Speeds are examples per second (an example is a (center, context) pair for skip-gram, a center
with its context bag for CBOW) and words per second: in-vocabulary words of the text, before
subsampling, per second (word2vec's own measure), i.e. examples/s × the epoch's words per example.

Run ``python benchmarks/bench_word2vec.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import common

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "examples"
CONTENDERS = ("symgrad", "symgrad step(dict)", "numpy")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small smoke run")
    p.add_argument("--models", default="skipgram,cbow")
    p.add_argument("--batches", default="1,16,256", help="batch sizes (1: word2vec's own)")
    p.add_argument("--examples", type=int, help="examples per timed run (default 32768)")
    p.add_argument("--repeat", type=int, help="timed runs per contender (default 5)")
    p.add_argument("--words", type=int, default=100_000, help="words of the text used")
    p.add_argument("--text", help="a UTF-8 text file (default: tinyshakespeare.txt)")
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--window", type=int, default=5)
    p.add_argument("--negatives", type=int, default=5)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--threads", type=int, default=1, help="thread cap for every contender")
    p.add_argument("--output", help="JSON path (default benchmarks/results/word2vec.json)")
    args = p.parse_args(argv)
    quick = args.quick
    args.examples = args.examples or (2048 if quick else 32768)
    args.repeat = args.repeat or (2 if quick else 5)
    if quick:
        args.words = min(args.words, 20_000)
    return args


def checked_call(step):
    """symgrad's public call (every input named, converted and checked), with the example's
    step signature."""

    def run(E_in, E_out, inputs, weights, targets, signs, lr):
        values = {"E_in": E_in, "E_out": E_out, "inputs": inputs, "targets": targets,
                  "signs": signs, "opt:lr": lr}  # fmt: skip
        if weights is not None:
            values["weights"] = weights
        return float(step.step(values))

    return run


def bench_model(w2v, np, corpus, model: str, args) -> list[dict]:
    """Rows of every batch size and contender for one model."""
    K = args.negatives
    data = corpus.epoch(model, args.window, K, args.dtype)
    words_per_example = data["words"] / len(data["targets"])
    start = w2v.init_tables(len(corpus.vocab), args.dim, seed=0, dtype=args.dtype)
    t0 = time.perf_counter()
    step = w2v.CompiledStep(model, args.window, K, args.dtype)
    build = time.perf_counter() - t0
    signs = np.ones((max(args.batches), 1 + K), dtype=args.dtype)
    signs[:, 1:] = -1.0
    count = min(len(data["targets"]), args.examples)
    # The first pass compiles (or loads) the machine code and trains the start tables a little,
    # so the timed steps do not all see word2vec's zero output vectors.
    t0 = time.perf_counter()
    w2v.run_batches(step, start, data, signs, 0, count, max(args.batches), _decay(0.025, count))
    first_call = time.perf_counter() - t0
    steps = {
        "symgrad": step,
        "symgrad step(dict)": checked_call(step),
        "numpy": w2v.numpy_step(model),
    }
    rows = []
    for batch in args.batches:
        n_examples = count - count % batch if count >= batch else count
        lr_at = _decay(0.025, n_examples)
        tables = {name: [t.copy() for t in start] for name in steps}
        seconds = {name: [] for name in steps}
        for r in range(args.repeat):
            for name, fn in steps.items():
                for t, s in zip(tables[name], start):
                    np.copyto(t, s)  # in place: the bound symgrad step keeps its arrays
                t0 = time.perf_counter()
                w2v.run_batches(fn, tables[name], data, signs, 0, n_examples, batch, lr_at)
                seconds[name].append(time.perf_counter() - t0)
            if r == 0:
                # Every contender against NumPy after the same steps, and how far the steps
                # moved the tables (the scale those differences are to be read against).
                moved = _max_abs_diff(tables["numpy"], start)
                diffs = {name: _max_abs_diff(tables[name], tables["numpy"]) for name in steps}
        numpy_median = statistics.median(seconds["numpy"])
        for name in steps:
            median = statistics.median(seconds[name])
            rows.append({
                "model": model, "batch": batch, "contender": name, "examples": n_examples,
                "median_s": median, "min_s": min(seconds[name]), "max_s": max(seconds[name]),
                "repeat": args.repeat, "examples_per_s": n_examples / median,
                "words_per_s": n_examples * words_per_example / median,
                "speedup_vs_numpy": numpy_median / median,
                "max_abs_diff_vs_numpy": diffs[name], "max_abs_update": moved,
            })  # fmt: skip
    for row in rows:
        row.update(step_build_s=build, first_call_s=first_call,
                   words_per_example=words_per_example)  # fmt: skip
    return rows


def _decay(lr: float, examples: int):
    """word2vec's linear decay of the per-example rate over ``examples``."""
    return lambda k: lr * max(1e-4, 1.0 - k / examples)


def _max_abs_diff(tables, others) -> float:
    return max(float(abs(a - b).max()) for a, b in zip(tables, others))


def main(argv=None) -> dict:
    args = parse_args(argv)
    thread_env = common.pin_threads(args.threads)
    from bench_mlp import pin_cpus

    cpus = pin_cpus(args.threads)
    sys.path.insert(0, str(EXAMPLES))
    import numpy as np
    import word2vec as w2v

    from symgrad.runtime.text import data_dir

    args.batches = [int(b) for b in args.batches.split(",")]
    path = Path(args.text) if args.text else data_dir() / "tinyshakespeare.txt"
    words, segments = w2v.load_words(path, args.words)
    corpus = w2v.Corpus(words, segments, min_count=5, sample=1e-3, seed=0)
    print(f"{path}: {len(words):,} words, vocabulary {len(corpus.vocab):,}; d = {args.dim}, "
          f"window {args.window}, {args.negatives} negatives, {args.dtype}, "
          f"{args.threads} thread(s), CPUs {cpus}")  # fmt: skip
    warning = common.busy_warning()
    if warning:
        print(warning)
    machine = common.machine_info(args.threads)
    rows = []
    for model in args.models.split(","):
        rows += bench_model(w2v, np, corpus, model, args)
    table = [
        (r["model"], r["batch"], r["contender"], r["examples_per_s"], r["words_per_s"],
         f"{r['speedup_vs_numpy']:.2f}x", f"{r['max_abs_diff_vs_numpy']:.1e}")
        for r in rows
    ]  # fmt: skip
    headers = ("model", "batch", "contender", "examples/s", "words/s", "vs numpy", "max diff")
    print(common.format_table(headers, table))
    compile_rows = {r["model"]: (r["step_build_s"], r["first_call_s"]) for r in rows}
    for model, (build, first) in compile_rows.items():
        print(f"{model}: step built in {build:.2f} s, first pass (Numba compile or cache load "
              f"+ {args.examples} examples) {first:.2f} s")  # fmt: skip
    payload = {
        "benchmark": "word2vec",
        "schema": 1,
        "quick": args.quick,
        "thread_env": thread_env,
        "cpus": cpus,
        "machine": machine,
        "config": {k: v for k, v in vars(args).items() if k not in ("output",)},
        "vocab_size": len(corpus.vocab),
        "text_words": len(words),
        "rows": rows,
    }
    out = Path(args.output) if args.output else common.RESULTS_DIR / "word2vec.json"
    print(f"results: {common.write_json(out, payload)}")
    return payload


if __name__ == "__main__":
    main()
