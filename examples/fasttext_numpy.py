"""A fastText classifier's training step written by hand in NumPy: the reference for symgrad's
compiled step (``examples/fasttext_classify.py``) in ``tests/test_fasttext.py`` and
``benchmarks/bench_fasttext.py``.

The model: the hidden vector of a line is the weighted sum (the mean, with ``1/len`` weights) of
the embedding rows of its words and hashed word bigrams, ``h_i = Σ_j w_ij E[ids_ij]`` (ids
padded with -1, weight 0 there). Two output layers:

* full softmax: ``loss = mean_i -log softmax(h_i W + b)[y_i]``;
* hierarchical softmax: ``loss = mean_i -Σ_l log σ(s_il U[p_il] · h_i)`` over the internal nodes
  ``p_il`` on the path of class ``y_i`` with branch signs ``s_il`` (0 on padding).

Each step computes every gradient from the old parameters, then applies plain SGD,
``θ ← θ − lr·∂loss/∂θ``: dense for ``W`` and ``b``, a scatter-add (``np.add.at``) into the
touched rows only for the tables ``E`` and ``U``, as fastText does.

Examples
--------
>>> import numpy as np
>>> E, W, b = np.eye(3), np.zeros((3, 2)), np.zeros((1, 2))
>>> ids, weights = np.array([[0, 2], [1, -1]]), np.array([[0.5, 0.5], [1.0, 0.0]])
>>> bag_mean(E, ids, weights).tolist()
[[0.5, 0.0, 0.5], [0.0, 1.0, 0.0]]
>>> loss = full_softmax_step(E, W, b, ids, weights, np.array([1, 0]), lr=1.0)
>>> round(loss, 6), b.tolist()
(0.693147, [[0.0, 0.0]])
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "bag_mean",
    "full_softmax_loss",
    "full_softmax_step",
    "hierarchical_softmax_loss",
    "hierarchical_softmax_step",
]


def bag_mean(E: np.ndarray, ids: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``H[i] = Σ_j weights[i, j] E[ids[i, j]]``, skipping padding (``ids == -1``).

    Parameters
    ----------
    E : ndarray, shape (V, d)
    ids : ndarray of int, shape (n, m)
        Row ids, -1 on padding.
    weights : ndarray, shape (n, m)

    Returns
    -------
    ndarray, shape (n, d)
    """
    real = ids >= 0
    # E[-1] is a real row: mask the weight rather than trust it to be 0 on padding.
    return np.einsum("nm,nmd->nd", np.where(real, weights, 0.0).astype(E.dtype), E[ids])


def _add_rows(table: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
    """``table[rows[i]] += values[i]``, summing repeated rows (a sparse scatter-add).

    ``np.add.at`` on the flattened table with one index per element: NumPy's 1-D fast path,
    about twice as fast here as ``np.add.at(table, rows, values)`` on whole rows.
    """
    if not table.flags.c_contiguous:
        raise ValueError("the table must be C-contiguous (its flat view is updated in place)")
    width = table.shape[1]
    flat = (rows[:, None] * width + np.arange(width)).ravel()
    np.add.at(table.reshape(-1), flat, values.astype(table.dtype, copy=False).ravel())


def _scatter_bag_gradient(E, ids, weights, dH, lr) -> None:
    # dloss/dE[r] = sum over (i, j) with ids[i, j] = r of weights[i, j] dH[i].
    rows, cols = np.nonzero(ids >= 0)
    delta = (weights[rows, cols].astype(E.dtype)[:, None] * dH[rows]) * E.dtype.type(-lr)
    _add_rows(E, ids[rows, cols], delta)


def _log_softmax(Z: np.ndarray) -> np.ndarray:
    shifted = Z - Z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def full_softmax_loss(E, W, b, ids, weights, labels) -> float:
    """The mean softmax cross-entropy of the labels (no update)."""
    logp = _log_softmax(bag_mean(E, ids, weights) @ W + b)
    return float(-logp[np.arange(len(labels)), labels].mean())


def full_softmax_step(E, W, b, ids, weights, labels, lr: float) -> float:
    """One SGD step of the full-softmax classifier; ``E``, ``W``, ``b`` change in place.

    Parameters
    ----------
    E : ndarray, shape (V, d)
        The word and bigram table (row-sparse update).
    W : ndarray, shape (d, k)
    b : ndarray, shape (1, k)
    ids, weights : ndarray, shape (n, m)
        The padded bags and their ``1/len`` weights (``symgrad.runtime.words.pad_bags``).
    labels : ndarray of int, shape (n,)
    lr : float

    Returns
    -------
    float
        The loss before the update.
    """
    n = len(labels)
    H = bag_mean(E, ids, weights)
    logp = _log_softmax(H @ W + b)
    loss = float(-logp[np.arange(n), labels].mean())
    dZ = np.exp(logp)
    dZ[np.arange(n), labels] -= 1.0
    dZ /= n
    dH = dZ @ W.T  # before W moves
    W -= lr * (H.T @ dZ)
    b -= lr * dZ.sum(axis=0, keepdims=True)
    _scatter_bag_gradient(E, ids, weights, dH, lr)
    return loss


def _path_margins(U, H, paths, signs):
    # s_il * U[p_il] . h_i; U[-1] is a real row, so padded entries are zeroed by s = 0.
    return np.einsum("nld,nd->nl", U[paths], H) * signs


def hierarchical_softmax_loss(E, U, ids, weights, paths, signs) -> float:
    """The mean hierarchical-softmax NLL of the targets whose paths are given (no update)."""
    margins = _path_margins(U, bag_mean(E, ids, weights), paths, signs)
    return float(np.where(signs != 0, np.logaddexp(0.0, -margins), 0.0).sum() / len(paths))


def hierarchical_softmax_step(E, U, ids, weights, paths, signs, lr: float) -> float:
    """One SGD step of the hierarchical-softmax classifier; ``E`` and ``U`` change in place.

    Parameters
    ----------
    E : ndarray, shape (V, d)
    U : ndarray, shape (k - 1, d)
        The internal nodes' vectors (row-sparse update: only nodes on the batch's paths).
    ids, weights : ndarray, shape (n, m)
    paths : ndarray of int, shape (n, L)
        The target class's internal nodes, root first, -1 on padding
        (``symgrad.runtime.huffman.HuffmanTree.paths[labels]``).
    signs : ndarray, shape (n, L)
        ±1 per branch, 0 on padding (``HuffmanTree.signs[labels]``).
    lr : float

    Returns
    -------
    float
        The loss before the update.
    """
    n = len(paths)
    H = bag_mean(E, ids, weights)
    margins = _path_margins(U, H, paths, signs)
    on_path = signs != 0
    loss = float(np.where(on_path, np.logaddexp(0.0, -margins), 0.0).sum() / n)
    # d/dz of -log σ(s z) is -s σ(-s z); the sigmoid through tanh never overflows.
    sigmoid_neg = 0.5 * (1.0 - np.tanh(0.5 * margins))
    dscore = np.where(on_path, -signs * sigmoid_neg, 0.0).astype(H.dtype) / n  # (n, L)
    dH = np.einsum("nl,nld->nd", dscore, U[paths])  # before U moves
    rows, cols = np.nonzero(on_path)
    _add_rows(U, paths[rows, cols], (dscore[rows, cols, None] * H[rows]) * U.dtype.type(-lr))
    _scatter_bag_gradient(E, ids, weights, dH, lr)
    return loss
