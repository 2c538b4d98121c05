"""A character-level language model: an Elman RNN, GRU or LSTM written as SymPy math.

The cell comes from :mod:`symgrad.runtime.cells`; one compiled call does forward, backpropagation
through time, clipping by global norm and the Adam update. Training is truncated BPTT: ``batch``
streams start at seeded random offsets of the training text and advance ``seq-len`` characters
per step, the final states of one chunk being the initial states of the next (a stream that
runs off the end restarts at a new offset with zero state). The last 10 % of the text is held
out; the report gives its per-character cross-entropy (nats) and perplexity beside a unigram
baseline (character frequencies of the training text), then samples text with a temperature.

The text is ``--text PATH``, else ``../shared/data/tinyshakespeare.txt`` beside the repository,
else the docstrings of some standard-library modules (present on every Python installation).

Run ``python examples/char_lm.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import time
import warnings
from pathlib import Path

# The step's matrices are small (batch x hidden): multi-threaded OpenBLAS spends more time waking
# threads than multiplying, up to 8x slower per step on a busy 2-core machine. Set before NumPy
# loads BLAS; an explicit setting by the user wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import symgrad as sg  # noqa: E402
from symgrad.runtime import Adam, cells  # noqa: E402
from symgrad.runtime.text import Vocab, split, unigram_cross_entropy, windows  # noqa: E402

SHAKESPEARE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "tinyshakespeare.txt"
STDLIB_MODULES = [
    "argparse", "collections", "dataclasses", "functools", "inspect", "itertools", "json",
    "logging", "os", "pathlib", "random", "re", "string", "subprocess", "textwrap", "typing",
    "unittest",
]  # fmt: skip


def stdlib_corpus() -> str:
    """Docstrings of a few standard-library modules and their public members."""
    with warnings.catch_warnings():
        return _stdlib_docs()


def _stdlib_docs() -> str:
    docs = []
    # Reading every member of ``typing`` touches its deprecated ``typing.io`` aliases.
    warnings.simplefilter("ignore", DeprecationWarning)
    for name in STDLIB_MODULES:
        module = importlib.import_module(name)
        docs.append(inspect.getdoc(module) or "")
        for attr, value in sorted(vars(module).items()):
            if not attr.startswith("_") and (inspect.isclass(value) or inspect.isfunction(value)):
                docs.append(inspect.getdoc(value) or "")
    return "\n\n".join(d for d in docs if d)


def load_text(path: str | None) -> tuple[str, str]:
    """The corpus and a description of where it came from."""
    if path:
        return Path(path).read_text(encoding="utf-8"), path
    if SHAKESPEARE.exists():
        return SHAKESPEARE.read_text(encoding="utf-8"), str(SHAKESPEARE.resolve())
    return stdlib_corpus(), "standard-library docstrings"


class Model:
    """A cell with its compiled training step and value function, and its arrays."""

    def __init__(self, cell: str, vocab_size: int, hidden: int, seed: int):
        self.spec = cells.CELLS[cell](vocab_size, hidden)
        self.opt = Adam(lr=3e-3)
        self.params = self.spec.init_params(np.random.default_rng(seed))
        self.state = self.opt.init_state(self.params)
        t0 = time.perf_counter()
        spec = self.spec
        # The loss per character (over T) keeps the gradient scale, hence the clip, T-independent.
        length = spec.X.shape[0]
        self.step = sg.compile_step(
            [spec.loss / length, *spec.finals], spec.params, self.opt.rule, clip_norm=True
        )
        # One value function serves evaluation (loss and carried states) and generation (T = 1
        # and the readout: the logits of the character after the chunk).
        self.value = sg.compile([spec.loss, *spec.finals, spec.readout], wrt=spec.params)
        self.compile_seconds = time.perf_counter() - t0

    def zero_states(self, batch: int) -> dict[str, np.ndarray]:
        return self.spec.zero_states(batch)

    def train_step(self, X, Y, states, step: int, clip: float) -> tuple[float, list]:
        values = {**self.params, **self.state, **states, "X": X, "Y": Y}
        values.update(self.opt.hyper_values(step))
        values["opt:clip_norm"] = clip
        loss, *finals = self.step(values)
        return float(loss), finals

    def evaluate(self, X, Y, states) -> tuple[float, list]:
        loss, *finals, _ = self.value({**self.params, **states, "X": X, "Y": Y})
        return float(loss), finals


def held_out_loss(model: Model, held: np.ndarray, V: int, streams: int, seq_len: int) -> float:
    """Per-character cross-entropy of the held-out text, read as ``streams`` parallel streams
    with the state carried across chunks (as in training)."""
    per_stream = (len(held) - 1) // streams
    offsets = np.arange(streams) * per_stream
    states = model.zero_states(streams)
    total, count = 0.0, 0
    for start in range(0, per_stream, seq_len):
        T = min(seq_len, per_stream - start)
        X, Y = windows(held, offsets + start, T, V)
        loss, finals = model.evaluate(X, Y, states)
        states = dict(zip(model.spec.state_names, finals))
        # loss sums over time the mean over the streams.
        total += loss * streams
        count += T * streams
    return total / count


def sample(model: Model, vocab: Vocab, prime: str, length: int, temperature: float, seed: int):
    """Text generated one character at a time from softmax(logits / temperature)."""
    rng = np.random.default_rng(seed)
    V = len(vocab)
    states = model.zero_states(1)
    Y = np.zeros((1, 1, V))
    out = list(prime)
    ids = list(vocab.encode(prime))
    for k in range(len(prime) - 1 + length):
        X = np.eye(V)[[ids[k]]][None]
        _, *finals, logits = model.value({**model.params, **states, "X": X, "Y": Y})
        states = dict(zip(model.spec.state_names, finals))
        if k >= len(prime) - 1:
            z = logits[0] / temperature
            p = np.exp(z - z.max())
            ids.append(int(rng.choice(V, p=p / p.sum())))
            out.append(vocab.chars[ids[-1]])
    return "".join(out)


def train(args) -> dict:
    text, source = load_text(args.text)
    if args.max_chars:
        text = text[: args.max_chars]
    vocab = Vocab.from_text(text)
    V = len(vocab)
    ids = vocab.encode(text)
    train_ids, held = split(ids, 0.1)
    print(f"text: {source}: {len(text):,} characters, vocabulary {V}")
    print(f"train {len(train_ids):,} / held out {len(held):,} characters")
    model = Model(args.cell, V, args.hidden, args.seed)
    rng = np.random.default_rng(args.seed)
    B, T = args.batch, args.seq_len
    span = len(train_ids) - T - 1
    offsets = rng.integers(0, span, size=B)
    states = model.zero_states(B)
    # Warm up: the first call compiles the Numba machine code; keep it out of the training time.
    t0 = time.perf_counter()
    X, Y = windows(train_ids, offsets, T, V)
    loss, finals = model.train_step(X, Y, states, 0, args.clip)
    print(f"{args.cell}, hidden {args.hidden}: compile {model.compile_seconds:.1f} s + first "
          f"step {time.perf_counter() - t0:.1f} s")  # fmt: skip
    states = dict(zip(model.spec.state_names, finals))
    offsets += T
    steps, start, smooth = 1, time.perf_counter(), loss
    budget = args.minutes * 60 if args.steps is None else float("inf")
    while (args.steps is None or steps < args.steps) and time.perf_counter() - start < budget:
        restart = offsets + T >= span
        if restart.any():
            offsets[restart] = rng.integers(0, span, size=int(restart.sum()))
            for a in states.values():
                a[restart] = 0.0
        X, Y = windows(train_ids, offsets, T, V)
        loss, finals = model.train_step(X, Y, states, steps, args.clip)
        states = dict(zip(model.spec.state_names, finals))
        offsets += T
        steps += 1
        smooth = 0.98 * smooth + 0.02 * loss
        if steps % args.log_every == 0:
            print(f"step {steps:5d}  {time.perf_counter() - start:6.1f} s  "
                  f"train loss/char {smooth:.3f}")  # fmt: skip
    seconds = time.perf_counter() - start
    eval_held = held[: args.eval_chars] if args.eval_chars else held
    held_ce = held_out_loss(model, eval_held, V, min(16, max(1, len(eval_held) // 50)), 100)
    base = unigram_cross_entropy(train_ids, eval_held, V)
    print(f"trained {steps} steps ({steps * B * T:,} characters) in {seconds:.1f} s")
    print(f"held-out cross-entropy {held_ce:.3f} nats/char (perplexity {np.exp(held_ce):.2f}); "
          f"unigram baseline {base:.3f} (perplexity {np.exp(base):.2f}) "
          f"over {len(eval_held):,} characters")  # fmt: skip
    prime = vocab.decode(held[:1])
    text_out = sample(model, vocab, prime, args.sample_chars, args.temperature, args.seed)
    print(f"sample (temperature {args.temperature}):\n{text_out}")
    return {"held_out": held_ce, "unigram": base, "steps": steps, "sample": text_out}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cell", choices=sorted(cells.CELLS), default="lstm")
    p.add_argument("--text", help="a UTF-8 text file (default: tiny Shakespeare if present)")
    p.add_argument("--minutes", type=float, default=3.0, help="training time budget")
    p.add_argument("--steps", type=int, help="stop after this many steps instead")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--seq-len", type=int, default=32)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--clip", type=float, default=5.0, help="global gradient-norm bound")
    p.add_argument("--max-chars", type=int, help="use only the first characters of the text")
    p.add_argument("--eval-chars", type=int, default=50_000, help="held-out characters scored")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--sample-chars", type=int, default=400)
    p.add_argument("--log-every", type=int, default=100)
    return p.parse_args(argv)


def main(argv=None) -> dict:
    return train(parse_args(argv))


if __name__ == "__main__":
    main()
