"""word2vec-style sampling: negatives from the unigram^0.75 distribution, subsampling of frequent
words, skip-gram pairs and CBOW contexts with a dynamic window. All seeded and vectorised.

Examples
--------
>>> import numpy as np
>>> from symgrad.runtime.sampling import UnigramSampler, skipgram_pairs
>>> sampler = UnigramSampler(np.array([0, 10, 100, 1000]), seed=0)
>>> negatives = sampler.sample((2, 5))
>>> negatives.shape, bool((negatives > 0).all())   # id 0 has count 0: never drawn
((2, 5), True)
>>> centers, contexts = skipgram_pairs(np.array([7, 8, 9]), window=1, seed=0)
>>> sorted(zip(centers.tolist(), contexts.tolist()))
[(7, 8), (8, 7), (8, 9), (9, 8)]
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "Seed", "UnigramSampler", "cbow_contexts", "keep_probabilities", "skipgram_pairs", "subsample",
]  # fmt: skip

# An int seed, a Generator (used as is, so a caller can thread one stream through), or None.
Seed = int | np.random.Generator | None


class UnigramSampler:
    """Draws ids with probability proportional to ``counts ** power`` (Vose's alias method).

    Each draw costs one uniform integer, one uniform float and two table lookups, whatever the
    vocabulary size; building the tables is O(k).

    The positive (target) id is not excluded from the draws: with word2vec's unigram^0.75
    distribution a collision has probability p(target), rare for all but the most frequent
    words, and excluding it would make draws depend on the target (no longer one vectorised
    call). Callers who want to can mask them: ``negatives != targets[:, None]``.

    Parameters
    ----------
    counts : array of shape (k,)
        Non-negative counts (e.g. ``WordVocab.counts``); ids with count 0 are never drawn.
    power : float
        The exponent; 0.75 is Mikolov et al.'s choice, 1 the unigram distribution, 0 uniform
        over the ids with a positive count.
    seed : int, Generator or None
        Seed of the sampler's own ``numpy.random.Generator``.

    Examples
    --------
    >>> sampler = UnigramSampler(np.array([1, 1, 2]), power=1.0, seed=0)
    >>> sampler.probs.tolist()
    [0.25, 0.25, 0.5]
    >>> draws = sampler.sample(100_000)
    >>> bool(abs((draws == 2).mean() - 0.5) < 0.01)
    True
    """

    def __init__(self, counts: np.ndarray, power: float = 0.75, seed: Seed = None):
        counts = np.asarray(counts, dtype=np.float64)
        if counts.ndim != 1 or len(counts) == 0 or (counts < 0).any() or counts.sum() <= 0:
            raise ValueError("counts must be a non-empty 1-D array of non-negative numbers")
        # 0 ** 0 is 1 in NumPy: keep zero counts at zero weight for any power.
        weights = np.where(counts > 0, counts**power, 0.0)
        self.probs = weights / weights.sum()
        self.accept, self.alias = _alias_tables(self.probs)
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.probs)

    def sample(self, shape: int | tuple[int, ...]) -> np.ndarray:
        """Ids (int64) of the given shape, drawn independently."""
        columns = self.rng.integers(0, len(self.probs), size=shape)
        coins = self.rng.random(size=shape)
        return np.where(coins < self.accept[columns], columns, self.alias[columns])


def _alias_tables(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vose's alias tables: column ``j`` returns ``j`` with probability ``accept[j]``, else
    ``alias[j]``; each column holds mass ``1/k``.
    """
    k = len(probs)
    scaled = probs * k
    accept = np.ones(k)
    alias = np.arange(k, dtype=np.int64)
    small = [j for j in range(k) if scaled[j] < 1.0]
    large = [j for j in range(k) if scaled[j] >= 1.0]
    while small and large:
        j, g = small.pop(), large[-1]
        accept[j], alias[j] = scaled[j], g
        scaled[g] -= 1.0 - scaled[j]  # g pays for the rest of column j
        if scaled[g] < 1.0:
            small.append(large.pop())
    # Leftovers are 1 up to rounding: they keep their own column (accept = 1).
    return accept, alias


def keep_probabilities(counts: np.ndarray, t: float = 1e-3) -> np.ndarray:
    """The probability of keeping each occurrence of an id when subsampling frequent words.

    With ``f = count / total``, this is word2vec's ``min(1, sqrt(t / f) + t / f)``; the paper
    (Mikolov et al. 2013) writes ``min(1, sqrt(t / f))``, the released code adds ``t / f``,
    which keeps a little more of mid-frequency words. Ids with count 0 get 1 (never seen, so
    never subsampled). Typical ``t`` is 1e-3 to 1e-5.
    """
    counts = np.asarray(counts, dtype=np.float64)
    freq = counts / counts.sum()
    with np.errstate(divide="ignore"):
        ratio = np.where(freq > 0, t / freq, np.inf)
    return np.minimum(1.0, np.sqrt(ratio) + ratio)


def subsample(ids: np.ndarray, counts: np.ndarray, t: float = 1e-3, seed: Seed = None):
    """The ids that survive subsampling, in their original order (int64).

    Each occurrence is kept independently with probability ``keep_probabilities(counts,
    t)[id]``; dropping frequent words (the, and, ``,``) before building windows widens the
    effective context and speeds up training.
    """
    ids = np.asarray(ids, dtype=np.int64)
    keep = keep_probabilities(counts, t)[ids]
    return ids[np.random.default_rng(seed).random(len(ids)) < keep]


def _dynamic_windows(
    ids: np.ndarray, window: int, seed: Seed, segment_ids: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """The context ids of every position in a ``(n, 2 * window)`` array (-1 where absent) and
    the mask of present ones. Position ``i`` uses a window of ``b_i`` words on each side,
    ``b_i`` uniform in ``1..window`` (word2vec's reduced window: near words count more).
    """
    if window < 1:
        raise ValueError("window must be at least 1")
    ids = np.asarray(ids, dtype=np.int64)
    n = len(ids)
    sizes = np.random.default_rng(seed).integers(1, window + 1, size=n)
    offsets = np.concatenate([np.arange(-window, 0), np.arange(1, window + 1)])
    positions = np.arange(n)[:, None] + offsets[None, :]
    present = (np.abs(offsets)[None, :] <= sizes[:, None]) & (positions >= 0) & (positions < n)
    clipped = np.clip(positions, 0, max(n - 1, 0))
    if segment_ids is not None:
        segment_ids = np.asarray(segment_ids)
        present &= segment_ids[clipped] == segment_ids[:, None]
    contexts = np.where(present, ids[clipped], -1)
    return contexts, present


def skipgram_pairs(
    ids: np.ndarray, window: int = 5, seed: Seed = None, segment_ids: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """All (center, context) pairs of a text with a dynamic window.

    Position ``i`` draws a window size ``b_i`` uniform in ``1..window`` and pairs ``ids[i]`` with
    every id at most ``b_i`` positions away (not crossing segments when ``segment_ids`` is
    given, e.g. one segment per line). Pairs come in text order; shuffle them for SGD.

    Returns
    -------
    centers, contexts : ndarrays of int64, the same length
    """
    contexts, present = _dynamic_windows(ids, window, seed, segment_ids)
    centers = np.broadcast_to(np.asarray(ids, dtype=np.int64)[:, None], contexts.shape)
    return centers[present], contexts[present]


def cbow_contexts(
    ids: np.ndarray, window: int = 5, seed: Seed = None, segment_ids: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """CBOW examples: each center id with its context ids, padded with -1.

    The window is dynamic as in :func:`skipgram_pairs`. Positions with no context at all
    (a one-word text or segment) are dropped. ``words.bag_weights(contexts)`` gives the
    averaging weights.

    Returns
    -------
    centers : ndarray of int64, shape (m,)
    contexts : ndarray of int64, shape (m, 2 * window)
        Present context ids first (in text order), then -1s.

    Examples
    --------
    >>> centers, contexts = cbow_contexts(np.array([7, 8, 9]), window=1, seed=0)
    >>> centers.tolist(), contexts.tolist()
    ([7, 8, 9], [[8, -1], [7, 9], [8, -1]])
    """
    contexts, present = _dynamic_windows(ids, window, seed, segment_ids)
    # A stable sort of "absent" flags moves present entries to the front of each row.
    order = np.argsort(~present, axis=1, kind="stable")
    contexts = np.take_along_axis(contexts, order, axis=1)
    rows = present.any(axis=1)
    return np.asarray(ids, dtype=np.int64)[rows], contexts[rows]
