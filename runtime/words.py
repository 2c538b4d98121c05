"""Word-level text data: a tokenizer, a counted vocabulary, context windows, padded bags and
hashed bigram features.

Examples
--------
>>> import numpy as np
>>> from symgrad.runtime.words import WordVocab, context_windows, pad_bags, tokenize
>>> tokenize("O'er the hills, 'tis far--away!")
["o'er", 'the', 'hills', ',', "'tis", 'far', '--', 'away', '!']
>>> vocab = WordVocab.build("a b a c a b".split(), pad=True)
>>> vocab.tokens, vocab.counts.tolist()
(('<pad>', '<unk>', 'a', 'b', 'c'), [0, 0, 3, 2, 1])
>>> vocab.encode(["a", "zebra"]).tolist(), vocab.decode([3, 4])
([2, 1], ['b', 'c'])
>>> context_windows(np.array([5, 6, 7]), left=1, right=1, pad_id=0).tolist()
[[0, 5, 6], [5, 6, 7], [6, 7, 0]]
>>> ids, weights = pad_bags([[4, 2], [3]])
>>> ids.tolist(), weights.tolist()
([[4, 2], [3, -1]], [[0.5, 0.5], [1.0, 0.0]])
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "PAD", "UNK", "BOS", "EOS", "WordVocab", "bag_weights", "bigram_buckets", "context_windows",
    "pad_bags", "tokenize", "with_bigrams",
]  # fmt: skip

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"

# A word is a run of letters/digits with apostrophes allowed *between* them (o'er, we'll,
# know't); it may also carry one apostrophe at either end, kept only for the elisions below.
# Runs of dashes or dots are one token ("--" is a dash in the plays); any other punctuation
# character is a token of its own.
_TOKEN = re.compile(r"'?[^\W_]+(?:'[^\W_]+)*'?|-{2,}|\.{2,}|[^\w\s]|_")

# Elisions that own a leading or trailing apostrophe ('tis, 'gainst, o' th' ...). Anywhere else
# an edge apostrophe is a quotation mark and is split off ('Ay,' he said -> ', ay, ', ...).
_LEADING = frozenset(
    "t tis twas twere twill twould twixt tween em gainst fore mongst s scape bout".split()
)
_TRAILING = frozenset("o i th ha".split())


def tokenize(text: str, lower: bool = True) -> list[str]:
    """Split ``text`` into words and punctuation tokens.

    Apostrophes inside words stay (``o'er``, ``we'll``); an apostrophe at a word's edge stays
    only for common elisions (``'tis``, ``'twas``, ``'gainst``, ``o'``, ``th'``) and is
    otherwise a separate token (a quotation mark). Hyphens split words (``well-met`` is
    ``well - met``); runs of dashes or dots are one token.

    Parameters
    ----------
    text : str
        Any text; line breaks are ordinary white space.
    lower : bool
        Lower-case the tokens (the default). Keep case when it carries information, e.g. to
        find proper names.

    Examples
    --------
    >>> tokenize("Is't a verdict? 'Ay,' quoth he.", lower=False)
    ["Is't", 'a', 'verdict', '?', "'", 'Ay', ',', "'", 'quoth', 'he', '.']
    """
    tokens: list[str] = []
    for token in _TOKEN.findall(text):
        if len(token) > 1 and "'" in (token[0], token[-1]):
            tokens.extend(_split_edge_apostrophes(token))
        else:
            tokens.append(token)
    return [t.lower() for t in tokens] if lower else tokens


def _split_edge_apostrophes(token: str) -> list[str]:
    head, tail = [], []
    if token[0] == "'" and token[1:].rstrip("'").lower() not in _LEADING:
        head, token = ["'"], token[1:]
    if token.endswith("'") and len(token) > 1 and token[:-1].lstrip("'").lower() not in _TRAILING:
        tail, token = ["'"], token[:-1]
    return [*head, token, *tail]


@dataclass(frozen=True)
class WordVocab:
    """Tokens with their ids and training counts.

    Special tokens come first, in the order ``<pad>`` (if asked for), ``<unk>`` (always),
    ``<s>``, ``</s>`` (if ``boundaries``); then the kept words by count, most frequent first,
    ties broken by the token's text, so the same tokens always give the same ids.

    Attributes
    ----------
    tokens : tuple of str
        The token of each id.
    counts : ndarray of int64, shape (len(tokens),)
        Training count of each id. ``<unk>`` counts the occurrences of every dropped word;
        ``<pad>`` and the boundary tokens count 0 (they are not in the training tokens), so a
        sampler built on ``counts`` never draws them.
    """

    tokens: tuple[str, ...]
    counts: np.ndarray

    @staticmethod
    def build(
        tokens: Iterable[str],
        min_count: int = 1,
        max_size: int | None = None,
        pad: bool = False,
        boundaries: bool = False,
    ) -> WordVocab:
        """The vocabulary of ``tokens``: words seen at least ``min_count`` times, at most
        ``max_size`` entries in all (special tokens included), the rest mapped to ``<unk>``.
        """
        specials = [PAD] * pad + [UNK] + [BOS, EOS] * boundaries
        counted = Counter(tokens)
        for special in specials:
            if special in counted:
                raise ValueError(f"the training tokens contain the special token {special!r}")
        ranked = sorted(counted.items(), key=lambda item: (-item[1], item[0]))
        kept = [(t, c) for t, c in ranked if c >= min_count]
        if max_size is not None:
            if max_size < len(specials):
                raise ValueError(f"max_size={max_size} leaves no room for {specials}")
            kept = kept[: max_size - len(specials)]
        unk_count = sum(counted.values()) - sum(c for _, c in kept)
        special_counts = [unk_count if s == UNK else 0 for s in specials]
        return WordVocab(
            tokens=tuple(specials) + tuple(t for t, _ in kept),
            counts=np.array(special_counts + [c for _, c in kept], dtype=np.int64),
        )

    def __post_init__(self):
        # The token -> id map, built once (the dataclass is frozen, hence object.__setattr__).
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(self.tokens)})
        if len(self._index) != len(self.tokens) or UNK not in self._index:
            raise ValueError("tokens must be distinct and include <unk>")
        if len(self.counts) != len(self.tokens):
            raise ValueError("counts must have one entry per token")

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self._index

    def id(self, token: str) -> int:
        """The id of ``token``, ``unk_id`` if it is not in the vocabulary."""
        return self._index.get(token, self.unk_id)

    @property
    def unk_id(self) -> int:
        return self._index[UNK]

    @property
    def pad_id(self) -> int | None:
        return self._index.get(PAD)

    @property
    def bos_id(self) -> int | None:
        return self._index.get(BOS)

    @property
    def eos_id(self) -> int | None:
        return self._index.get(EOS)

    def encode(self, tokens: Sequence[str], add_boundaries: bool = False) -> np.ndarray:
        """The ids of ``tokens`` (int64), unknown words as ``unk_id``; with ``add_boundaries``,
        wrapped in ``<s>`` ... ``</s>`` (the vocabulary must have been built with them).
        """
        ids = [self._index.get(t, self.unk_id) for t in tokens]
        if add_boundaries:
            if self.bos_id is None:
                raise ValueError("this vocabulary has no boundary tokens (build(boundaries=True))")
            ids = [self.bos_id, *ids, self.eos_id]
        return np.array(ids, dtype=np.int64)

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.tokens[int(i)] for i in ids]


def context_windows(
    ids: np.ndarray,
    left: int,
    right: int,
    pad_id: int,
    segment_ids: np.ndarray | None = None,
) -> np.ndarray:
    """The ids around each position: row ``i`` is ``ids[i - left : i + right + 1]``.

    Positions before the start or after the end (or, with ``segment_ids``, in another segment
    such as another sentence) read ``pad_id``. A window tagger uses ``left = right = 2``; an
    n-gram language model uses ``left = n - 1, right = 0`` and predicts the last column from
    the others.

    Returns
    -------
    ndarray of int64, shape (len(ids), left + 1 + right)

    Examples
    --------
    >>> context_windows(np.array([5, 6, 7, 8]), 1, 0, pad_id=-1, segment_ids=np.array([0, 0, 1, 1]))
    array([[-1,  5],
           [ 5,  6],
           [-1,  7],
           [ 7,  8]])
    """
    ids = np.asarray(ids, dtype=np.int64)
    positions = np.arange(len(ids))[:, None] + np.arange(-left, right + 1)[None, :]
    inside = (positions >= 0) & (positions < len(ids))
    clipped = np.clip(positions, 0, max(len(ids) - 1, 0))
    if segment_ids is not None:
        segment_ids = np.asarray(segment_ids)
        if segment_ids.shape != ids.shape:
            raise ValueError("segment_ids must have the shape of ids")
        inside &= segment_ids[clipped] == segment_ids[:, None]
    if len(ids) == 0:
        return np.empty((0, left + 1 + right), dtype=np.int64)
    return np.where(inside, ids[clipped], np.int64(pad_id))


def bag_weights(padded_ids: np.ndarray, dtype="float64") -> np.ndarray:
    """Averaging weights for bags padded with -1: ``1 / len`` on real entries, 0 on padding.

    A row with no real entries gets all zeros (its average is the zero vector).
    """
    real = np.asarray(padded_ids) >= 0
    sizes = real.sum(axis=1, keepdims=True)
    return np.where(real, 1.0 / np.maximum(sizes, 1), 0.0).astype(dtype)


def pad_bags(bags: Sequence[Sequence[int]], dtype="float64") -> tuple[np.ndarray, np.ndarray]:
    """Bags of ids (one per line) as a rectangle padded with -1, plus averaging weights.

    Returns
    -------
    ids : ndarray of int64, shape (len(bags), kmax)
        Row ``r`` holds bag ``r`` then -1s; ``kmax`` is the largest bag size (at least 1).
    weights : ndarray, shape (len(bags), kmax)
        ``1 / len(bag)`` on real entries and 0 on padding, so ``(weights[..., None] *
        E[ids]).sum(1)`` averages embedding rows (the padding row ``E[-1]`` gets weight 0).
    """
    width = max([len(bag) for bag in bags] + [1])
    ids = np.full((len(bags), width), -1, dtype=np.int64)
    for row, bag in enumerate(bags):
        ids[row, : len(bag)] = bag
    return ids, bag_weights(ids, dtype)


# SplitMix64 finaliser constants: a fixed integer mixer, the same on every run and platform
# (Python's hash() of str is salted per process; ids are ints, so no strings are hashed).
_MIX1, _MIX2, _GOLDEN = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB), 0x9E3779B9


def _mix64(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> np.uint64(30))
    x = x * _MIX1
    x = x ^ (x >> np.uint64(27))
    x = x * _MIX2
    return x ^ (x >> np.uint64(31))


def bigram_buckets(ids: np.ndarray, n_buckets: int, offset: int = 0) -> np.ndarray:
    """Hashed ids of the word bigrams ``(ids[i], ids[i + 1])``, in ``offset .. offset +
    n_buckets - 1``.

    The hash is a fixed 64-bit mix of the two ids (deterministic across runs and machines), so
    the buckets depend on the vocabulary's ids, not on the words' spelling. With ``offset =
    len(vocab)`` the bigram rows follow the word rows in one embedding table, as in fastText.

    Examples
    --------
    >>> b = bigram_buckets(np.array([3, 1, 4, 1]), n_buckets=10, offset=100)
    >>> len(b), bool(((b >= 100) & (b < 110)).all())
    (3, True)
    """
    if n_buckets < 1:
        raise ValueError("n_buckets must be at least 1")
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) < 2:
        return np.empty(0, dtype=np.int64)
    first, second = ids[:-1].astype(np.uint64), ids[1:].astype(np.uint64)
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps by design
        mixed = _mix64(_mix64(first + np.uint64(_GOLDEN)) ^ second)
    return (mixed % np.uint64(n_buckets)).astype(np.int64) + offset


def with_bigrams(ids: np.ndarray, n_buckets: int, vocab_size: int) -> np.ndarray:
    """A line's fastText features: its word ids followed by its hashed bigram ids (offset by
    ``vocab_size``), for an embedding table of ``vocab_size + n_buckets`` rows.
    """
    ids = np.asarray(ids, dtype=np.int64)
    return np.concatenate([ids, bigram_buckets(ids, n_buckets, offset=vocab_size)])
