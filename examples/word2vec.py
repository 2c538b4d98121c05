"""word2vec (skip-gram or CBOW with negative sampling) written as SymPy math and trained with
symgrad's compiled step, beside a hand-written NumPy step on the same examples.

The model has input vectors ``E_in`` and output vectors ``E_out`` (both ``(V, d)``). Skip-gram
reads one input word per example, ``h = embedding(E_in, center)``; CBOW averages the context,
``h = embedding_bag(E_in, context, 1/len)`` (contexts padded with -1). Each example scores its
positive target and ``K`` negatives drawn from the unigram^0.75 distribution,
``S = embedding_scores(E_out, targets, h)``, and the loss is
``-Σ log σ(signs ∘ S) / n`` with signs ``+1`` for the positive and ``-1`` for the negatives.
The compiled SGD step reads and writes only the rows a batch touches (no ``(V, d)`` gradient).

As in the original word2vec: rare words are dropped, frequent ones subsampled, windows are
dynamic (``1..window`` words each side), and the learning rate decays linearly to 1e-4 of its
start over training. ``--lr`` is word2vec's rate per example; since the loss is a batch mean,
the step gets ``lr × batch``. A speech (a blank-line separated block of the play) is one
segment: windows do not cross speeches.

The NumPy reference (``word2vec_numpy.py``) trains from the same initial vectors on the same
first batches (``--numpy-share`` of the first epoch); the report gives both speeds in words/s
(in-vocabulary words of the text, before subsampling, per second: word2vec's measure) and the
largest difference between the two sets of vectors, then the nearest neighbours (cosine) of a
few frequent words. Run ``python examples/word2vec.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path

# The arrays of one step are tiny: multi-threaded BLAS only adds wake-up costs. Set before NumPy
# loads BLAS; an explicit setting by the user wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import sympy as sp  # noqa: E402
from sympy.matrices.expressions.hadamard import HadamardProduct  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402
from word2vec_numpy import cbow_step, skipgram_step  # noqa: E402

import symgrad as sg  # noqa: E402
from symgrad import nn  # noqa: E402
from symgrad.runtime import sampling  # noqa: E402
from symgrad.runtime.optimizers import SGD  # noqa: E402
from symgrad.runtime.text import data_dir  # noqa: E402
from symgrad.runtime.words import WordVocab, bag_weights, tokenize  # noqa: E402

MODELS = ("skipgram", "cbow")
QUERY_WORDS = ("king", "love", "lord", "good", "night", "death", "sweet")
# Skip-gram starts at the original word2vec's rate. Its CBOW rate is 0.05, but it adds the whole
# ∂L/∂h to every context row; the exact gradient of the mean gives each row 1/len of it, so the
# rate is scaled by about the mean bag size (≈ 5 with window 5): at 0.05 the input vectors barely
# leave their common start direction in 5 epochs (neighbour cosines ≈ 0.99 for every word).
DEFAULT_LR = {"skipgram": 0.025, "cbow": 0.25}
_WORD = re.compile(r"\w")

# Symbolic sizes: one compiled step serves every vocabulary, width and batch size.
n, V, d = sp.symbols("n V d", integer=True, positive=True)
E_IN, E_OUT = sp.MatrixSymbol("E_in", V, d), sp.MatrixSymbol("E_out", V, d)


def w2v_loss(model: str, window: int, negatives: int) -> sp.Expr:
    """The mean negative-sampling loss of a batch, as SymPy.

    Inputs: ``inputs`` (``(n, 1)`` center ids for skip-gram, ``(n, 2·window)`` padded context
    ids for CBOW, with ``weights`` their ``1/len`` averaging weights), ``targets`` (``(n,
    1 + negatives)``: the positive, then the negatives) and ``signs`` (same shape, ±1).
    """
    if model == "skipgram":
        h = nn.embedding(E_IN, nn.Indices("inputs", n, 1))
    elif model == "cbow":
        weights = sp.MatrixSymbol("weights", n, 2 * window)
        h = nn.embedding_bag(E_IN, nn.Indices("inputs", n, 2 * window), weights)
    else:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    targets = nn.Indices("targets", n, 1 + negatives)
    scores = nn.embedding_scores(E_OUT, targets, h)
    signs = sp.MatrixSymbol("signs", n, 1 + negatives)
    return -nn.sum(nn.log_sigmoid(HadamardProduct(signs, scores))) / n


class CompiledStep:
    """symgrad's step for one model, called like the NumPy reference steps.

    ``step(E_in, E_out, inputs, weights, targets, signs, lr)`` updates the tables in place and
    returns the loss before the update (``weights`` is ignored for skip-gram). The first call
    checks every input and binds the tables (``Step.bind``); later calls swap the batch arrays
    into the bound argument list unchecked (the loop builds them as C-contiguous arrays of the
    right types once per epoch) and call the Numba function directly.
    """

    def __init__(self, model: str, window: int, negatives: int, dtype: str = "float64"):
        self.model = model
        t0 = time.perf_counter()
        loss = w2v_loss(model, window, negatives)
        self.step = sg.compile_step(loss, [E_IN, E_OUT], SGD().rule, dtype=dtype)
        self.compile_seconds = time.perf_counter() - t0
        self.scalar = np.float32 if dtype == "float32" else float
        self._bound = None

    @property
    def source(self) -> str:
        return self.step.source

    def __call__(self, E_in, E_out, inputs, weights, targets, signs, lr) -> float:
        bound = self._bound
        stale = bound is None or not (
            bound.args[self._e_in] is E_in and bound.args[self._e_out] is E_out
        )
        if stale:
            values = {"E_in": E_in, "E_out": E_out, "inputs": inputs, "targets": targets,
                      "signs": signs, "opt:lr": lr}  # fmt: skip
            if self.model == "cbow":
                values["weights"] = weights
            bound = self._bound = self.step.bind(values)
            slots = bound.slots
            self._e_in, self._e_out = slots["E_in"], slots["E_out"]
            self._slots = (slots["inputs"], slots.get("weights"), slots["targets"],
                           slots["signs"], slots["opt:lr"])  # fmt: skip
        args = bound.args
        s_inputs, s_weights, s_targets, s_signs, s_lr = self._slots
        args[s_inputs], args[s_targets], args[s_signs] = inputs, targets, signs
        if s_weights is not None:
            args[s_weights] = weights
        args[s_lr] = self.scalar(lr)
        return float(bound.fn(*args))


def numpy_step(model: str):
    """The NumPy reference step of ``model`` with :class:`CompiledStep`'s signature."""
    if model == "skipgram":
        return lambda E_in, E_out, inputs, weights, targets, signs, lr: skipgram_step(
            E_in, E_out, inputs, targets, signs, lr
        )
    return cbow_step


