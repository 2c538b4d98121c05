"""Huffman tree for the hierarchical softmax: code properties and NumPy probabilities."""

import doctest
import functools
import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from symgrad.runtime import huffman
from symgrad.runtime.huffman import HuffmanTree

counts_lists = st.lists(st.integers(0, 200), min_size=2, max_size=12)


def test_docstring_examples():
    assert doctest.testmod(huffman).failed == 0


@given(counts_lists)
def test_tree_shape_and_kraft_equality(counts):
    tree = HuffmanTree(np.array(counts))
    k = len(counts)
    assert tree.paths.shape == tree.signs.shape == (k, tree.depth.max())
    assert (tree.paths[:, 0] == k - 2).all()  # every path starts at the root
    real = tree.signs != 0
    assert (real.sum(axis=1) == tree.depth).all()
    assert ((tree.paths >= 0) == real).all() and (tree.paths < k - 1).all()
    assert set(np.abs(tree.signs[real]).tolist()) == {1.0}
    # A full binary tree: Kraft's sum is exactly 1, and the codes are distinct and prefix-free.
    assert np.sum(2.0 ** -tree.depth.astype(float)) == 1.0
    codes = ["".join(str(b) for b in row if b >= 0) for row in tree.codes]
    assert not any(a != b and b.startswith(a) for a in codes for b in codes)
    assert len(set(codes)) == k


@given(counts_lists)
def test_frequent_classes_get_codes_no_longer(counts):
    tree = HuffmanTree(np.array(counts))
    for i, j in itertools.combinations(range(len(counts)), 2):
        if counts[i] > counts[j]:
            assert tree.depth[i] <= tree.depth[j]
        elif counts[j] > counts[i]:
            assert tree.depth[j] <= tree.depth[i]


@functools.cache
def _length_vectors(k: int) -> np.ndarray:
    """Every vector of code lengths 1..k-1 for k classes that a prefix code can have."""
    lengths = np.array(list(itertools.product(range(1, k), repeat=k)), dtype=float)
    return lengths[(2.0**-lengths).sum(axis=1) <= 1.0]


@given(st.lists(st.integers(1, 50), min_size=2, max_size=6))
def test_average_length_is_optimal_against_brute_force(counts):
    counts = np.array(counts)
    tree = HuffmanTree(counts)
    best = (_length_vectors(len(counts)) @ counts).min()
    assert counts @ tree.depth == best
    p = counts / counts.sum()
    entropy = -(p * np.log2(p)).sum()
    assert entropy - 1e-12 <= p @ tree.depth < entropy + 1


def test_ties_are_deterministic():
    one, two = HuffmanTree(np.full(8, 3)), HuffmanTree(np.full(8, 3))
    assert (one.paths == two.paths).all() and (one.signs == two.signs).all()
    assert one.depth.tolist() == [3] * 8  # 2^3 equal classes: a complete tree
    single = HuffmanTree(np.array([4]))
    assert single.depth.tolist() == [0] and single.paths.shape == (1, 0)
    with pytest.raises(ValueError):
        HuffmanTree(np.array([-1, 2]))


@given(counts_lists, st.integers(0, 2**31), st.integers(1, 4))
def test_probabilities_sum_to_one_and_match_a_loop(counts, seed, d):
    tree = HuffmanTree(np.array(counts))
    rng = np.random.default_rng(seed)
    U, H = rng.normal(size=(len(counts) - 1, d)) * 2, rng.normal(size=(5, d))
    log_p = tree.log_probs(U, H, chunk=7)  # tiny chunks: exercises the row loop
    np.testing.assert_allclose(np.exp(log_p).sum(axis=1), 1.0, rtol=1e-12)
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    for c in range(len(counts)):
        p = np.ones(len(H))
        for node, sign in zip(tree.paths[c, : tree.depth[c]], tree.signs[c]):
            p *= sigmoid(sign * H @ U[node])
        np.testing.assert_allclose(np.exp(log_p[:, c]), p, rtol=1e-10)
    classes = rng.integers(0, len(counts), size=len(H))
    np.testing.assert_allclose(
        tree.log_prob(U, H, classes), log_p[np.arange(len(H)), classes], rtol=1e-12
    )
    assert (tree.predict(U, H) == log_p.argmax(axis=1)).all()


def test_log_probs_are_finite_for_large_scores():
    tree = HuffmanTree(np.array([1, 2, 3, 4]))
    U = np.array([[1e4], [-1e4], [3e3]])
    log_p = tree.log_probs(U, np.array([[1.0], [-1.0]]))
    assert np.isfinite(log_p).all()
    np.testing.assert_allclose(np.exp(log_p).sum(axis=1), 1.0)
    assert tree.log_probs(U.astype(np.float32), np.ones((1, 1), np.float32)).dtype == np.float32
