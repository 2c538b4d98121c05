"""Word tokenizer, WordVocab, context windows, padded bags and hashed bigrams (pure NumPy)."""

import doctest

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from symgrad.runtime import words
from symgrad.runtime.text import data_dir
from symgrad.runtime.words import (
    WordVocab,
    bag_weights,
    bigram_buckets,
    context_windows,
    pad_bags,
    tokenize,
    with_bigrams,
)

SHAKESPEARE = data_dir() / "tinyshakespeare.txt"
needs_text = pytest.mark.skipif(
    not SHAKESPEARE.exists(), reason=f"{SHAKESPEARE} is absent (set SYMGRAD_DATA_DIR)"
)


def test_docstring_examples():
    assert doctest.testmod(words).failed == 0


@pytest.mark.parametrize(
    "text, expected",
    [
        ("O'er the hills", ["o'er", "the", "hills"]),
        (
            "We'll have corn; is't a verdict?",
            ["we'll", "have", "corn", ";", "is't", "a", "verdict", "?"],
        ),  # noqa: E501
        ("'Tis o' the clock", ["'tis", "o'", "the", "clock"]),
        ("'Ay,' quoth he", ["'", "ay", ",", "'", "quoth", "he"]),
        ("lovers' vows", ["lovers", "'", "vows"]),
        ("well-met--sir...", ["well", "-", "met", "--", "sir", "..."]),
        ("First Citizen:\nSpeak!", ["first", "citizen", ":", "speak", "!"]),
        ("", []),
    ],
)
def test_tokenize_cases(text, expected):
    assert tokenize(text) == expected


def test_tokenize_keeps_case_on_request():
    assert tokenize("Romeo, O ROMEO", lower=False) == ["Romeo", ",", "O", "ROMEO"]


@given(st.text(alphabet="abAB'-., !?\n:;_9", max_size=60))
def test_tokenize_loses_only_white_space(text):
    tokens = tokenize(text, lower=False)
    assert "".join(tokens) == "".join(text.split())
    assert all(t and not any(c.isspace() for c in t) for t in tokens)


def test_vocab_order_counts_and_unk():
    tokens = "b a c a b a d".split()
    vocab = WordVocab.build(tokens, min_count=2)
    assert vocab.tokens == ("<unk>", "a", "b")
    assert vocab.counts.tolist() == [2, 3, 2]  # <unk> counts the dropped c and d
    assert vocab.counts.sum() == len(tokens)
    assert vocab.encode(["a", "c", "zzz"]).tolist() == [1, 0, 0]
    assert vocab.id("b") == 2 and vocab.unk_id == 0 and vocab.pad_id is None


def test_vocab_ties_by_token_and_max_size():
    vocab = WordVocab.build("z y x z y x w".split(), max_size=4, pad=True)
    # counts: x, y, z twice, w once; the two slots left after <pad>, <unk> go to x, y.
    assert vocab.tokens == ("<pad>", "<unk>", "x", "y")
    assert vocab.counts.tolist() == [0, 3, 2, 2]
    with pytest.raises(ValueError):
        WordVocab.build(["a"], max_size=1, pad=True)


def test_vocab_boundaries():
    vocab = WordVocab.build("a b a".split(), boundaries=True)
    assert vocab.tokens[:3] == ("<unk>", "<s>", "</s>")
    assert vocab.encode(["b"], add_boundaries=True).tolist() == [1, 4, 2]
    assert vocab.decode([1, 3, 2]) == ["<s>", "a", "</s>"]
    with pytest.raises(ValueError):
        WordVocab.build(["a"]).encode(["a"], add_boundaries=True)
    with pytest.raises(ValueError):
        WordVocab.build(["a", "<unk>"])


@given(st.lists(st.sampled_from("abcdefg"), max_size=40), st.randoms(use_true_random=False))
def test_vocab_is_independent_of_token_order(tokens, rnd):
    shuffled = list(tokens)
    rnd.shuffle(shuffled)
    one, two = WordVocab.build(tokens), WordVocab.build(shuffled)
    assert one.tokens == two.tokens and one.counts.tolist() == two.counts.tolist()
    assert one.decode(one.encode(tokens)) == tokens
    assert (np.diff(one.counts[1:]) <= 0).all()  # most frequent first


