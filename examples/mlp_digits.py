"""Handwritten digits with a one-hidden-layer MLP written as SymPy math, beside scikit-learn.

The data is scikit-learn's ``load_digits`` (1,797 8×8 images that ship inside the package), split
80/20 (stratified, fixed seed) and standardised with the training set's statistics. symgrad
trains ``MLP([64, 256, 10])`` (ReLU hidden layer, softmax cross-entropy, L2) with Adam: one
compiled call per step, a progress bar, validation on the held-out 20 % after every epoch and a
plot of the curves. Then scikit-learn's ``MLPClassifier`` runs the same recipe (hidden size,
activation, Glorot-uniform initialisation, Adam, learning rate, L2, batch size and epochs) for
comparison. BLAS is pinned to one thread for both.

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


def load_split(seed: int = 0):
    """Digits split 80/20 (stratified, fixed seed), standardised by the training statistics."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, random_state=seed, stratify=y
    )
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def run_symgrad(data, args) -> dict:
    X_train, X_test, y_train, y_test = data
    model = MLP([64, args.hidden, 10], activation=args.activation, output="softmax", l2=args.l2)
    # Glorot-uniform weights, like scikit-learn, so that both runs start from the same recipe.
    trainer = Trainer(
        model,
        Adam(lr=args.lr),
        batch_size=args.batch_size,
        dtype=args.dtype,
        init="xavier_uniform",
        seed=args.seed,
        progress=not args.no_progress,
    )
    t0 = time.perf_counter()
    history = trainer.fit(X_train, y_train, epochs=args.epochs, validation_data=(X_test, y_test))
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


def run_sklearn(data, args) -> dict:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    X_train, X_test, y_train, y_test = data
    clf = MLPClassifier(
        hidden_layer_sizes=(args.hidden,),
        activation=args.activation,
        solver="adam",
        # scikit-learn adds alpha/2·‖W‖² divided by the batch size; symgrad's MLP adds l2/2·‖W‖².
        alpha=args.l2 * args.batch_size,
        batch_size=args.batch_size,
        learning_rate_init=args.lr,
        max_iter=args.epochs,
        shuffle=True,
        random_state=args.seed,
        tol=0.0,  # run every epoch, like symgrad
        n_iter_no_change=args.epochs + 1,
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X_train, y_train)
    wall = time.perf_counter() - t0
    return {"accuracy": float(clf.score(X_test, y_test)), "wall": wall}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--activation", choices=["relu", "tanh"], default="relu")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--l2", type=float, default=3e-3)
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", type=Path, default=DEFAULT_PLOT)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--no-sklearn", action="store_true", help="skip the comparison")
    args = parser.parse_args(argv)

    from threadpoolctl import threadpool_limits

    data = load_split(args.seed)
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
        ours = run_symgrad(data, args)
        theirs = None if args.no_sklearn else run_sklearn(data, args)

    plot = plot_history(ours["history"], args.plot, title="symgrad MLP on digits")
    print(
        f"\nsymgrad       test accuracy {ours['accuracy']:.2%}   wall {ours['wall']:.2f} s "
        f"(compile {ours['compile']:.2f} s, training {ours['train']:.2f} s)"
    )
    if theirs is not None:
        print(
            f"scikit-learn  test accuracy {theirs['accuracy']:.2%}   wall {theirs['wall']:.2f} s"
            f"   (MLPClassifier, same recipe)"
        )
    print(f"training curves: {plot}")
    return {"symgrad": ours, "sklearn": theirs, "plot": plot}


if __name__ == "__main__":
    main()
