"""Negative sampling, subsampling, skip-gram pairs and CBOW contexts (pure NumPy)."""

import doctest

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from symgrad.runtime import sampling
from symgrad.runtime.sampling import (
    UnigramSampler,
    _alias_tables,
    cbow_contexts,
    keep_probabilities,
    skipgram_pairs,
    subsample,
)


def test_docstring_examples():
    assert doctest.testmod(sampling).failed == 0


@given(st.lists(st.integers(0, 1000), min_size=1, max_size=30).filter(lambda c: sum(c) > 0))
def test_alias_tables_hold_the_distribution(counts):
    probs = np.array(counts, dtype=float) / sum(counts)
    accept, alias = _alias_tables(probs)
    # Column j gives j with accept[j] / k and alias[j] with (1 - accept[j]) / k.
    k = len(probs)
    exact = np.bincount(np.arange(k), weights=accept / k, minlength=k)
    exact += np.bincount(alias, weights=(1 - accept) / k, minlength=k)
    np.testing.assert_allclose(exact, probs, atol=1e-12)


def test_sampler_matches_unigram_power_frequencies():
    counts = np.array([0, 1, 5, 50, 500, 5000])
    sampler = UnigramSampler(counts, power=0.75, seed=1)
    expected = np.where(counts > 0, counts**0.75, 0) / (counts[counts > 0] ** 0.75).sum()
    np.testing.assert_allclose(sampler.probs, expected)
    draws = sampler.sample((400, 1000))
    assert draws.shape == (400, 1000) and draws.dtype == np.int64
    freq = np.bincount(draws.ravel(), minlength=len(counts)) / draws.size
    assert freq[0] == 0  # count 0: never drawn
    np.testing.assert_allclose(freq, expected, atol=4 * np.sqrt(expected.max() / draws.size))


def test_sampler_is_seeded():
    counts = np.arange(1, 20)
    one, two = UnigramSampler(counts, seed=3), UnigramSampler(counts, seed=3)
    assert (one.sample(50) == two.sample(50)).all()
    assert (one.sample(50) != UnigramSampler(counts, seed=4).sample(50)).any()
    uniform = UnigramSampler(np.array([7, 0, 1]), power=0.0)
    assert uniform.probs.tolist() == [0.5, 0.0, 0.5]
    with pytest.raises(ValueError):
        UnigramSampler(np.array([0, 0]))


def test_keep_probabilities_follow_word2vec():
    counts = np.array([0, 1, 10, 1000])
    t = 1e-2
    f = counts / counts.sum()
    keep = keep_probabilities(counts, t)
    assert keep[0] == 1.0 and keep[1] == 1.0
    np.testing.assert_allclose(keep[3], np.sqrt(t / f[3]) + t / f[3])
    assert (np.diff(keep[1:]) <= 0).all()  # the more frequent, the more dropped


def test_subsample_keeps_order_and_rate():
    rng = np.random.default_rng(0)
    counts = np.array([9000, 900, 90, 10])
    ids = rng.choice(4, size=20_000, p=counts / counts.sum())
    kept = subsample(ids, counts, t=1e-3, seed=5)
    assert (kept == subsample(ids, counts, t=1e-3, seed=5)).all()
    keep = keep_probabilities(counts, 1e-3)
    for i in range(4):
        rate = (kept == i).sum() / max((ids == i).sum(), 1)
        assert abs(rate - keep[i]) < 0.05
    # Order preserved: the kept ids are a subsequence of ids.
    it = iter(ids.tolist())
    assert all(k in it for k in kept.tolist())


@given(
    st.lists(st.integers(0, 5), max_size=15),
    st.integers(1, 4),
    st.integers(0, 2**31),
    st.booleans(),
)
def test_skipgram_pairs_are_dynamic_windows(ids, window, seed, segmented):
    ids = np.array(ids, dtype=np.int64)
    segment_ids = (np.arange(len(ids)) // 4) if segmented else None
    centers, contexts = skipgram_pairs(ids, window, seed=seed, segment_ids=segment_ids)
    # Recompute the window sizes the function drew from the same seed.
    sizes = np.random.default_rng(seed).integers(1, window + 1, size=len(ids))
    expected = []
    for i in range(len(ids)):
        for j in range(i - sizes[i], i + sizes[i] + 1):
            if j == i or not 0 <= j < len(ids):
                continue
            if segment_ids is None or segment_ids[i] == segment_ids[j]:
                expected.append((ids[i], ids[j]))
    assert list(zip(centers.tolist(), contexts.tolist())) == expected


def test_skipgram_window_one_is_neighbours_and_near_words_count_more():
    ids = np.arange(6)
    centers, contexts = skipgram_pairs(ids, window=1, seed=0)
    assert (np.abs(centers - contexts) == 1).all() and len(centers) == 10
    centers, contexts = skipgram_pairs(np.arange(2000), window=5, seed=0)
    distance = np.bincount(np.abs(centers - contexts))
    assert (np.diff(distance[1:]) < 0).all()  # dynamic window: P(used) = (W - d + 1) / W


@given(st.lists(st.integers(0, 5), max_size=15), st.integers(1, 3), st.integers(0, 2**31))
def test_cbow_contexts_match_skipgram_pairs(ids, window, seed):
    ids = np.array(ids, dtype=np.int64)
    centers, contexts = cbow_contexts(ids, window, seed=seed)
    assert contexts.shape == (len(centers), 2 * window)
    present = contexts >= 0
    # Present entries first; every row has at least one.
    assert (present.any(axis=1)).all()
    assert (np.diff(present.astype(int), axis=1) <= 0).all()
    pair_centers, pair_contexts = skipgram_pairs(ids, window, seed=seed)
    flat = np.repeat(centers, present.sum(axis=1))
    assert flat.tolist() == pair_centers.tolist()
    assert contexts[present].tolist() == pair_contexts.tolist()
