"""Character-level text data: a vocabulary, integer encoding and seeded one-hot batches.

Examples
--------
>>> import numpy as np
>>> from symgrad.runtime.text import Vocab, split, random_batch
>>> vocab = Vocab.from_text("abcab")
>>> vocab.chars, vocab.encode("cab").tolist(), vocab.decode([0, 1])
('abc', [2, 0, 1], 'ab')
>>> train, held = split(vocab.encode("abcabcabca"), held_out=0.2)
>>> len(train), len(held)
(8, 2)
>>> X, Y = random_batch(train, seq_len=3, batch=2, vocab_size=3, rng=np.random.default_rng(0))
>>> X.shape, bool((X[1:] == Y[:-1]).all())
((3, 2, 3), True)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "Vocab", "data_dir", "one_hot", "random_batch", "split", "unigram_cross_entropy", "windows",
]  # fmt: skip


def data_dir() -> Path:
    """The folder of shared data files: ``$SYMGRAD_DATA_DIR`` if set, else ``../shared/data``
    beside the repository (the layout of development checkouts and CI). It may not exist.
    """
    if os.environ.get("SYMGRAD_DATA_DIR"):
        return Path(os.environ["SYMGRAD_DATA_DIR"])
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


@dataclass(frozen=True)
class Vocab:
    """The sorted distinct characters of a text; a character's index is its position."""

    chars: str

    @staticmethod
    def from_text(text: str) -> Vocab:
        return Vocab("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """Indices of the characters of ``text`` (int64); unknown characters raise KeyError."""
        index = {c: k for k, c in enumerate(self.chars)}
        return np.fromiter((index[c] for c in text), dtype=np.int64, count=len(text))

    def decode(self, ids) -> str:
        return "".join(self.chars[int(k)] for k in ids)


def one_hot(ids: np.ndarray, size: int, dtype="float64") -> np.ndarray:
    """One-hot rows: an array of shape ``ids.shape + (size,)``."""
    return np.eye(size, dtype=dtype)[np.asarray(ids)]


def split(ids: np.ndarray, held_out: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Train / held-out split by position: the last ``held_out`` fraction is held out.

    Cutting by position (not by random windows) keeps held-out text unseen during training.
    """
    cut = len(ids) - int(round(len(ids) * held_out))
    return ids[:cut], ids[cut:]


def random_batch(
    ids: np.ndarray,
    seq_len: int,
    batch: int,
    vocab_size: int,
    rng: np.random.Generator,
    dtype="float64",
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and next-character targets, each one-hot of shape ``(seq_len, batch, V)``.

    Column ``b`` is the window ``ids[o_b : o_b + seq_len]`` (targets shifted by one) at a random
    offset ``o_b`` drawn from ``rng``.
    """
    if len(ids) < seq_len + 1:
        raise ValueError(f"text of {len(ids)} characters is shorter than seq_len + 1")
    offsets = rng.integers(0, len(ids) - seq_len, size=batch)
    return windows(ids, offsets, seq_len, vocab_size, dtype)


def windows(
    ids: np.ndarray, offsets: np.ndarray, seq_len: int, vocab_size: int, dtype="float64"
) -> tuple[np.ndarray, np.ndarray]:
    """One-hot inputs ``ids[o : o + seq_len]`` and targets shifted by one, for each offset ``o``.

    Advancing every offset by ``seq_len`` gives the next chunk of the same streams, which is
    what truncated BPTT needs to carry the final states forward.
    """
    window = np.asarray(offsets)[None, :] + np.arange(seq_len)[:, None]
    return one_hot(ids[window], vocab_size, dtype), one_hot(ids[window + 1], vocab_size, dtype)


def unigram_cross_entropy(train: np.ndarray, held: np.ndarray, vocab_size: int) -> float:
    """Per-character cross-entropy (nats) of ``held`` under the training text's character
    frequencies (add-one smoothed, so characters unseen in training stay finite).
    """
    counts = np.bincount(train, minlength=vocab_size) + 1.0
    log_p = np.log(counts / counts.sum())
    return float(-log_p[held].mean())
