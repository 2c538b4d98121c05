"""A window-based name tagger (Collobert & Weston 2008; the CS224n window classifier): is the
centre word of a 5-word window a person's name?

Each token is seen through the window of the two words before it, itself and the two after it,
within its line of dialogue (positions outside the line are padding, id -1: a zero vector).
The window's word vectors, side by side, plus a small vector for each word's capitalisation
(lower, Capitalised, ALLCAPS, no letters: the cue a reader uses for unknown names), go through
one tanh hidden layer,

    h = tanh(embedding(E, ids) W + embedding(K, caps) W_c + b),

and the network is trained two ways:

* **max-margin** (Collobert & Weston): a score ``s = h u`` and ``J = max(0, 1 - s + s_c)``,
  averaged, where ``s`` is the score of a window whose centre *is* a name and ``s_c`` that of a
  corrupt window: the same window with its centre replaced by a random non-name token of the
  training text (its word and capitalisation), ``--corruptions`` of them per name window;
* **softmax**: logits ``h U + c`` over the two tags and the cross-entropy.

The labels come from the text (:mod:`symgrad.runtime.plays`): the speech headings give the
characters' names (``speaker_names``) and a dialogue token is a name when it is one of them
written with a capital letter (``name_tags``). About 1 % of tokens are names, so:

* the max-margin objective only ever trains on name windows and their corruptions;
* the softmax objective sees, each epoch, every name window of the training lines plus a fresh
  random sample of ``--neg-ratio`` times as many non-name windows (negative subsampling, so
  a batch is not 99 % one class). Its decision ``P(name) > 1/2`` is corrected for that
  sampling by subtracting ``log(sampled fraction of negatives)`` from the logit difference.

The last 10 % of dialogue lines (by position) are held out; the last ``--val`` of the
training lines are a validation slice, not trained on, on which a decision threshold is tuned
for the best F1. The report gives held-out precision, recall and F1 for both objectives, at
the tuned threshold and at the untuned rule (``s > 0``; corrected ``P > 1/2``), next to the base
rate of names.

Run ``python examples/window_tagger.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path

# Small matrices per step: threaded OpenBLAS spends more time waking threads than multiplying.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import sympy as sp  # noqa: E402
from sympy.matrices.expressions.special import OneMatrix  # noqa: E402
from tqdm import tqdm  # noqa: E402

import symgrad as sg  # noqa: E402
from symgrad import nn  # noqa: E402
from symgrad.runtime import plays  # noqa: E402
from symgrad.runtime.optimizers import Adagrad  # noqa: E402
from symgrad.runtime.text import data_dir  # noqa: E402
from symgrad.runtime.words import WordVocab, context_windows  # noqa: E402

WINDOW = 5
HALF = WINDOW // 2
CENTRE = HALF
# Capitalisation classes of a token.
LOWER, CAPITALISED, ALL_CAPS, NO_LETTERS = range(4)
N_CAPS = 4


def caps_class(token: str) -> int:
    """The capitalisation class of a token as written (``LOWER`` ... ``NO_LETTERS``)."""
    letters = [c for c in token if c.isalpha()]
    if not letters:
        return NO_LETTERS
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return ALL_CAPS
    return CAPITALISED if letters[0].isupper() else LOWER


# ---------------------------------------------------------------------------------------- data


@dataclass
class TaggingData:
    """Dialogue lines with their tokens (lower-cased), capitalisation classes and name labels."""

    lines: list[str]
    tokens: list[list[str]]
    caps: list[np.ndarray]
    labels: list[np.ndarray]
    names: frozenset[str]


def load_tagging_data(path: str | Path, max_lines: int | None = None) -> TaggingData:
    """The first ``max_lines`` dialogue lines of the play at ``path`` and their name labels.

    The names are found on the whole text (every speech heading), the labels by
    :func:`symgrad.runtime.plays.name_tags`.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no text at {path} (pass --text PATH or set SYMGRAD_DATA_DIR)")
    speeches = plays.read_speeches(path)
    names = plays.speaker_names(speeches)
    lines = plays.dialogue_lines(speeches)[:max_lines]
    tokens, labels = plays.name_tags(lines, names)
    cased, _ = plays.name_tags(lines, names, lower=False)
    caps = [np.array([caps_class(t) for t in line], dtype=np.int64) for line in cased]
    return TaggingData(lines, tokens, caps, labels, names)


