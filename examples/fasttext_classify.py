"""A fastText classifier: who of the k most frequent speakers of tiny Shakespeare says a line.

A line's hidden vector is the average of the embedding rows of its words and of its hashed word
bigrams (``nn.embedding_bag`` with ``1/len`` weights from ``runtime.words.pad_bags`` and
``with_bigrams``), followed by a linear classifier with either

* a full softmax: ``nn.cross_entropy(h W + b, Y)`` over the ``k`` classes, or
* a hierarchical softmax over a Huffman tree of the classes' training frequencies
  (``runtime.huffman.HuffmanTree``): ``nn.sum(nn.hierarchical_softmax_nll(U, paths, signs, h)) / n``
  with the path and branch signs of each line's speaker, ``O(d log k)`` per line instead of
  ``O(d k)``; predictions take the most probable leaf (``HuffmanTree.predict``).

Training is plain SGD with fastText's linearly decaying learning rate, one compiled call per
batch (forward, backward, update); the embedding table and the tree's node vectors get row-sparse
updates (only the rows a batch touches are read and written), the softmax weights dense ones.
A seeded random 10 % of the lines is held out (so every speaker is on both sides; neighbouring
lines of one speech may fall on both sides). The report gives held-out accuracy beside the
majority-class baseline, and the training time (compile time reported apart).

The text is ``--text PATH``, default tiny Shakespeare in ``symgrad.runtime.text.data_dir()``.
Run ``python examples/fasttext_classify.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path

# Small matrices (batch x 50): multi-threaded OpenBLAS spends more time waking threads than
# multiplying. Set before NumPy loads BLAS; an explicit setting by the user wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import sympy as sp  # noqa: E402
from sympy.matrices.expressions.special import OneMatrix  # noqa: E402
from tqdm import tqdm  # noqa: E402

import symgrad as sg  # noqa: E402
from symgrad import nn  # noqa: E402
from symgrad.runtime.huffman import HuffmanTree  # noqa: E402
from symgrad.runtime.optimizers import SGD  # noqa: E402
from symgrad.runtime.plays import (  # noqa: E402
    SHAKESPEARE_FILE,
    read_speeches,
    speaker_lines,
    split_indices,
)
from symgrad.runtime.text import data_dir  # noqa: E402
from symgrad.runtime.words import WordVocab, pad_bags, tokenize, with_bigrams  # noqa: E402

SOFTMAX_KINDS = ("full", "hierarchical")

# Every size is symbolic, so one compiled step per softmax kind serves every k, vocabulary,
# width and batch.
n, m, L, V, d, k, nodes = sp.symbols("n m L V d k nodes", integer=True, positive=True)
E = sp.MatrixSymbol("E", V, d)  # word rows, then bigram-bucket rows
W, b = sp.MatrixSymbol("W", d, k), sp.MatrixSymbol("b", 1, k)
U = sp.MatrixSymbol("U", nodes, d)  # one vector per internal node of the Huffman tree
ids, bag_w = nn.Indices("ids", n, m), sp.MatrixSymbol("bag_w", n, m)
Y = sp.MatrixSymbol("Y", n, k)  # one-hot speakers
paths, signs = nn.Indices("paths", n, L), sp.MatrixSymbol("signs", n, L)


def hidden() -> sp.MatrixExpr:
    """``h``: the ``bag_w``-weighted sum of the rows of ``E`` chosen by ``ids``, ``(n, d)``."""
    return nn.embedding_bag(E, ids, bag_w)


def loss_and_params(kind: str) -> tuple[sp.Expr, list[sp.MatrixSymbol]]:
    """The mean loss over a batch and the trained parameters of one softmax kind.

    Parameters
    ----------
    kind : {"full", "hierarchical"}

    Returns
    -------
    loss : sympy.Expr
        Inputs ``ids``, ``bag_w`` and ``Y`` (full) or ``paths``, ``signs`` (hierarchical).
    params : list of MatrixSymbol
        ``[E, W, b]`` or ``[E, U]``.
    """
    if kind == "full":
        logits = hidden() * W + OneMatrix(n, 1) * b
        return nn.cross_entropy(logits, Y), [E, W, b]
    if kind == "hierarchical":
        return nn.sum(nn.hierarchical_softmax_nll(U, paths, signs, hidden())) / n, [E, U]
    raise ValueError(f"unknown softmax kind {kind!r}; choose from {SOFTMAX_KINDS}")


@dataclass
class Task:
    """Lines of the ``k`` most frequent speakers as bags of word and bigram ids."""

    train_bags: list[np.ndarray]
    train_labels: np.ndarray
    held_bags: list[np.ndarray]
    held_labels: np.ndarray
    speakers: list[str]
    rows: int  # rows of the embedding table: vocabulary + bigram buckets


def load_task(speeches, k: int, limit: int | None, buckets: int, min_count: int, seed: int):
    """The speaker task for ``k`` classes: a seeded 90/10 split, the vocabulary built from the
    training lines only (held-out words it lacks read ``<unk>``).

    ``limit`` keeps a seeded random subset of that many lines (in text order).
    """
    texts, labels, speakers = speaker_lines(speeches, k)
    if limit is not None and limit < len(texts):
        keep = np.sort(np.random.default_rng(seed).choice(len(texts), limit, replace=False))
        texts, labels = [texts[i] for i in keep], labels[keep]
    tokens = [tokenize(line) for line in texts]
    train, held = split_indices(len(texts), held_out=0.1, seed=seed)
    vocab = WordVocab.build([t for i in train for t in tokens[i]], min_count=min_count)

    def bags(rows):
        return [with_bigrams(vocab.encode(tokens[i]), buckets, len(vocab)) for i in rows]

    return Task(
        bags(train), labels[train], bags(held), labels[held], speakers, len(vocab) + buckets
    )


class Classifier:
    """Parameters, the compiled step and evaluation of one softmax kind on one task."""

    def __init__(self, kind: str, step, task: Task, dim: int, dtype: str, seed: int):
        self.kind, self.step, self.dtype = kind, step, np.dtype(dtype)
        rng = np.random.default_rng(seed)
        classes = len(task.speakers)
        # fastText's initialisation: small uniform word rows, zero output weights.
        table = rng.uniform(-1.0 / dim, 1.0 / dim, size=(task.rows, dim)).astype(self.dtype)
        self.params = {"E": table}
        if kind == "full":
            self.params["W"] = np.zeros((dim, classes), self.dtype)
            self.params["b"] = np.zeros((1, classes), self.dtype)
        else:
            self.tree = HuffmanTree(np.bincount(task.train_labels, minlength=classes))
            self.params["U"] = np.zeros((classes - 1, dim), self.dtype)
        self.classes = classes

    def batch_inputs(self, bags, labels) -> dict[str, np.ndarray]:
        """The step's data inputs for a batch of bags and their speakers."""
        batch_ids, weights = pad_bags(bags, dtype=self.dtype)
        inputs = {"ids": batch_ids, "bag_w": weights}
        if self.kind == "full":
            inputs["Y"] = np.eye(self.classes, dtype=self.dtype)[labels]
        else:
            inputs["paths"] = self.tree.paths[labels]
            inputs["signs"] = self.tree.signs[labels].astype(self.dtype)
        return inputs

    def hidden_vectors(self, bags, chunk: int = 512) -> np.ndarray:
        """``h`` of every bag, in NumPy (evaluation only), in chunks to bound memory."""
        out = []
        for start in range(0, len(bags), chunk):
            batch_ids, weights = pad_bags(bags[start : start + chunk], dtype=self.dtype)
            # E[-1] is a real row; padding has weight 0, which zeroes it.
            out.append(np.einsum("nm,nmd->nd", weights, self.params["E"][batch_ids]))
        return np.concatenate(out)

    def log_probs(self, bags) -> np.ndarray:
        """``log p(speaker | line)`` for every class, ``(len(bags), k)``."""
        H = self.hidden_vectors(bags).astype(np.float64)
        if self.kind == "hierarchical":
            return self.tree.log_probs(self.params["U"], H)
        logits = H @ self.params["W"] + self.params["b"]
        logits -= logits.max(axis=1, keepdims=True)
        return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))

    def evaluate(self, bags, labels) -> tuple[float, float]:
        """Accuracy and mean negative log-likelihood."""
        logp = self.log_probs(bags)
        accuracy = float((logp.argmax(axis=1) == labels).mean())
        return accuracy, float(-logp[np.arange(len(labels)), labels].mean())


