"""Handwritten digits with a one-hidden-layer MLP written as SymPy math, beside scikit-learn.

The data is scikit-learn's ``load_digits`` (1,797 8×8 images that ship inside the package), split
80/20 (stratified, seeded) and standardised with the training set's statistics. symgrad trains
``MLP([64, 256, 10])`` (ReLU hidden layer, softmax cross-entropy, L2) with Adam: one compiled call
per step, a progress bar, validation on the held-out 20 % after every epoch and a plot of the
curves. Then scikit-learn's ``MLPClassifier`` runs the same recipe (hidden size, activation,
Glorot-uniform initialisation of weights and biases, Adam, learning rate, L2, batch size, epochs,
a new shuffle every epoch) for comparison. BLAS is pinned to one thread for both.

One run cannot tell the two apart (a test image is 0.28 %), so both train over ``--seeds`` seeds,
each with its own split, initialisation and batch order, and the script reports the mean ± standard
deviation of the test accuracy and the median wall time of each. The first seed's run is shown in
full and plotted.

Run ``python examples/mlp_digits.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from symgrad.runtime import MLP, Adam, Trainer, plot_history

DEFAULT_PLOT = Path(tempfile.gettempdir()) / "symgrad-examples" / "mlp_digits.png"
#: Seeds trained by default: enough for a mean ± std, few enough for ``make demo``.
DEFAULT_SEEDS = 5


def load_split(seed: int = 0):
    """Digits split 80/20 (stratified, seeded), standardised by the training statistics."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, random_state=seed, stratify=y
    )
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def glorot_uniform_biases(trainer: Trainer, seed: int) -> None:
    """Draw every bias of the trainer's MLP from its layer's Glorot-uniform range.

    scikit-learn initialises the intercepts like the weights, ``U(−a, a)`` with
    ``a = √(6 / (fan_in + fan_out))`` (for ReLU and tanh); symgrad's MLP starts biases at zero.
    """
    model, rng = trainer.model, np.random.default_rng([seed, 2])
    for b, fan_in, fan_out in zip(model.biases, model.sizes[:-1], model.sizes[1:]):
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        trainer.params.set(b.name, rng.uniform(-bound, bound, size=(1, fan_out)))


def make_trainer(args, seed: int, progress: bool = False) -> Trainer:
    """symgrad's side of the recipe, seeded by ``seed`` (initialisation and batch order)."""
    model = MLP([64, args.hidden, 10], activation=args.activation, output="softmax", l2=args.l2)
    trainer = Trainer(
        model,
        # β₁ 0.9, β₂ 0.999, ε 1e-8 like scikit-learn, which adds ε to √v where symgrad adds it
        # to the bias-corrected √v̂ (a difference only while √v̂ is ~1e-7 or less).
        Adam(lr=args.lr),
        batch_size=args.batch_size,  # a new shuffle every epoch; the last batch is the remainder
        dtype=args.dtype,
        init="xavier_uniform",  # Glorot-uniform weights, like scikit-learn ...
        seed=seed,
        progress=progress,
    )
    glorot_uniform_biases(trainer, seed)  # ... and biases
    return trainer


def make_classifier(args, seed: int):
    """scikit-learn's side of the recipe, seeded by ``seed``."""
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(
        hidden_layer_sizes=(args.hidden,),
        activation=args.activation,
        solver="adam",
        # scikit-learn adds alpha/2·‖W‖² divided by the rows of the batch; symgrad's MLP adds
        # l2/2·‖W‖². They agree on every full batch; on the last, smaller batch of an epoch (29
        # rows with the defaults) scikit-learn's penalty is 32/29 times as strong.
        alpha=args.l2 * args.batch_size,
        batch_size=args.batch_size,
        learning_rate_init=args.lr,
        max_iter=args.epochs,
        shuffle=True,
        random_state=seed,
        tol=0.0,  # run every epoch, like symgrad
        n_iter_no_change=args.epochs + 1,
    )


def run_symgrad(data, args, seed: int | None = None, *, validation: bool = True, progress=None):
    """Train symgrad's MLP on one split: test accuracy, wall time of ``fit`` and its parts."""
    X_train, X_test, y_train, y_test = data
    seed = args.seed if seed is None else seed
    progress = not args.no_progress if progress is None else progress
    trainer = make_trainer(args, seed, progress)
    t0 = time.perf_counter()
    history = trainer.fit(
        X_train,
        y_train,
        epochs=args.epochs,
        validation_data=(X_test, y_test) if validation else None,
    )
    wall = time.perf_counter() - t0
    accuracy = float(np.mean(trainer.predict(X_test) == y_test))
    return {
        "accuracy": accuracy,
        "wall": wall,
        "compile": trainer.compile_seconds,
        "train": trainer.train_seconds,
        "history": history,
        "trainer": trainer,
    }


def run_sklearn(data, args, seed: int | None = None) -> dict:
    """Train scikit-learn's MLPClassifier on one split: test accuracy and wall time of ``fit``."""
    from sklearn.exceptions import ConvergenceWarning

    X_train, X_test, y_train, y_test = data
    clf = make_classifier(args, args.seed if seed is None else seed)
    # scikit-learn computes in the dtype of X: give it --dtype too.
    X_train, X_test = X_train.astype(args.dtype), X_test.astype(args.dtype)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X_train, y_train)
    wall = time.perf_counter() - t0
    return {"accuracy": float(clf.score(X_test, y_test)), "wall": wall}


