"""fastText training-step benchmark: symgrad's compiled step against the same step in NumPy.

The model and data are those of ``examples/fasttext_classify.py``: lines of the ``k`` most
frequent tiny-Shakespeare speakers as bags of word and hashed-bigram ids, averaged embedding
rows (``dim`` 50, vocabulary + 65,536 bucket rows), then a full softmax or a hierarchical
softmax over a Huffman tree of the speakers. One step = forward + backward + SGD update, float32,
with row-sparse updates of the tables. Contenders:

``symgrad step (raw Numba)``  ``compile_step`` bound once to its arguments (the positional list
                              built up front, one list per prepared batch): the ratio baseline;
``symgrad step(dict)``        the public call, which checks every input on every call;
``NumPy (hand-written)``      ``examples/fasttext_numpy.py``: the same objective and update with
                              ``np.add.at`` scatter-adds into the touched rows.

Each timed pass runs every contender over the same prepared batches (real lines, so the bag
widths vary as in training); examples/s = lines per pass / median seconds per pass. Passes of
the contenders are interleaved, so load that drifts hits every row alike. Before timing, each
symgrad row's loss and updated parameters after one step from the same parameters as NumPy's
must agree with NumPy's (float32 tolerances); a disagreement is a ``mismatch`` row.

Run ``python benchmarks/bench_fasttext.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

import common

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
BASELINE = "symgrad step (raw Numba)"
NUMPY = "NumPy (hand-written)"
CONTENDERS = (BASELINE, "symgrad step(dict)", NUMPY)
LR = 0.05  # small enough that many timed passes over the same batches stay finite


def load_example(name: str):
    """Import ``examples/<name>.py`` (the examples folder is not a package)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it runs
    spec.loader.exec_module(module)
    return module


def bind(step, values: dict):
    """The step's raw Numba function and positional arguments, checked once."""
    bound = step.bind(values)
    return bound.fn, bound.args


class Case:
    """One (k, softmax kind, batch size): parameters per contender and the prepared batches."""

    def __init__(self, np, fc, ref, task, kind, step, batch, args):
        self.np, self.kind, self.step, self.ref = np, kind, step, ref
        rng = np.random.default_rng(args.seed)
        self.model = fc.Classifier(kind, step, task, args.dim, "float32", args.seed)
        # Random output weights (fastText starts them at 0): a zero W or U makes the first
        # step's table gradient zero, and the check below would then compare nothing.
        for name in ("W", "U"):
            if name in self.model.params:
                shape = self.model.params[name].shape
                self.model.params[name][:] = rng.normal(0.0, 0.5, shape)
        order = rng.permutation(len(task.train_labels))
        self.batches = []
        for j in range(args.batches):
            rows = order[(j * batch + np.arange(batch)) % len(order)]
            inputs = self.model.batch_inputs(
                [task.train_bags[i] for i in rows], task.train_labels[rows]
            )
            inputs["labels"] = task.train_labels[rows]
            self.batches.append(inputs)
        self.hyper = {"opt:lr": LR}

    def fresh_params(self) -> dict:
        return {name: a.copy() for name, a in self.model.params.items()}

    def step_inputs(self, params, inputs) -> dict:
        data = {k: v for k, v in inputs.items() if k != "labels"}
        return {**params, **data, **self.hyper}

    def numpy_step(self, params, b) -> float:
        if self.kind == "full":
            return self.ref.full_softmax_step(
                params["E"], params["W"], params["b"], b["ids"], b["bag_w"], b["labels"], LR
            )
        return self.ref.hierarchical_softmax_step(
            params["E"], params["U"], b["ids"], b["bag_w"], b["paths"], b["signs"], LR
        )

    def runners(self) -> dict:
        """A zero-argument pass over all batches per contender, each with its own parameters."""
        raw_params, dict_params, numpy_params = (self.fresh_params() for _ in range(3))
        raw = [bind(self.step, self.step_inputs(raw_params, b)) for b in self.batches]
        calls = [self.step_inputs(dict_params, b) for b in self.batches]
        step, numpy_step, batches = self.step, self.numpy_step, self.batches

        def raw_pass():
            for fn, positional in raw:
                fn(*positional)

        def dict_pass():
            for values in calls:
                step(values)

        def numpy_pass():
            for b in batches:
                numpy_step(numpy_params, b)

        return dict(zip(CONTENDERS, (raw_pass, dict_pass, numpy_pass)))

    def check(self) -> dict[str, str]:
        """One step from the same parameters: each symgrad row against NumPy's."""
        np = self.np
        first = self.batches[0]
        want_params = self.fresh_params()
        want_loss = self.numpy_step(want_params, first)
        status = {NUMPY: "ok"}
        for contender in CONTENDERS[:2]:
            params = self.fresh_params()
            values = self.step_inputs(params, first)
            if contender == BASELINE:
                fn, positional = bind(self.step, values)
                loss = fn(*positional)
            else:
                loss = self.step(values)
            problems = []
            if not np.isclose(float(loss), want_loss, rtol=1e-4, atol=1e-6):
                problems.append(f"loss {float(loss):.6g} vs {want_loss:.6g}")
            for name, want in want_params.items():
                moved = np.abs(want - self.model.params[name]).max()
                err = np.abs(params[name] - want).max()
                # NumPy rounds after every row update of np.add.at: allow a few ulps of |p|.
                if not err <= 1e-3 * moved + 1e-6 * max(1.0, float(np.abs(want).max())):
                    problems.append(f"{name} off by {err:.2g} (step moved it {moved:.2g})")
            status[contender] = "ok" if not problems else "mismatch: " + "; ".join(problems)
        return status