def load_words(path: Path, limit: int | None = None) -> tuple[list[str], np.ndarray]:
    """The word tokens of a text (punctuation dropped) and the segment (speech) of each.

    A segment is a block of lines between blank lines; ``limit`` keeps the first words only.
    """
    if not path.exists():
        raise FileNotFoundError(f"text file {path} not found (pass --text PATH)")
    words: list[str] = []
    segments: list[int] = []
    for block, text in enumerate(path.read_text(encoding="utf-8").split("\n\n")):
        tokens = [t for t in tokenize(text) if _WORD.search(t)]
        words += tokens
        segments += [block] * len(tokens)
        if limit is not None and len(words) >= limit:
            break
    return words[:limit], np.array(segments[:limit], dtype=np.int64)


class Corpus:
    """The ids of the in-vocabulary words, their segments, and word2vec's samplers."""

    def __init__(self, words, segments, min_count: int, sample: float, seed: int):
        self.vocab = WordVocab.build(words, min_count=min_count)
        ids = self.vocab.encode(words)
        known = ids != self.vocab.unk_id  # word2vec drops rare words from the text
        self.ids, self.segments = ids[known], segments[known]
        counts = self.vocab.counts.copy()
        counts[self.vocab.unk_id] = 0  # never drawn as a negative
        # keep_probabilities(counts, 0) would keep nothing: 0 means no subsampling.
        self.keep = np.ones(len(counts))
        if sample > 0:
            self.keep = sampling.keep_probabilities(counts, sample)
        self.sampler = sampling.UnigramSampler(counts, power=0.75, seed=seed)
        self.rng = np.random.default_rng(seed + 1)

    def epoch(self, model: str, window: int, negatives: int, dtype="float64") -> dict:
        """One epoch's examples, subsampled, windowed, with negatives, in a seeded random order.

        Returns a dict of C-contiguous arrays ``inputs``, ``weights`` (CBOW only, else None) and
        ``targets``, plus ``words``: the in-vocabulary words of the text the epoch covers.
        """
        kept = self.rng.random(len(self.ids)) < self.keep[self.ids]
        ids, segments = self.ids[kept], self.segments[kept]
        if model == "skipgram":
            centers, positives = sampling.skipgram_pairs(ids, window, self.rng, segments)
            inputs, weights = centers[:, None], None
        else:
            positives, inputs = sampling.cbow_contexts(ids, window, self.rng, segments)
            weights = bag_weights(inputs, dtype)
        targets = np.column_stack([positives, self.sampler.sample((len(positives), negatives))])
        order = self.rng.permutation(len(positives))
        contiguous = np.ascontiguousarray
        return {
            "inputs": contiguous(inputs[order]),
            "weights": None if weights is None else contiguous(weights[order]),
            "targets": contiguous(targets[order]),
            "words": len(self.ids),
        }