def summarise(runs: list[dict]) -> dict:
    """Mean and standard deviation (n − 1) of the accuracies, median wall (and training) time."""
    acc = np.array([r["accuracy"] for r in runs])
    out = {
        "n": len(runs),
        "mean": float(acc.mean()),
        "std": float(acc.std(ddof=1)) if len(runs) > 1 else 0.0,
        "median_wall": float(np.median([r["wall"] for r in runs])),
    }
    if all("train" in r for r in runs):
        out["median_train"] = float(np.median([r["train"] for r in runs]))
    return out


def paired_difference(ours: list[dict], theirs: list[dict]) -> dict:
    """Mean of symgrad − scikit-learn accuracy per seed (same split) and its standard error."""
    d = np.array([a["accuracy"] - b["accuracy"] for a, b in zip(ours, theirs)])
    sem = float(d.std(ddof=1) / np.sqrt(d.size)) if d.size > 1 else 0.0
    return {"mean": float(d.mean()), "sem": sem}


def _seed_range(seeds: list[int]) -> str:
    return str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}"


def parse_args(argv=None) -> argparse.Namespace:
    """The command line (``parse_args([])`` gives the default recipe)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--activation", choices=["relu", "tanh"], default="relu")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--l2", type=float, default=3e-3)
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument("--seed", type=int, default=0, help="the first seed")
    parser.add_argument(
        "--seeds",
        type=int,
        default=DEFAULT_SEEDS,
        help="train both over this many seeds (--seed, --seed + 1, ...; each its own split, "
        "initialisation and batch order) and report mean ± std accuracy and median wall time "
        f"(default {DEFAULT_SEEDS}; 1 for a single run)",
    )
    parser.add_argument("--plot", type=Path, default=DEFAULT_PLOT)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--no-sklearn", action="store_true", help="skip the comparison")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds must be at least 1, got {args.seeds}")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    seeds = list(range(args.seed, args.seed + args.seeds))

    from threadpoolctl import threadpool_limits

    data = load_split(seeds[0])
    X_train, X_test = data[0], data[1]
    print(
        f"digits: {X_train.shape[0]} training and {X_test.shape[0]} test images, 64 pixels, "
        f"10 classes"
    )
    print(
        f"MLP 64-{args.hidden}-10, {args.activation}, softmax cross-entropy + L2 {args.l2:g}, "
        f"Adam lr {args.lr:g}, batch {args.batch_size}, {args.epochs} epochs, {args.dtype}, "
        f"1 BLAS thread"
    )
    with threadpool_limits(limits=1):
        ours = run_symgrad(data, args, seeds[0])
        theirs = None if args.no_sklearn else run_sklearn(data, args, seeds[0])

    plot = plot_history(ours["history"], args.plot, title="symgrad MLP on digits")
    print(f"\nseed {seeds[0]}" if len(seeds) > 1 else "")
    print(
        f"symgrad       test accuracy {ours['accuracy']:.2%}   wall {ours['wall']:.2f} s "
        f"(compile {ours['compile']:.2f} s, training {ours['train']:.2f} s)"
    )
    if theirs is not None:
        print(
            f"scikit-learn  test accuracy {theirs['accuracy']:.2%}   wall {theirs['wall']:.2f} s"
            f"   (MLPClassifier, same recipe)"
        )
    result = {"symgrad": ours, "sklearn": theirs, "plot": plot, "seeds": seeds}
    if len(seeds) > 1:
        result.update(_more_seeds(args, seeds, ours, theirs))
    print(f"training curves{f' (seed {seeds[0]})' if len(seeds) > 1 else ''}: {plot}")
    return result


def _more_seeds(args, seeds, ours, theirs) -> dict:
    """Train both on the other seeds (no validation, no progress bar) and print the summary."""
    from threadpoolctl import threadpool_limits

    runs = {"symgrad": [ours], "sklearn": [] if theirs is None else [theirs]}
    print()
    for seed in seeds[1:]:
        data = load_split(seed)
        with threadpool_limits(limits=1):
            mine = run_symgrad(data, args, seed, validation=False, progress=False)
            other = None if theirs is None else run_sklearn(data, args, seed)
        del mine["trainer"], mine["history"]
        runs["symgrad"].append(mine)
        line = f"seed {seed:<3}  symgrad {mine['accuracy']:.2%} in {mine['wall']:.2f} s"
        if other is not None:
            runs["sklearn"].append(other)
            line += f"   scikit-learn {other['accuracy']:.2%} in {other['wall']:.2f} s"
        print(line, flush=True)
    summary = {name: summarise(r) for name, r in runs.items() if r}
    print(
        f"\nover {len(seeds)} seeds ({_seed_range(seeds)}, each its own split, initialisation and "
        f"batch order):\n              test accuracy (mean ± std)   median wall of fit"
    )
    s = summary["symgrad"]
    print(
        f"symgrad       {s['mean']:.2%} ± {s['std']:.2%}{'':15}{s['median_wall']:.2f} s "
        f"(training {s['median_train']:.2f} s)"
    )
    if "sklearn" in summary:
        s = summary["sklearn"]
        print(f"scikit-learn  {s['mean']:.2%} ± {s['std']:.2%}{'':15}{s['median_wall']:.2f} s")
        d = summary["difference"] = paired_difference(runs["symgrad"], runs["sklearn"])
        print(
            f"symgrad − scikit-learn on the same splits: {d['mean'] * 100:+.2f} ± "
            f"{d['sem'] * 100:.2f} points (mean ± standard error)"
        )
    return {"runs": runs, "summary": summary}


if __name__ == "__main__":
    main()
