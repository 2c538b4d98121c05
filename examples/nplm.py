"""A neural probabilistic language model (Bengio, Ducharme, Vincent & Jauvin 2003) over words,
against Kneser-Ney and unigram baselines on the same vocabulary and held-out tokens.

The previous ``--context`` words' vectors (rows of a shared table ``C``) side by side, ``x``, go
through a tanh hidden layer into a softmax over the whole vocabulary,

    logits = b + x W + tanh(d + x H) U        (``x W``: the optional direct connections),

trained on the softmax cross-entropy of the next word with mini-batches and Adam (or SGD),
seeded. The output bias ``b`` starts at the log unigram frequencies of the training text, so
training starts from the unigram model rather than from the uniform one.

Text: the dialogue lines of the play (:mod:`symgrad.runtime.plays`), tokenized, lower-cased,
each line followed by ``</s>``, as one stream (a context may reach into the line before, as
the n-gram baseline's history does). The last 10 % of lines (by position) are held out. The
vocabulary is the training words seen at least ``--min-count`` times; the rest read ``<unk>``
(as a context word and as a target, for every model alike). Perplexity is over every held-out
token including ``</s>``, from the start of the held-out stream (its first words have shorter
histories: padding, id -1, a zero vector, for the network; a shorter history for the n-gram).

Run ``python examples/nplm.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

# Set before NumPy loads BLAS; an explicit setting by the user wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import sympy as sp  # noqa: E402
from sympy.matrices.expressions.special import OneMatrix  # noqa: E402
from tqdm import tqdm  # noqa: E402

import symgrad as sg  # noqa: E402
from symgrad import nn  # noqa: E402
from symgrad.runtime import plays  # noqa: E402
from symgrad.runtime.ngram import KneserNeyLM  # noqa: E402
from symgrad.runtime.optimizers import SGD, Adam  # noqa: E402
from symgrad.runtime.text import data_dir  # noqa: E402
from symgrad.runtime.words import WordVocab, context_windows, tokenize  # noqa: E402

OPTIMIZERS = {"adam": Adam, "sgd": SGD}


class NPLM:
    """Symbols and loss of the model; every size is symbolic (bound from the arrays at call
    time), so one compiled graph per variant serves any vocabulary, width or context length."""

    def __init__(self, direct: bool):
        n, V, d, k, h = sp.symbols("n V d k hidden", integer=True, positive=True)
        self.n, self.direct = n, direct
        self.C = sp.MatrixSymbol("C", V, d)  # word vectors
        self.H = sp.MatrixSymbol("H", k * d, h)
        self.d = sp.MatrixSymbol("d", 1, h)
        self.U = sp.MatrixSymbol("U", h, V)
        self.b = sp.MatrixSymbol("b", 1, V)
        self.W = sp.MatrixSymbol("W", k * d, V)  # direct connections
        self.context = nn.Indices("context", n, k)
        self.Y = sp.MatrixSymbol("Y", n, V)  # one-hot next words

    def logits(self):
        ones = OneMatrix(self.n, 1)
        x = nn.embedding(self.C, self.context)
        out = ones * self.b + nn.tanh(x * self.H + ones * self.d) * self.U
        return out + x * self.W if self.direct else out

    def loss(self):
        """Mean negative log-likelihood (nats) of the next words of the batch."""
        return nn.cross_entropy(self.logits(), self.Y)

    def params(self) -> list:
        return [self.C, self.H, self.d, self.U, self.b, *([self.W] * self.direct)]


def init_arrays(vocab_size: int, unigram_counts: np.ndarray, args) -> dict[str, np.ndarray]:
    """Seeded initial values; ``b`` is the log of the (add-one) unigram frequencies."""
    rng = np.random.default_rng(args.seed)

    def glorot(rows, cols):
        bound = np.sqrt(6.0 / (rows + cols))
        return rng.uniform(-bound, bound, size=(rows, cols))

    width = args.context * args.dim
    frequencies = (unigram_counts + 1.0) / (unigram_counts.sum() + len(unigram_counts))
    arrays = {
        "C": rng.normal(0.0, 0.1, size=(vocab_size, args.dim)),
        "H": glorot(width, args.hidden),
        "d": np.zeros((1, args.hidden)),
        "U": glorot(args.hidden, vocab_size),
        "b": np.log(frequencies)[None, :],
    }
    if args.direct:
        arrays["W"] = np.zeros((width, vocab_size))
    return {k: np.ascontiguousarray(v, dtype=args.dtype) for k, v in arrays.items()}


def read_lines(path: str | Path, max_lines: int | None) -> list[str]:
    """The first ``max_lines`` dialogue lines of the play at ``path``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no text at {path} (pass --text PATH or set SYMGRAD_DATA_DIR)")
    return plays.dialogue_lines(plays.read_speeches(path))[:max_lines]


def token_stream(lines, vocab: WordVocab) -> np.ndarray:
    """The ids of the lines' tokens, each line followed by ``</s>``, as one array."""
    parts = [vocab.encode([*tokenize(line), "</s>"]) for line in lines]
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def examples(stream: np.ndarray, n_prev: int) -> tuple[np.ndarray, np.ndarray]:
    """``(contexts, targets)``: the ``n_prev`` ids before each id (-1 before the start)."""
    windows = context_windows(stream, n_prev, 0, pad_id=-1)
    return np.ascontiguousarray(windows[:, :-1]), stream


