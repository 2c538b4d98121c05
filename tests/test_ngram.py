"""Interpolated Kneser-Ney n-gram model: normalisation, a hand-worked case, and held-out
Shakespeare against the unigram model."""

import doctest

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from symgrad.runtime import ngram
from symgrad.runtime.ngram import KneserNeyLM
from symgrad.runtime.text import data_dir
from symgrad.runtime.words import WordVocab, tokenize

SHAKESPEARE = data_dir() / "tinyshakespeare.txt"
needs_text = pytest.mark.skipif(
    not SHAKESPEARE.exists(), reason=f"{SHAKESPEARE} is absent (set SYMGRAD_DATA_DIR)"
)


def test_docstring_examples():
    assert doctest.testmod(ngram).failed == 0


def test_hand_worked_bigram():
    # Bigrams of 0 1 0 1 2: (0 1) twice, (1 0), (1 2). Every word ends one distinct bigram, so
    # the continuation unigram is (1 - D)/3 + D * 3/3 * 1/3 = 1/3 each with D = 1/2. After 0:
    # c(0 .) = 2, one type; p(1 | 0) = (2 - D + D * 1/3) / 2 = 5/6, p(0 | 0) = p(2 | 0) = 1/12.
    lm = KneserNeyLM(vocab_size=3, order=2, discount=0.5).fit(np.array([0, 1, 0, 1, 2]))
    np.testing.assert_allclose(lm.next_probs([0]), [1 / 12, 5 / 6, 1 / 12])
    np.testing.assert_allclose(lm.next_probs([]), [1 / 3, 1 / 3, 1 / 3])
    # After 2 (never a context): back off to the unigram level.
    np.testing.assert_allclose(lm.next_probs([2]), [1 / 3, 1 / 3, 1 / 3])
    np.testing.assert_allclose(lm.log_probs(np.array([0, 1])), np.log([1 / 3, 5 / 6]))


@given(
    st.lists(st.integers(0, 6), min_size=1, max_size=60),
    st.integers(1, 4),
    st.lists(st.integers(0, 7), max_size=4),
    st.one_of(st.none(), st.floats(0.05, 1.0)),
)
def test_every_context_gives_a_distribution(train, order, context, discount):
    V = 8  # id 7 never occurs in training
    lm = KneserNeyLM(V, order=order, discount=discount).fit(np.array(train))
    p = lm.next_probs(context)
    assert p.shape == (V,) and (p > 0).all()
    np.testing.assert_allclose(p.sum(), 1.0, rtol=1e-12)
    # log_probs of a sequence reads the same conditionals as next_probs.
    sequence = np.array([*context, 3])
    assert np.isclose(lm.log_probs(sequence)[-1], np.log(p[3]), rtol=1e-12)


def test_perplexity_exclude_and_errors():
    lm = KneserNeyLM(4, order=2).fit(np.array([0, 1, 2, 0, 1, 2, 3]))
    ids = np.array([0, 1, 2, 3])
    all_tokens = lm.perplexity(ids)
    assert np.isclose(all_tokens, np.exp(-lm.log_prob(ids) / 4))
    without_3 = lm.perplexity(ids, exclude=[3])
    assert np.isclose(without_3, np.exp(-lm.log_probs(ids)[:3].mean()))
    with pytest.raises(ValueError):
        lm.log_probs(np.array([4]))
    with pytest.raises(ValueError):
        KneserNeyLM(4).fit(np.array([5]))
    with pytest.raises(ValueError):
        KneserNeyLM(4, discount=1.5)
    with pytest.raises(RuntimeError):
        KneserNeyLM(4).next_probs([])


@needs_text
def test_beats_the_unigram_model_on_held_out_shakespeare():
    tokens = tokenize(SHAKESPEARE.read_text()[:300_000])
    cut = int(0.9 * len(tokens))  # by position: the held-out speeches are unseen
    vocab = WordVocab.build(tokens[:cut], min_count=2)
    train, held = vocab.encode(tokens[:cut]), vocab.encode(tokens[cut:])
    assert 0 < (held == vocab.unk_id).mean() < 0.15  # <unk> is a real, trained word
    perplexity = {
        n: KneserNeyLM(len(vocab), order=n).fit(train).perplexity(held) for n in (1, 2, 3)
    }
    assert perplexity[3] < perplexity[2] < 0.7 * perplexity[1]
    assert 50 < perplexity[3] < 400  # a sanity range for word-level perplexity here