def pin_cpus(threads: int) -> list[int] | None:
    """Restrict this process to ``threads`` CPUs (Linux), as ``bench_mlp.py`` does."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))[:threads]
    os.sched_setaffinity(0, cpus)
    return cpus


def run(args) -> dict:
    import numpy as np

    import symgrad as sg
    from symgrad.runtime.optimizers import SGD
    from symgrad.runtime.plays import SHAKESPEARE_FILE, read_speeches
    from symgrad.runtime.text import data_dir

    fc, ref = load_example("fasttext_classify"), load_example("fasttext_numpy")
    path = Path(args.text) if args.text else data_dir() / SHAKESPEARE_FILE
    if not path.exists():
        raise SystemExit(f"bench_fasttext: no text at {path} (pass --text PATH)")
    speeches = read_speeches(path)
    steps = {}
    for kind in args.softmax:
        loss, params = fc.loss_and_params(kind)
        t0 = time.perf_counter()
        step = sg.compile_step(loss, params, SGD(lr=LR).rule, dtype="float32")
        steps[kind] = (step, {"compile_step_s": time.perf_counter() - t0})
    rows = []
    for k in args.k:
        task = fc.load_task(speeches, k, None, args.buckets, 1, args.seed)
        for batch in args.batch:
            for kind in args.softmax:
                step, build = steps[kind]
                case = Case(np, fc, ref, task, kind, step, batch, args)
                if "first_call_s" not in build:  # Numba compiles (or loads) on the first call
                    fn, positional = bind(
                        step, case.step_inputs(case.fresh_params(), case.batches[0])
                    )
                    t0 = time.perf_counter()
                    fn(*positional)
                    build["first_call_s"] = time.perf_counter() - t0
                status = case.check()
                runners = {c: r for c, r in case.runners().items() if status[c] == "ok"}
                print(
                    f"[k={k} batch={batch} {kind}] timing {len(runners)} contenders ...",
                    file=sys.stderr,
                    flush=True,
                )
                times = common.interleaved_medians(
                    runners, repeat=args.repeat, min_time=args.min_time
                )
                lines = batch * args.batches
                numpy_s = times.get(NUMPY, {}).get("median")
                for contender in CONTENDERS:
                    row = {
                        "k": len(task.speakers),
                        "batch": batch,
                        "softmax": kind,
                        "contender": contender,
                        "status": status[contender],
                    }
                    if contender in times:
                        t = times[contender]
                        row.update(
                            seconds_per_pass=t["median"],
                            min_s=t["min"],
                            max_s=t["max"],
                            number=t["number"],
                            repeat=t["repeat"],
                            lines_per_pass=lines,
                            examples_per_s=lines / t["median"],
                            numpy_time_ratio=numpy_s / t["median"] if numpy_s else None,
                        )
                    rows.append(row)
    return {"rows": rows, "build": {kind: b for kind, (_, b) in steps.items()}}


def print_table(result: dict) -> None:
    table = []
    for r in result["rows"]:
        ok = r["status"] == "ok"
        table.append(
            [
                r["k"],
                r["batch"],
                r["softmax"],
                r["contender"],
                r["examples_per_s"] if ok else r["status"],
                r["seconds_per_pass"] / r["lines_per_pass"] * 1e6 if ok else None,
                f"{r['numpy_time_ratio']:.1f}x" if ok else None,
            ]
        )
    headers = ["k", "batch", "softmax", "contender", "examples/s", "µs/example", "vs NumPy"]
    print(common.format_table(headers, table))
    for kind, b in result["build"].items():
        print(
            f"{kind}: compile_step {b['compile_step_s']:.1f} s, first call "
            f"{b.get('first_call_s', float('nan')):.1f} s"
        )


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--quick", action="store_true", help="k=10 only, 8 batches per pass, 3 repeats: a smoke run"
    )
    p.add_argument("--k", type=int, nargs="+", default=None, help="speakers (default 10 100)")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 64], help="batch sizes")
    p.add_argument(
        "--softmax", nargs="+", choices=("full", "hierarchical"), default=["full", "hierarchical"]
    )
    p.add_argument("--batches", type=int, default=None, help="batches per timed pass (32)")
    p.add_argument("--repeat", type=int, default=None, help="timed passes per contender (7)")
    p.add_argument("--min-time", type=float, default=None, help="seconds per timed loop (0.2)")
    p.add_argument("--dim", type=int, default=50)
    p.add_argument("--buckets", type=int, default=2**16)
    p.add_argument("--threads", type=int, default=1, help="thread cap for every library")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--text", help="a play text (default: tiny Shakespeare in data_dir())")
    p.add_argument("--out", type=Path, default=common.RESULTS_DIR / "fasttext.json")
    args = p.parse_args(argv)
    quick = args.quick
    args.k = args.k or ([10] if quick else [10, 100])
    args.batches = args.batches or (8 if quick else 32)
    args.repeat = args.repeat or (3 if quick else 7)
    args.min_time = args.min_time if args.min_time is not None else (0.02 if quick else 0.2)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    # Before any numeric import: thread pools are sized once, when their library loads.
    env = common.pin_threads(args.threads)
    cpus = pin_cpus(args.threads)
    warn = common.busy_warning()
    if warn:
        print(warn)
    result = {
        "benchmark": "fasttext",
        "quick": args.quick,
        "thread_env": env,
        "machine": dict(common.machine_info(args.threads), cpu_affinity=cpus),
        "config": {
            "dim": args.dim,
            "buckets": args.buckets,
            "batches_per_pass": args.batches,
            "lr": LR,
            "dtype": "float32",
            "optimizer": "SGD",
            "seed": args.seed,
        },
    }
    result.update(run(args))
    print_table(result)
    warn = common.busy_warning()
    if warn:
        print("\n" + warn)
    path = common.write_json(args.out, result)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