@given(
    st.lists(st.integers(0, 9), max_size=12),
    st.integers(0, 3),
    st.integers(0, 3),
    st.lists(st.integers(0, 2), min_size=12, max_size=12),
)
def test_context_windows_match_a_loop(ids, left, right, segments):
    ids = np.array(ids, dtype=np.int64)
    segment_ids = np.sort(np.array(segments[: len(ids)]))
    got = context_windows(ids, left, right, pad_id=-7, segment_ids=segment_ids)
    assert got.shape == (len(ids), left + 1 + right) and got.dtype == np.int64
    for i in range(len(ids)):
        for col, j in enumerate(range(i - left, i + right + 1)):
            inside = 0 <= j < len(ids) and segment_ids[j] == segment_ids[i]
            assert got[i, col] == (ids[j] if inside else -7)


def test_context_windows_for_ngrams():
    ids = np.array([3, 4, 5])
    assert context_windows(ids, 2, 0, pad_id=0).tolist() == [[0, 0, 3], [0, 3, 4], [3, 4, 5]]


@given(st.lists(st.lists(st.integers(0, 50), max_size=6), max_size=6))
def test_pad_bags_average(bags):
    ids, weights = pad_bags(bags)
    assert ids.shape == weights.shape == (len(bags), max([len(b) for b in bags] + [1]))
    assert ids.dtype == np.int64
    E = np.arange(51.0)[:, None] * np.array([[1.0, -2.0]])  # row r is (r, -2r)
    E = np.vstack([E, [[1e9, 1e9]]])  # what E[-1] reads at padding: must get weight 0
    averaged = (weights[..., None] * E[ids]).sum(axis=1)
    for row, bag in enumerate(bags):
        assert (ids[row, len(bag) :] == -1).all()
        expected = E[bag].mean(axis=0) if bag else np.zeros(2)
        np.testing.assert_allclose(averaged[row], expected)
    np.testing.assert_array_equal(bag_weights(ids), weights)


def test_bigram_buckets_are_fixed_and_in_range():
    ids = np.array([0, 1, 2, 3, 2, 3, 0])
    buckets = bigram_buckets(ids, n_buckets=1000)
    # Pinned: a change of hash changes every trained fastText model's features.
    assert buckets.tolist() == PINNED_BUCKETS
    assert buckets[2] == buckets[4]  # the bigram (2, 3) twice
    big = bigram_buckets(np.random.default_rng(0).integers(0, 5000, 10_000), 97, offset=10)
    assert big.min() >= 10 and big.max() < 107
    assert np.bincount(big - 10).min() > 0.5 * len(big) / 97  # spread over all buckets
    assert bigram_buckets(np.array([5]), 10).tolist() == []
    assert bigram_buckets(np.array([1, 2]), 2**20) != bigram_buckets(np.array([2, 1]), 2**20)


PINNED_BUCKETS = [980, 316, 479, 835, 479, 902]


def test_with_bigrams():
    feats = with_bigrams(np.array([4, 7, 1]), n_buckets=50, vocab_size=10)
    assert feats[:3].tolist() == [4, 7, 1] and len(feats) == 5
    assert ((feats[3:] >= 10) & (feats[3:] < 60)).all()


@needs_text
def test_vocab_of_the_plays():
    tokens = tokenize(SHAKESPEARE.read_text()[:200_000])
    vocab = WordVocab.build(tokens, min_count=3, pad=True)
    assert vocab.tokens[:2] == ("<pad>", "<unk>")
    assert vocab.tokens[2] == ","  # the most frequent token of the plays
    assert {"o'er", "'tis", "we'll", "menenius"} <= set(vocab.tokens)
    ids = vocab.encode(tokens)
    assert np.bincount(ids, minlength=len(vocab)).tolist() == vocab.counts.tolist()