@dataclass
class Windows:
    """Every token of some lines as a row: its word-id window, caps window and label."""

    ids: np.ndarray  # (N, WINDOW) int64, -1 outside the line
    caps: np.ndarray  # (N, WINDOW) int64, -1 outside the line
    labels: np.ndarray  # (N,) int64


def make_windows(data: TaggingData, line_indices: np.ndarray, vocab: WordVocab) -> Windows:
    """The windows of the tokens of the chosen lines; a window never crosses a line end."""
    chosen = [i for i in line_indices if len(data.tokens[i])]
    if not chosen:
        empty = np.empty((0, WINDOW), dtype=np.int64)
        return Windows(empty, empty.copy(), np.empty(0, dtype=np.int64))
    ids = np.concatenate([vocab.encode(data.tokens[i]) for i in chosen])
    caps = np.concatenate([data.caps[i] for i in chosen])
    line_of = np.concatenate([np.full(len(data.tokens[i]), i) for i in chosen])
    return Windows(
        ids=context_windows(ids, HALF, HALF, pad_id=-1, segment_ids=line_of),
        caps=context_windows(caps, HALF, HALF, pad_id=-1, segment_ids=line_of),
        labels=np.concatenate([data.labels[i] for i in chosen]),
    )


# --------------------------------------------------------------------------------------- model


class TaggerModel:
    """The symbols and losses of the window network; all sizes are symbolic, bound from the
    arrays at call time, so one compiled graph serves every vocabulary and width."""

    def __init__(self):
        n, V, d, dc, hidden = sp.symbols("n V d d_c hidden", integer=True, positive=True)
        self.n = n
        self.E = sp.MatrixSymbol("E", V, d)  # word vectors
        self.K = sp.MatrixSymbol("K", N_CAPS, dc)  # capitalisation vectors
        self.W = sp.MatrixSymbol("W", WINDOW * d, hidden)
        self.Wc = sp.MatrixSymbol("W_c", WINDOW * dc, hidden)
        self.b = sp.MatrixSymbol("b", 1, hidden)
        self.u = sp.MatrixSymbol("u", hidden, 1)  # max-margin score
        self.U = sp.MatrixSymbol("U", hidden, 2)  # softmax over the two tags
        self.c = sp.MatrixSymbol("c", 1, 2)
        self.ids, self.caps = nn.Indices("ids", n, WINDOW), nn.Indices("caps", n, WINDOW)
        self.ids_c = nn.Indices("ids_c", n, WINDOW)
        self.caps_c = nn.Indices("caps_c", n, WINDOW)
        self.Y = sp.MatrixSymbol("Y", n, 2)

    def hidden(self, ids, caps):
        pre = nn.embedding(self.E, ids) * self.W + nn.embedding(self.K, caps) * self.Wc
        return nn.tanh(pre + OneMatrix(self.n, 1) * self.b)

    def score(self, ids=None, caps=None):
        """``s = tanh(...) u``, ``(n, 1)``."""
        ids = self.ids if ids is None else ids
        caps = self.caps if caps is None else caps
        return self.hidden(ids, caps) * self.u

    def logits(self):
        return self.hidden(self.ids, self.caps) * self.U + OneMatrix(self.n, 1) * self.c

    def margin_loss(self):
        """Mean of ``max(0, 1 - s + s_c)`` over the pairs (name window, corrupt window)."""
        return nn.hinge(self.score(), self.score(self.ids_c, self.caps_c)) / self.n

    def softmax_loss(self):
        return nn.cross_entropy(self.logits(), self.Y)

    def params(self, objective: str, freeze_embeddings: bool) -> list:
        head = [self.u] if objective == "margin" else [self.U, self.c]
        tables = [self.K] if freeze_embeddings else [self.E, self.K]
        return [*tables, self.W, self.Wc, self.b, *head]