def init_tables(vocab_size: int, dim: int, seed: int, dtype="float64"):
    """word2vec's start: input vectors uniform in ±0.5/d, output vectors zero."""
    rng = np.random.default_rng(seed)
    E_in = ((rng.random((vocab_size, dim)) - 0.5) / dim).astype(dtype)
    return E_in, np.zeros((vocab_size, dim), dtype=dtype)


def run_batches(step, tables, data, signs, start, stop, batch, lr_at, progress=None):
    """Steps over examples ``start..stop`` of an epoch, batch by batch.

    ``lr_at(k)`` is the per-example learning rate at example ``k`` of the epoch. Returns
    ``(examples, summed example losses)`` of every chunk of 256 batches (a cheap record of the
    loss curve).
    """
    E_in, E_out = tables
    inputs, weights, targets = data["inputs"], data["weights"], data["targets"]
    chunk = 256 * batch
    sums = []
    for c in range(start, stop, chunk):
        total = 0.0
        for a in range(c, min(c + chunk, stop), batch):
            b = min(a + batch, stop)
            m = b - a
            w = None if weights is None else weights[a:b]
            lr = lr_at(a) * m  # the loss is a batch mean
            total += m * step(E_in, E_out, inputs[a:b], w, targets[a:b], signs[:m], lr)
        sums.append((min(c + chunk, stop) - c, total))
        if progress is not None:
            progress.update(min(c + chunk, stop) - c)
    return sums


def nearest_neighbours(E: np.ndarray, vocab: WordVocab, words, k: int = 6) -> dict:
    """For each word of ``words`` in the vocabulary: its ``k`` nearest words by cosine."""
    unit = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
    out = {}
    for word in words:
        if word not in vocab:
            continue
        i = vocab.id(word)
        cosines = unit @ unit[i]
        cosines[[i, vocab.unk_id]] = -np.inf
        best = np.argsort(-cosines)[:k]
        out[word] = [(vocab.tokens[j], round(float(cosines[j]), 3)) for j in best]
    return out


