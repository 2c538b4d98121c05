"""A Huffman tree over classes for the hierarchical softmax, and its NumPy evaluation.

Each class is a leaf; the path from the root to it is a sequence of binary decisions at
internal nodes ``0 .. k-2``. With a vector ``u_j`` per internal node,

    p(class c | h) = prod_l sigmoid(signs[c, l] * u[paths[c, l]] . h),

which sums to 1 over the classes because the two branches of a node get sigmoid(z) and
sigmoid(-z). Huffman's tree makes the expected path length (the cost of one training step)
as small as possible for the class frequencies.

Examples
--------
>>> import numpy as np
>>> from symgrad.runtime.huffman import HuffmanTree
>>> tree = HuffmanTree(np.array([5, 1, 1, 3]))
>>> tree.depth.tolist()                  # the frequent class sits right under the root
[1, 3, 3, 2]
>>> tree.paths[1].tolist(), tree.signs[1].tolist()
([2, 1, 0], [-1.0, 1.0, 1.0])
>>> rng = np.random.default_rng(0)
>>> U, H = rng.normal(size=(3, 4)), rng.normal(size=(2, 4))
>>> np.exp(tree.log_probs(U, H)).sum(axis=1).round(12).tolist()
[1.0, 1.0]
"""

from __future__ import annotations

import heapq

import numpy as np

__all__ = ["HuffmanTree"]


class HuffmanTree:
    """The Huffman tree of ``k`` classes with the given counts.

    Ties between equal counts are broken by creation order (leaves in class order, then
    internal nodes in the order they are made), so equal counts always give the same tree.
    Internal node ``j`` is the ``j``-th one made; the root is ``k - 2``.

    At each internal node the first-merged (lighter) child is the ``+1`` branch, the other the
    ``-1`` branch.

    Attributes
    ----------
    paths : ndarray of int64, shape (k, L)
        The internal nodes from the root down to each class, padded with -1 (``L`` is the
        largest depth).
    signs : ndarray of float64, shape (k, L)
        +1 or -1 for the branch taken at each node, 0 on padding.
    depth : ndarray of int64, shape (k,)
        The code length of each class (0 when there is a single class).
    """

    def __init__(self, counts: np.ndarray):
        counts = np.asarray(counts)
        if counts.ndim != 1 or len(counts) == 0 or (counts < 0).any():
            raise ValueError("counts must be a non-empty 1-D array of non-negative numbers")
        k = len(counts)
        # Heap entries (count, node): node < k is a leaf (class), node >= k internal node - k.
        heap = [(counts[c].item(), c) for c in range(k)]
        heapq.heapify(heap)
        parent = np.full(2 * k - 1, -1, dtype=np.int64)
        branch = np.zeros(2 * k - 1)
        for j in range(k - 1):
            (c1, a), (c2, b) = heapq.heappop(heap), heapq.heappop(heap)
            parent[a], branch[a] = j, 1.0
            parent[b], branch[b] = j, -1.0
            heapq.heappush(heap, (c1 + c2, k + j))
        steps = [self._walk_up(c, parent, branch, k) for c in range(k)]
        self.depth = np.array([len(s) for s in steps], dtype=np.int64)
        width = int(self.depth.max())
        self.paths = np.full((k, width), -1, dtype=np.int64)
        self.signs = np.zeros((k, width))
        for c, s in enumerate(steps):
            self.paths[c, : len(s)] = [node for node, _ in s]
            self.signs[c, : len(s)] = [sign for _, sign in s]

    @staticmethod
    def _walk_up(leaf: int, parent: np.ndarray, branch: np.ndarray, k: int) -> list:
        steps, node = [], leaf
        while parent[node] >= 0:
            steps.append((int(parent[node]), float(branch[node])))
            node = k + int(parent[node])
        return steps[::-1]  # root first

    def __len__(self) -> int:
        return len(self.depth)

    @property
    def codes(self) -> np.ndarray:
        """The 0/1 code word of each class (1 for a ``-1`` branch), padded with -1."""
        return np.where(self.signs == 0, -1, (self.signs < 0).astype(np.int64))

    def log_probs(self, U: np.ndarray, H: np.ndarray, chunk: int = 2_000_000) -> np.ndarray:
        """``log p(class | h)`` for every class and every row of ``H``.

        Parameters
        ----------
        U : array of shape (k - 1, d)
            The internal nodes' vectors.
        H : array of shape (n, d)
            The hidden vectors.
        chunk : int
            Bound on the ``rows * k * L`` temporaries built at once (memory, not results).

        Returns
        -------
        ndarray of shape (n, k)
        """
        U, H = np.asarray(U), np.atleast_2d(np.asarray(H))
        if U.shape[0] != len(self) - 1:
            raise ValueError(f"U must have k - 1 = {len(self) - 1} rows, got {U.shape[0]}")
        out = np.empty((len(H), len(self)), dtype=np.result_type(U, H, np.float32))
        rows = max(1, chunk // max(1, self.paths.size))
        for start in range(0, len(H), rows):
            scores = H[start : start + rows] @ U.T  # (rows, k - 1)
            picked = scores[:, self.paths] * self.signs  # (rows, k, L); padding gives 0
            out[start : start + rows] = _log_sigmoid_masked(picked, self.signs != 0).sum(-1)
        return out

    def log_prob(self, U: np.ndarray, H: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """``log p(classes[i] | H[i])`` for each row: only the target's path, O(n * L * d).

        This is the hierarchical-softmax loss (negated), for checking a compiled op.
        """
        H, classes = np.atleast_2d(np.asarray(H)), np.asarray(classes)
        paths, signs = self.paths[classes], self.signs[classes]  # (n, L)
        scores = np.einsum("nd,nld->nl", H, np.asarray(U)[paths]) * signs
        return _log_sigmoid_masked(scores, signs != 0).sum(-1)

    def predict(self, U: np.ndarray, H: np.ndarray) -> np.ndarray:
        """The most probable class of each row of ``H`` (int64, shape (n,))."""
        return self.log_probs(U, H).argmax(axis=1)


def _log_sigmoid_masked(z: np.ndarray, mask: np.ndarray) -> np.ndarray:
    # log sigmoid(z) = -log(1 + e^-z), stable for large |z|; 0 where masked out (padding).
    return np.where(mask, -np.logaddexp(0.0, -z), 0.0)
