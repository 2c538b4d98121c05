"""word2vec with negative sampling written by hand in NumPy: the reference symgrad is checked
and timed against (``examples/word2vec.py``, ``benchmarks/bench_word2vec.py``).

Both steps minimise the same loss as the symgrad model, the mean over a batch of ``n`` examples
of ``-Σ_j log σ(sign_j · u_{t_j} · h)`` (``t_0`` the positive target, ``t_1..t_K`` the
negatives, ``sign`` ``+1`` then ``-1``), with plain SGD. Like the compiled step they compute
every gradient from the tables *before* the update, then add ``-lr · gradient`` to the touched
rows only (``np.add.at``, which sums the contributions of a row that occurs several times in
a batch); no ``(V, d)`` array is formed.

Skip-gram: ``h = E_in[center]``. CBOW: ``h = Σ_j w_j E_in[context_j]`` with ``w = 1/len`` on the
real context ids and ``-1`` padding (weight 0, never read or written). The context rows get the
exact gradient ``w_j · ∂L/∂h``; the original C code adds the undivided ``∂L/∂h`` to each of
them, which is not the gradient of the mean.
"""

from __future__ import annotations

import numpy as np

__all__ = ["cbow_step", "log_sigmoid", "sigmoid", "skipgram_step"]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))``; an overflowing ``exp`` gives the right limit 0."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    """``log σ(x) = -log(1 + exp(-x))``, stable for large ``|x|``."""
    return -np.logaddexp(0.0, -x)


def _output_side(E_out, targets, signs, h):
    """Scores of each example's targets, the loss, ``∂L/∂h`` and the output rows' gradients."""
    n = len(targets)
    U = E_out[targets]  # (n, 1+K, d): a copy, so later writes to E_out cannot change it
    scores = np.einsum("nkd,nd->nk", U, h)
    z = signs * scores
    loss = -log_sigmoid(z).sum() / n
    # d/dS of -log σ(sign·S)/n is -sign·σ(-sign·S)/n.
    dscores = -signs * sigmoid(-z) / n
    dh = np.einsum("nk,nkd->nd", dscores, U)
    dU = dscores[:, :, None] * h[:, None, :]
    return loss, dh, dU


def skipgram_step(
    E_in: np.ndarray,
    E_out: np.ndarray,
    center: np.ndarray,
    targets: np.ndarray,
    signs: np.ndarray,
    lr: float,
) -> float:
    """One SGD step of skip-gram with negative sampling; updates ``E_in``, ``E_out`` in place.

    Parameters
    ----------
    E_in, E_out : ndarray, shape (V, d)
        Input (word) and output (context) vectors.
    center : ndarray of int, shape (n, 1)
        The input word of each example.
    targets : ndarray of int, shape (n, 1 + K)
        The positive context word, then ``K`` negative samples.
    signs : ndarray, shape (n, 1 + K)
        ``+1`` for the positive column, ``-1`` for the negatives.
    lr : float
        Learning rate of the mean loss.

    Returns
    -------
    float
        The loss before the update.
    """
    rows = center[:, 0]
    h = E_in[rows]
    loss, dh, dU = _output_side(E_out, targets, signs, h)
    np.add.at(E_out, targets, -lr * dU)
    np.add.at(E_in, rows, -lr * dh)
    return float(loss)


def cbow_step(
    E_in: np.ndarray,
    E_out: np.ndarray,
    context: np.ndarray,
    weights: np.ndarray,
    targets: np.ndarray,
    signs: np.ndarray,
    lr: float,
) -> float:
    """One SGD step of CBOW with negative sampling; updates ``E_in``, ``E_out`` in place.

    ``context`` is ``(n, 2w)`` padded with ``-1`` and ``weights`` its ``1/len`` averaging
    weights (0 on padding); the other arguments are those of :func:`skipgram_step`.
    """
    real = context >= 0
    # Padding reads row 0 (any real row would do: its weight is 0) and is never written.
    rows = np.where(real, context, 0)
    h = np.einsum("nk,nkd->nd", weights, E_in[rows])
    loss, dh, dU = _output_side(E_out, targets, signs, h)
    np.add.at(E_out, targets, -lr * dU)
    dcontext = weights[:, :, None] * dh[:, None, :]
    np.add.at(E_in, context[real], -lr * dcontext[real])
    return float(loss)