def init_arrays(vocab_size: int, args, dtype) -> dict[str, np.ndarray]:
    """Seeded initial values: small uniform word and caps vectors, Glorot-uniform layers."""
    rng = np.random.default_rng(args.seed)

    def glorot(rows, cols):
        bound = np.sqrt(6.0 / (rows + cols))
        return rng.uniform(-bound, bound, size=(rows, cols))

    d, dc, h = args.dim, args.caps_dim, args.hidden
    arrays = {
        "E": rng.uniform(-0.5, 0.5, size=(vocab_size, d)),
        "K": rng.uniform(-0.5, 0.5, size=(N_CAPS, dc)),
        "W": glorot(WINDOW * d, h),
        "W_c": glorot(WINDOW * dc, h),
        "b": np.zeros((1, h)),
        "u": glorot(h, 1),
        "U": glorot(h, 2),
        "c": np.zeros((1, 2)),
    }
    return {k: np.ascontiguousarray(v, dtype=dtype) for k, v in arrays.items()}


# ------------------------------------------------------------------------------------- metrics


def precision_recall_f1(predicted: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Precision, recall and F1 of the positive class (0 where undefined)."""
    predicted, labels = np.asarray(predicted, bool), np.asarray(labels, bool)
    tp = int(np.sum(predicted & labels))
    precision = tp / max(int(predicted.sum()), 1)
    recall = tp / max(int(labels.sum()), 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The threshold ``t`` (predict ``score > t``) with the best F1 on these scores: halfway
    between two consecutive distinct scores."""
    order = np.argsort(-scores, kind="stable")
    ranked, positive = scores[order], labels[order].astype(bool)
    tp = np.cumsum(positive)
    predicted = np.arange(1, len(ranked) + 1)
    f1 = 2 * tp / (predicted + max(int(positive.sum()), 1))
    # Only cut between distinct scores: predicting the top k must not split a tie.
    distinct = np.append(ranked[:-1] > ranked[1:], True)
    f1 = np.where(distinct, f1, -1.0)
    k = int(np.argmax(f1))
    below = ranked[k + 1] if k + 1 < len(ranked) else ranked[k] - 1.0
    return float((ranked[k] + below) / 2)


# ------------------------------------------------------------------------------------ training


def minibatches(count: int, batch: int, rng: np.random.Generator):
    order = rng.permutation(count)
    for start in range(0, count, batch):
        yield order[start : start + batch]


def drop_words(ids: np.ndarray, unk_id: int, rate: float, rng) -> np.ndarray:
    """``ids`` with each real id replaced by ``unk_id`` with probability ``rate`` (word
    dropout: the network must also learn to tag from context and case, as it must for the
    names of a play it has not read)."""
    dropped = (rng.random(ids.shape) < rate) & (ids >= 0)
    return np.where(dropped, unk_id, ids)


def train_objective(objective, model, train, val, unk_id, vocab_size, args, dtype):
    """Train one objective for ``args.epochs`` epochs and keep the parameters of the epoch with
    the best validation F1 (at its best threshold).

    Returns the arrays, the evaluation function, the compile and training seconds."""
    loss = model.margin_loss() if objective == "margin" else model.softmax_loss()
    params = model.params(objective, args.freeze_embeddings)
    optimizer = Adagrad(lr=args.lr)
    t0 = time.perf_counter()
    step = sg.compile_step(loss, params, optimizer.rule, dtype=args.dtype)
    output = model.score() if objective == "margin" else model.logits()
    evaluate = sg.compile(output, wrt=[], dtype=args.dtype)
    compile_seconds = time.perf_counter() - t0
    # The calls accept exactly their inputs: keep the arrays this objective uses.
    used = {str(symbol) for symbol in output.free_symbols}
    arrays = {k: v for k, v in init_arrays(vocab_size, args, dtype).items() if k in used}
    state = {s: np.zeros_like(arrays[s.split(":")[0]]) for s in step.state_names}
    rng = np.random.default_rng(args.seed + 1)
    positives = np.flatnonzero(train.labels == 1)
    negatives = np.flatnonzero(train.labels == 0)
    best, best_f1, t = dict(arrays), -1.0, 0
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        if objective == "margin":
            rows = np.repeat(positives, args.corruptions)
        else:
            n_neg = min(len(negatives), args.neg_ratio * len(positives))
            rows = np.concatenate([positives, rng.choice(negatives, n_neg, replace=False)])
        total = 0.0
        batches = list(minibatches(len(rows), args.batch, rng))
        for batch in tqdm(batches, desc=f"{objective} epoch {epoch}", disable=not args.progress,
                          leave=False):  # fmt: skip
            chosen = rows[batch]
            ids = drop_words(train.ids[chosen], unk_id, args.word_dropout, rng)
            inputs = {"ids": ids, "caps": train.caps[chosen]}
            if objective == "margin":
                # Corrupt the centre with a random non-name training token (word and case).
                ids_c, caps_c = ids.copy(), train.caps[chosen]
                donor = rng.choice(negatives, len(chosen))
                ids_c[:, CENTRE] = train.ids[donor, CENTRE]
                caps_c[:, CENTRE] = train.caps[donor, CENTRE]
                inputs.update(ids_c=ids_c, caps_c=caps_c)
            else:
                inputs["Y"] = np.eye(2, dtype=dtype)[train.labels[chosen]]
            values = {**arrays, **state, **inputs, **optimizer.hyper_values(step=t)}
            total += float(step(values)) * len(chosen)
            t += 1
        scores = decision_scores(objective, evaluate, arrays, val)
        f1 = precision_recall_f1(scores > best_threshold(scores, val.labels), val.labels)["f1"]
        if f1 > best_f1:
            best, best_f1 = {k: v.copy() for k, v in arrays.items()}, f1
        if args.progress:
            print(f"{objective} epoch {epoch}: mean loss {total / max(len(rows), 1):.4f}, "
                  f"validation F1 {f1:.3f}")  # fmt: skip
    return best, evaluate, compile_seconds, time.perf_counter() - t0


def decision_scores(objective, evaluate, arrays, windows, chunk=4096) -> np.ndarray:
    """One number per window, larger = more name-like: ``s``, or the logit difference."""
    out = []
    for start in range(0, len(windows.labels), chunk):
        inputs = {"ids": windows.ids[start : start + chunk],
                  "caps": windows.caps[start : start + chunk]}  # fmt: skip
        value = np.asarray(evaluate({**arrays, **inputs}))
        out.append(value[:, 0] if objective == "margin" else value[:, 1] - value[:, 0])
    return np.concatenate(out) if out else np.empty(0)


def run(args) -> dict:
    dtype = np.dtype(args.dtype)
    data = load_tagging_data(args.text, args.lines)
    train_lines, held_lines = plays.split_indices(len(data.lines), held_out=args.held_out)
    n_val = int(round(len(train_lines) * args.val))
    fit_lines, val_lines = train_lines[: len(train_lines) - n_val], train_lines[-n_val:]
    vocab = WordVocab.build(
        [t for i in fit_lines for t in data.tokens[i]], min_count=args.min_count
    )
    train, val, held = (make_windows(data, lines, vocab) for lines in
                        (fit_lines, val_lines, held_lines))  # fmt: skip
    base_rate = float(held.labels.mean()) if len(held.labels) else float("nan")
    print(f"text: {args.text}: {len(data.lines):,} dialogue lines, {len(data.names)} names")
    print(
        f"tokens: train {len(train.labels):,}, validation {len(val.labels):,}, held out "
        f"{len(held.labels):,}; vocabulary {len(vocab):,} (min count {args.min_count})"
    )
    held_unknown = int(np.sum(held.labels[held.ids[:, CENTRE] == vocab.unk_id]))
    print(f"names: {int(train.labels.sum()):,} train tokens ({train.labels.mean():.2%}), "
          f"held-out base rate {base_rate:.2%} ({int(held.labels.sum())} tokens, "
          f"{held_unknown} of them <unk>)")  # fmt: skip
    model = TaggerModel()
    results = {"base_rate": base_rate, "vocab_size": len(vocab),
               "labels": [lab.tolist() for lab in data.labels]}  # fmt: skip
    for objective in args.objectives:
        arrays, evaluate, compile_s, train_s = train_objective(
            objective, model, train, val, vocab.unk_id, len(vocab), args, dtype
        )
        val_scores = decision_scores(objective, evaluate, arrays, val)
        held_scores = decision_scores(objective, evaluate, arrays, held)
        tuned = best_threshold(val_scores, val.labels) if len(val.labels) else 0.0
        if objective == "margin":
            default = 0.0
        else:
            # Undo the negative subsampling: the logit difference is log-odds plus
            # log(1 / kept fraction of negatives).
            n_pos, n_neg = int(train.labels.sum()), int((train.labels == 0).sum())
            kept = min(n_neg, args.neg_ratio * n_pos) / max(n_neg, 1)
            default = -np.log(max(kept, 1e-12))
        tuned_metrics = precision_recall_f1(held_scores > tuned, held.labels)
        default_metrics = precision_recall_f1(held_scores > default, held.labels)
        # Names the training lines never showed (read as <unk>) against known ones.
        unknown = held.ids[:, CENTRE] == vocab.unk_id
        recall_by_kind = {
            kind: precision_recall_f1((held_scores > tuned)[mask], held.labels[mask])["recall"]
            for kind, mask in (("known", ~unknown), ("unknown", unknown))
        }
        results[objective] = {
            **tuned_metrics, "threshold": tuned, "default_threshold": float(default),
            "recall_known": recall_by_kind["known"], "recall_unknown": recall_by_kind["unknown"],
            "default": default_metrics, "train_seconds": train_s, "compile_seconds": compile_s,
            "arrays": arrays,
        }  # fmt: skip
        print(f"{objective:>7}: compile {compile_s:.1f} s, train {train_s:.1f} s")
        for label, m, th in (("tuned", tuned_metrics, tuned), ("default", default_metrics,
                                                                 default)):  # fmt: skip
            print(f"{'':>9}{label:<8} threshold {th:7.3f}: precision {m['precision']:.3f}  "
                  f"recall {m['recall']:.3f}  F1 {m['f1']:.3f}")  # fmt: skip
        print(f"{'':>9}tuned recall of known names {recall_by_kind['known']:.3f}, of <unk> "
              f"names {recall_by_kind['unknown']:.3f}")  # fmt: skip
    return results


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--text", default=str(data_dir() / plays.SHAKESPEARE_FILE))
    p.add_argument("--lines", type=int, help="use only the first dialogue lines")
    p.add_argument("--objectives", nargs="+", choices=["margin", "softmax"],
                   default=["margin", "softmax"])  # fmt: skip
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.05, help="Adagrad learning rate")
    p.add_argument("--dim", type=int, default=50, help="word-vector width")
    p.add_argument("--caps-dim", type=int, default=5, help="capitalisation-vector width")
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--min-count", type=int, default=2, help="rarer training words -> <unk>")
    p.add_argument("--corruptions", type=int, default=5, help="corrupt windows per name window")
    p.add_argument("--neg-ratio", type=int, default=10,
                   help="softmax: non-name windows sampled per name window, per epoch")  # fmt: skip
    p.add_argument("--word-dropout", type=float, default=0.2,
                   help="probability of reading a training word as <unk>")  # fmt: skip
    p.add_argument("--freeze-embeddings", action="store_true",
                   help="keep the (random) word vectors fixed")  # fmt: skip
    p.add_argument("--held-out", type=float, default=0.1, help="last fraction of lines held out")
    p.add_argument("--val", type=float, default=0.1,
                   help="last fraction of the training lines used to tune thresholds")  # fmt: skip
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", dest="progress", action="store_false")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    return run(parse_args(argv))


if __name__ == "__main__":
    main()