def one_hot(targets: np.ndarray, size: int, dtype) -> np.ndarray:
    out = np.zeros((len(targets), size), dtype=dtype)
    out[np.arange(len(targets)), targets] = 1.0
    return out


def mean_nll(value_fn, arrays, contexts, targets, vocab_size, dtype, chunk=1024) -> float:
    """Mean negative log-likelihood (nats per token) of ``targets`` given ``contexts``."""
    total = 0.0
    for start in range(0, len(targets), chunk):
        part = slice(start, start + chunk)
        batch = {"context": contexts[part], "Y": one_hot(targets[part], vocab_size, dtype)}
        total += float(value_fn({**arrays, **batch})) * len(targets[part])
    return total / max(len(targets), 1)


def run(args) -> dict:
    dtype = np.dtype(args.dtype)
    lines = read_lines(args.text, args.lines)
    train_lines, held_lines = plays.split_indices(len(lines), held_out=args.held_out)
    train_tokens = [t for i in train_lines for t in tokenize(lines[i])]
    vocab = WordVocab.build(train_tokens, args.min_count, args.max_vocab, boundaries=True)
    V = len(vocab)
    train_stream = token_stream([lines[i] for i in train_lines], vocab)
    held_stream = token_stream([lines[i] for i in held_lines], vocab)
    print(
        f"text: {args.text}: {len(lines):,} dialogue lines; train {len(train_stream):,} / "
        f"held out {len(held_stream):,} tokens (with </s>); vocabulary {V:,} (min count "
        f"{args.min_count}), held-out <unk> rate {np.mean(held_stream == vocab.unk_id):.1%}"
    )

    baselines = {}
    for order in sorted({1, 3, args.context + 1}):
        t0 = time.perf_counter()
        lm = KneserNeyLM(V, order=order).fit(train_stream)
        baselines[order] = lm.perplexity(held_stream)
        name = "unigram" if order == 1 else f"Kneser-Ney {order}-gram"
        seconds = time.perf_counter() - t0
        print(f"{name:>18}: held-out perplexity {baselines[order]:8.2f}  ({seconds:.1f} s)")

    model = NPLM(args.direct)
    optimizer = OPTIMIZERS[args.optimizer](lr=args.lr)
    t0 = time.perf_counter()
    step = sg.compile_step(model.loss(), model.params(), optimizer.rule, dtype=args.dtype)
    value_fn = sg.compile(model.loss(), wrt=[], dtype=args.dtype)
    compile_seconds = time.perf_counter() - t0
    counts = np.bincount(train_stream, minlength=V).astype(np.float64)
    arrays = init_arrays(V, counts, args)
    state = {s: np.zeros_like(arrays[s.split(":")[0]]) for s in step.state_names}
    contexts, targets = examples(train_stream, args.context)
    held_contexts, held_targets = examples(held_stream, args.context)

    rng = np.random.default_rng(args.seed)
    t, start = 0, time.perf_counter()
    history = []
    for epoch in range(args.epochs):
        order = rng.permutation(len(targets))
        batches = [order[i : i + args.batch] for i in range(0, len(order), args.batch)]
        total = 0.0
        bar = tqdm(batches, desc=f"epoch {epoch}", disable=not args.progress, leave=False)
        for rows in bar:
            batch = {"context": contexts[rows], "Y": one_hot(targets[rows], V, dtype)}
            loss = float(step({**arrays, **state, **batch, **optimizer.hyper_values(step=t)}))
            total += loss * len(rows)
            t += 1
        held_nll = mean_nll(value_fn, arrays, held_contexts, held_targets, V, dtype)
        history.append({"train_nll": total / len(targets), "held_nll": held_nll})
        elapsed = time.perf_counter() - start
        print(f"epoch {epoch}: train perplexity {np.exp(total / len(targets)):8.2f}, held-out "
              f"perplexity {np.exp(held_nll):8.2f}  ({elapsed:.0f} s)")  # fmt: skip
    train_seconds = time.perf_counter() - start
    perplexity = float(np.exp(history[-1]["held_nll"])) if history else float("nan")
    print(f"NPLM ({args.context} previous words, dim {args.dim}, hidden {args.hidden}, "
          f"{'with' if args.direct else 'no'} direct connections): held-out perplexity "
          f"{perplexity:.2f}; trigram KN {baselines[3]:.2f}; unigram {baselines[1]:.2f}; "
          f"uniform {V}")  # fmt: skip
    print(f"compile {compile_seconds:.1f} s, training {train_seconds:.1f} s ({t} steps)")
    return {
        "perplexity": perplexity,
        "kneser_ney": {order: float(p) for order, p in baselines.items() if order > 1},
        "unigram": float(baselines[1]),
        "vocab_size": V,
        "history": history,
        "train_seconds": train_seconds,
    }


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--text", default=str(data_dir() / plays.SHAKESPEARE_FILE))
    p.add_argument("--lines", type=int, help="use only the first dialogue lines")
    p.add_argument("--context", type=int, default=3, help="previous words seen (n - 1)")
    p.add_argument("--dim", type=int, default=60, help="word-vector width")
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--direct", action="store_true", help="add direct connections x W")
    p.add_argument("--min-count", type=int, default=3, help="rarer training words -> <unk>")
    p.add_argument("--max-vocab", type=int, help="cap on the vocabulary size")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adam")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--held-out", type=float, default=0.1, help="last fraction of lines held out")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", dest="progress", action="store_false")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    return run(parse_args(argv))


if __name__ == "__main__":
    main()
