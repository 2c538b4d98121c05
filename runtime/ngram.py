"""An interpolated Kneser-Ney n-gram language model over word ids: the count-based baseline
for neural language models.

Examples
--------
>>> import numpy as np
>>> from symgrad.runtime.ngram import KneserNeyLM
>>> train = np.array([1, 2, 3, 1, 2, 3, 1, 2, 4])
>>> lm = KneserNeyLM(vocab_size=5, order=3).fit(train)
>>> p = lm.next_probs([1, 2])           # after "1 2": mostly 3, some 4, a little of the rest
>>> round(float(p.sum()), 12), int(p.argmax())
(1.0, 3)
>>> unigram = KneserNeyLM(vocab_size=5, order=1).fit(train)
>>> bool(lm.perplexity(np.array([1, 2, 3])) < unigram.perplexity(np.array([1, 2, 3])))
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .words import context_windows

__all__ = ["KneserNeyLM"]

_MIN_DISCOUNT = 0.05


@dataclass(frozen=True)
class _Level:
    """The counts of one order ``m``: m-grams and their (m-1)-word contexts, keys sorted.

    An m-gram ``(w_1, .., w_m)`` is the integer ``sum_j w_j * V**(m - j)`` (its context is
    ``key // V``), so lookups are ``searchsorted`` over int64 arrays.
    """

    gram_keys: np.ndarray
    gram_counts: np.ndarray
    context_keys: np.ndarray
    context_totals: np.ndarray  # sum over w of count(context, w)
    context_types: np.ndarray  # number of distinct w after the context
    discount: float


class KneserNeyLM:
    """Interpolated Kneser-Ney smoothing (Chen & Goodman 1998) of order ``n``.

    The highest order uses raw counts, each lower order the *continuation* counts
    ``N1+(. h w)`` (in how many distinct contexts a word follows ``h``); every order
    interpolates with the one below,

        p_m(w | h) = (max(c(h w) - D_m, 0) + D_m * N1+(h .) * p_{m-1}(w | h')) / c(h .),

    falling back to ``p_{m-1}`` when ``h`` was never seen. The unigram level interpolates with
    the uniform distribution over the ``vocab_size`` ids, so every id, seen or not, has a
    positive probability and each conditional distribution sums to 1. ``D_m`` is
    ``n1 / (n1 + 2 n2)`` from that order's counts of counts (at least 0.05) unless
    ``discount`` is given.

    ``order=1`` is the unigram model (absolute discounting on raw counts with the uniform
    floor): the baseline to beat.

    Out-of-vocabulary words should be mapped to an ``<unk>`` id before fitting
    (``WordVocab.encode`` does); ``<unk>`` is then an ordinary word whose probability is
    estimated from the training occurrences of rare words, so held-out perplexities are
    comparable only between models over the same vocabulary.

    The ids are one stream: a token's history is the ``n - 1`` ids before it in the array
    given (fewer at its start). Put ``</s>`` ids between sentences to model line ends.
    """

    def __init__(self, vocab_size: int, order: int = 3, discount: float | None = None):
        if order < 1:
            raise ValueError("order must be at least 1")
        if float(vocab_size) ** order >= 2.0**62:
            raise ValueError(f"vocab_size**order must fit in int64 keys ({vocab_size}**{order})")
        if discount is not None and not 0.0 < discount <= 1.0:
            raise ValueError("discount must be in (0, 1] (so that probabilities sum to 1)")
        self.vocab_size, self.order, self.fixed_discount = vocab_size, order, discount
        self.levels: list[_Level] = []

    def fit(self, ids: np.ndarray) -> KneserNeyLM:
        """Count the n-grams of ``ids`` (ints in ``0 .. vocab_size - 1``); returns ``self``."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0 or ids.min() < 0 or ids.max() >= self.vocab_size:
            raise ValueError("ids must be non-empty and in 0 .. vocab_size - 1")
        V, n = self.vocab_size, self.order
        keys = _gram_keys(ids, n, V)  # keys[m - 1]: the m-grams starting at each position
        levels = []
        for m in range(1, n + 1):
            if m == n:
                grams, counts = np.unique(keys[m - 1], return_counts=True)
            else:
                # Continuation counts: each distinct (m+1)-gram counts once for its last m words.
                longer = np.unique(keys[m])
                grams, counts = np.unique(longer % V**m, return_counts=True)
            levels.append(self._level(grams, counts))
        self.levels = levels
        return self

    def _level(self, grams: np.ndarray, counts: np.ndarray) -> _Level:
        contexts, where = np.unique(grams // self.vocab_size, return_inverse=True)
        n1, n2 = np.count_nonzero(counts == 1), np.count_nonzero(counts == 2)
        # Floored so the uniform floor keeps every id possible even without singletons.
        estimated = max(n1 / (n1 + 2 * n2) if n1 + n2 else 0.5, _MIN_DISCOUNT)
        return _Level(
            gram_keys=grams,
            gram_counts=counts,
            context_keys=contexts,
            context_totals=np.bincount(where, weights=counts, minlength=len(contexts)),
            context_types=np.bincount(where, minlength=len(contexts)).astype(np.float64),
            discount=self.fixed_discount if self.fixed_discount is not None else estimated,
        )

    def _probs(self, histories: np.ndarray, words: np.ndarray) -> np.ndarray:
        """``p(words[i] | histories[i])``; ``histories`` is ``(N, order - 1)``, the previous
        word last, -1 where there is no word (the start of the stream)."""
        if not self.levels:
            raise RuntimeError("fit the model first")
        V = self.vocab_size
        unigram = self.levels[0]
        if len(unigram.gram_keys) == 0:  # a training stream too short for one continuation
            p = np.full(len(words), 1.0 / V)
        else:
            total, types, D = unigram.context_totals[0], unigram.context_types[0], unigram.discount
            counts = _lookup(unigram.gram_keys, unigram.gram_counts, words)
            p = (np.maximum(counts - D, 0.0) + D * types / V) / total
        context = np.zeros(len(words), dtype=np.int64)
        known = np.ones(len(words), dtype=bool)
        for m in range(2, self.order + 1):
            previous = histories[:, self.order - m]  # the word m - 1 places back
            known &= previous >= 0
            context = context + np.maximum(previous, 0) * V ** (m - 2)
            level = self.levels[m - 1]
            totals = _lookup(level.context_keys, level.context_totals, context)
            types = _lookup(level.context_keys, level.context_types, context)
            counts = _lookup(level.gram_keys, level.gram_counts, context * V + words)
            seen = known & (totals > 0)
            D = level.discount
            smoothed = (np.maximum(counts - D, 0.0) + D * types * p) / np.where(seen, totals, 1.0)
            p = np.where(seen, smoothed, p)
        return p

    def log_probs(self, ids: np.ndarray) -> np.ndarray:
        """Natural-log probability of each id given the ids before it in ``ids``."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError("ids must be in 0 .. vocab_size - 1")
        windows = context_windows(ids, self.order - 1, 0, pad_id=-1)
        return np.log(self._probs(windows[:, :-1], ids))

    def log_prob(self, ids: np.ndarray) -> float:
        """The log-probability (nats) of the whole sequence."""
        return float(self.log_probs(ids).sum())

    def perplexity(self, ids: np.ndarray, exclude: Sequence[int] = ()) -> float:
        """``exp`` of the mean negative log-probability per token, skipping target ids in
        ``exclude`` (e.g. a boundary token the model is not judged on); they still serve as
        history.
        """
        ids = np.asarray(ids, dtype=np.int64)
        scored = ~np.isin(ids, np.asarray(exclude, dtype=np.int64))
        return float(np.exp(-self.log_probs(ids)[scored].mean()))

    def next_probs(self, context: Sequence[int]) -> np.ndarray:
        """The distribution of the next id after ``context`` (its last ``order - 1`` ids)."""
        history = np.full(self.order - 1, -1, dtype=np.int64)
        tail = np.asarray(context, dtype=np.int64)[max(0, len(context) - (self.order - 1)) :]
        if self.order > 1 and len(tail):
            history[-len(tail) :] = tail
        words = np.arange(self.vocab_size, dtype=np.int64)
        return self._probs(np.broadcast_to(history, (len(words), len(history))), words)


def _gram_keys(ids: np.ndarray, n: int, V: int) -> list[np.ndarray]:
    """``keys[m - 1][i]`` is the key of ``ids[i : i + m]`` for every full m-gram, m = 1..n."""
    keys = [ids.copy()]
    for m in range(2, n + 1):
        keys.append(keys[-1][:-1] * V + ids[m - 1 :])
    return keys


def _lookup(sorted_keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """``values`` at ``queries`` in ``sorted_keys``, 0 where a query is absent."""
    if len(sorted_keys) == 0:
        return np.zeros(len(queries))
    at = np.minimum(np.searchsorted(sorted_keys, queries), len(sorted_keys) - 1)
    return np.where(sorted_keys[at] == queries, values[at], 0).astype(np.float64)