def train(args) -> dict:
    path = Path(args.text) if args.text else data_dir() / "tinyshakespeare.txt"
    words, segments = load_words(path, args.limit)
    corpus = Corpus(words, segments, args.min_count, args.sample, args.seed)
    vocab_size, K, batch = len(corpus.vocab), args.negatives, args.batch
    print(f"text: {path}: {len(words):,} words, vocabulary {vocab_size:,} "
          f"(min count {args.min_count}), {len(corpus.ids):,} in-vocabulary words")  # fmt: skip
    lr0 = args.lr if args.lr is not None else DEFAULT_LR[args.model]
    signs = np.ones((batch, 1 + K), dtype=args.dtype)
    signs[:, 1:] = -1.0
    step = CompiledStep(args.model, args.window, K, args.dtype)
    print(f"{args.model}, d = {args.dim}, window {args.window}, {K} negatives, batch {batch}, "
          f"lr {lr0}: step built in {step.compile_seconds:.1f} s")  # fmt: skip
    tables = init_tables(vocab_size, args.dim, args.seed, args.dtype)
    epochs = [corpus.epoch(args.model, args.window, K, args.dtype) for _ in range(args.epochs)]
    total = sum(len(e["targets"]) for e in epochs)

    def lr_for(done_before):
        return lambda k: lr0 * max(1e-4, 1.0 - (done_before + k) / total)

    # Warm up on copies: Numba compiles the step at its first call; keep that out of the timing.
    t0 = time.perf_counter()
    first = epochs[0]
    run_batches(step, [t.copy() for t in tables], first, signs, 0, batch, batch, lr_for(0))
    print(f"first call (Numba compile or cache load) {time.perf_counter() - t0:.1f} s")

    # The NumPy reference: the same start, the same first batches of epoch 1.
    count = len(first["targets"])
    share = min(count, max(1, int(np.ceil(args.numpy_share * count / batch))) * batch)
    reference = [t.copy() for t in tables]
    t0 = time.perf_counter()
    run_batches(numpy_step(args.model), reference, first, signs, 0, share, batch, lr_for(0))
    numpy_seconds = time.perf_counter() - t0

    seconds, done, words_seen, chunks, epoch_losses = 0.0, 0, 0, [], []
    bar = tqdm(total=total, unit="ex", disable=args.quiet, mininterval=1.0)
    for e, data in enumerate(epochs):
        count = len(data["targets"])
        cuts = [0, share, count] if e == 0 else [0, count]
        sums = []
        for a, b in zip(cuts, cuts[1:]):
            t0 = time.perf_counter()
            sums += run_batches(step, tables, data, signs, a, b, batch, lr_for(done), bar)
            seconds += time.perf_counter() - t0
            if e == 0 and b == share:
                symgrad_share_seconds = seconds
                numpy_diff = max(float(np.abs(x - y).max()) for x, y in zip(tables, reference))
        chunks += [total / examples for examples, total in sums]
        epoch_losses.append(sum(total for _, total in sums) / count)
        done += count
        words_seen += data["words"]
        if not args.quiet:
            bar.write(f"epoch {e + 1}: mean loss {epoch_losses[-1]:.4f}")
    bar.close()
    speed, share_words = words_seen / seconds, first["words"] * share / len(first["targets"])
    symgrad_speed, numpy_speed = share_words / symgrad_share_seconds, share_words / numpy_seconds
    print(f"trained {args.epochs} epoch(s), {done:,} examples in {seconds:.1f} s: "
          f"{speed:,.0f} words/s, {done / seconds:,.0f} examples/s")  # fmt: skip
    print(f"the first {share:,} examples of epoch 1: symgrad {symgrad_speed:,.0f} words/s, "
          f"NumPy {numpy_speed:,.0f} words/s ({symgrad_speed / numpy_speed:.1f}x); largest "
          f"difference between their vectors {numpy_diff:.1e}")  # fmt: skip
    neighbours = nearest_neighbours(tables[0], corpus.vocab, args.query or QUERY_WORDS)
    for word, near in neighbours.items():
        print(f"{word:>8}: " + ", ".join(f"{w} {c:.2f}" for w, c in near))
    tenth = max(1, len(chunks) // 10)
    return {
        "epoch_losses": epoch_losses,
        "loss_start": float(np.mean(chunks[:tenth])),
        "loss_end": float(np.mean(chunks[-tenth:])),
        "neighbours": neighbours,
        "seconds": seconds,
        "words_per_second": speed,
        "examples_per_second": done / seconds,
        "compare_examples": share,
        "symgrad_words_per_second": symgrad_speed,
        "numpy_words_per_second": numpy_speed,
        "numpy_max_abs_diff": numpy_diff,
        "vocab": corpus.vocab,
        "E_in": tables[0],
    }


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=MODELS, default="skipgram")
    p.add_argument("--text", help="a UTF-8 text file (default: tinyshakespeare.txt in data_dir())")
    p.add_argument("--limit", type=int, help="use only the first LIMIT words of the text")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--dim", type=int, default=100, help="vector width d")
    p.add_argument("--window", type=int, default=5, help="largest window on each side")
    p.add_argument("--negatives", type=int, default=5, help="negative samples per example, K")
    p.add_argument("--min-count", type=int, default=5, help="drop words seen fewer times")
    p.add_argument("--sample", type=float, default=1e-3, help="subsampling threshold t (0: off)")
    p.add_argument("--batch", type=int, default=16, help="examples per step (1: word2vec's)")
    p.add_argument("--lr", type=float, help="starting rate per example (0.025 / 0.25 CBOW)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--numpy-share", type=float, default=0.25,
                   help="share of epoch 1 the NumPy reference also trains (its speed)")  # fmt: skip
    p.add_argument("--query", nargs="*", help="words whose neighbours are printed")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    return train(parse_args(argv))


if __name__ == "__main__":
    main()