def compile_steps(kinds, dtype: str, optimizer) -> dict:
    """One compiled training step per softmax kind, with the seconds each took."""
    steps = {}
    for kind in kinds:
        loss, params = loss_and_params(kind)
        t0 = time.perf_counter()
        steps[kind] = (
            sg.compile_step(loss, params, optimizer.rule, dtype=dtype),
            time.perf_counter() - t0,
        )
    return steps


def train(model: Classifier, task: Task, optimizer, args) -> dict:
    """SGD over shuffled batches with a linearly decaying learning rate; returns the figures."""
    rng = np.random.default_rng(args.seed)
    count = len(task.train_labels)
    per_epoch = -(-count // args.batch)
    total = per_epoch * args.epochs
    # Warm up on copies: the first call makes Numba compile (or load) the machine code; keep
    # it out of the training time and leave the parameters untouched.
    first = model.batch_inputs(task.train_bags[: args.batch], task.train_labels[: args.batch])
    copies = {name: a.copy() for name, a in model.params.items()}
    t0 = time.perf_counter()
    model.step({**copies, **first, **optimizer.hyper_values(step=0)})
    warm_up = time.perf_counter() - t0
    losses, t = [], 0
    start = time.perf_counter()
    for epoch in range(args.epochs):
        order = rng.permutation(count)
        epoch_losses = []
        bar = tqdm(
            range(0, count, args.batch),
            desc=f"{model.kind} k={model.classes} epoch {epoch + 1}",
            disable=args.no_progress,
            leave=False,
        )
        for lo in bar:
            rows = order[lo : lo + args.batch]
            inputs = model.batch_inputs([task.train_bags[i] for i in rows], task.train_labels[rows])
            lr = args.lr * (1.0 - t / total)  # fastText's schedule: linear decay to 0
            loss = model.step({**model.params, **inputs, **optimizer.hyper_values(t, lr=lr)})
            epoch_losses.append(float(loss) * len(rows))
            t += 1
        losses.append(sum(epoch_losses) / count)
    seconds = time.perf_counter() - start
    accuracy, held_loss = model.evaluate(task.held_bags, task.held_labels)
    return {
        "train_loss": losses[-1],
        "epoch_losses": losses,
        "held_loss": held_loss,
        "accuracy": accuracy,
        "train_seconds": seconds,
        "warm_up_seconds": warm_up,
        "steps": t,
        "examples_per_second": count * args.epochs / seconds,
    }


def majority_accuracy(task: Task) -> float:
    """Held-out accuracy of always answering the most frequent training speaker."""
    majority = np.bincount(task.train_labels).argmax()
    return float((task.held_labels == majority).mean())


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--text", help=f"a play text (default: data_dir() / {SHAKESPEARE_FILE})")
    p.add_argument("--k", type=int, nargs="+", default=[10, 100], help="numbers of speakers")
    p.add_argument("--softmax", nargs="+", choices=SOFTMAX_KINDS, default=list(SOFTMAX_KINDS))
    p.add_argument("--limit", type=int, help="use a seeded random subset of this many lines")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=20.0, help="initial SGD rate (decays to 0)")
    p.add_argument("--dim", type=int, default=50)
    p.add_argument("--buckets", type=int, default=2**16, help="hashed bigram rows")
    p.add_argument("--min-count", type=int, default=1)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    path = Path(args.text) if args.text else data_dir() / SHAKESPEARE_FILE
    if not path.exists():
        raise SystemExit(f"fasttext_classify: no text at {path} (pass --text PATH)")
    speeches = read_speeches(path)
    optimizer = SGD(lr=args.lr)
    steps = compile_steps(args.softmax, args.dtype, optimizer)
    print(
        f"text: {path}; dim {args.dim}, {args.buckets} bigram buckets, batch {args.batch}, "
        f"SGD lr {args.lr:g} decaying to 0, {args.epochs} epochs, {args.dtype}"
    )
    for kind, (_, seconds) in steps.items():
        print(f"compile_step ({kind} softmax): {seconds:.1f} s")
    runs = []
    for classes in args.k:
        task = load_task(speeches, classes, args.limit, args.buckets, args.min_count, args.seed)
        if len(task.speakers) < 2:
            raise SystemExit(f"fasttext_classify: k = {classes} leaves fewer than 2 speakers")
        majority = majority_accuracy(task)
        print(
            f"k = {len(task.speakers)}: {len(task.train_labels)} training / "
            f"{len(task.held_labels)} held-out lines, table {task.rows} x {args.dim}"
        )
        for kind in args.softmax:
            step, compile_seconds = steps[kind]
            model = Classifier(kind, step, task, args.dim, args.dtype, args.seed)
            result = train(model, task, optimizer, args)
            result.update(
                k=len(task.speakers),
                softmax=kind,
                majority=majority,
                compile_seconds=compile_seconds,
            )
            runs.append(result)
    print(
        f"\n{'k':>4} {'softmax':<13} {'held-out acc':>12} {'majority':>9} {'held NLL':>9} "
        f"{'train NLL':>9} {'train s':>8} {'lines/s':>9} {'1st call s':>10}"
    )
    for r in runs:
        print(
            f"{r['k']:>4} {r['softmax']:<13} {r['accuracy']:>12.2%} {r['majority']:>9.2%} "
            f"{r['held_loss']:>9.3f} {r['train_loss']:>9.3f} {r['train_seconds']:>8.2f} "
            f"{r['examples_per_second']:>9,.0f} {r['warm_up_seconds']:>10.2f}"
        )
    return {"runs": runs}


if __name__ == "__main__":
    main()
