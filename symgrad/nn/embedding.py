"""Embedding lookups: rows of a parameter table chosen by an integer index input.

``Indices("ids", n, k)`` declares an integer input: ``n`` examples of ``k`` ids each (a window of
words, a bag of words and bigrams, a positive context and its negative samples, a path in a
tree). An id of ``-1`` is padding: it reads a zero row and receives no gradient, so examples of
unequal length share one matrix. On top of it:

* ``embedding(E, ids)`` — ``(n, k*d)``: the ``k`` chosen rows of ``E`` (``(V, d)``) side by side
  (the concatenated window of a window tagger or of a neural language model);
* ``embedding_bag(E, ids, W)`` — ``(n, d)``: ``Σ_j W[i, j] E[ids[i, j]]``, a weighted sum of rows
  (the averaged bag of fastText and CBOW with ``W = 1/len``);
* ``embedding_scores(U, ids, H)`` — ``(n, k)``: ``U[ids[i, j]] · H[i]``, scores of each example
  against chosen rows only (negative sampling);
* ``hierarchical_softmax_nll(U, paths, signs, H)`` — ``(n, 1)``: the negative log-likelihood of
  each example's class along its path in a binary tree (``symgrad.runtime.huffman`` builds paths
  and signs).

The gradient with respect to a table is a scatter-add into the touched rows. A training step
(:func:`symgrad.compile_step`) whose update rule leaves untouched rows unchanged (SGD, Adagrad)
updates only those rows, in place; it never forms a dense ``(V, d)`` gradient.

Examples
--------
>>> import numpy as np, sympy as sp, symgrad as sg
>>> from symgrad import nn
>>> n = sp.Symbol("n")
>>> E, ids = sp.MatrixSymbol("E", 5, 2), nn.Indices("ids", n, 3)
>>> f = sg.compile(nn.sum(nn.embedding(E, ids)), wrt=[E])
>>> table = np.arange(10.0).reshape(5, 2)
>>> value, (dE,) = f.value_and_grad(E=table, ids=np.array([[0, 4, 4]]))
>>> float(value), dE[:, 0].tolist()
(35.0, [1.0, 0.0, 0.0, 0.0, 2.0])
"""

from __future__ import annotations

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixExpr
from sympy.matrices.expressions.special import OneMatrix

from ..ir.errors import ShapeError

__all__ = [
    "Embedding", "EmbeddingBag", "EmbeddingScores", "HierarchicalSoftmaxNLL", "Indices",
    "embedding", "embedding_bag", "embedding_scores", "hierarchical_softmax_nll",
]  # fmt: skip


class Indices(sp.MatrixSymbol):
    """An ``(n, k)`` matrix of integer row ids, passed at call time as an integer array.

    It can only be used to choose rows (the functions of this module); it is never
    differentiated and is left out of the default ``wrt``. ``-1`` marks padding.
    """

    #: read by the compiler: lowered as an integer input, never a gradient target
    is_index_input = True


def _same(a, b) -> bool:
    return sp.sympify(a) == sp.sympify(b)


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ShapeError(message)


def _check_ids(fn: str, ids) -> None:
    _require(
        isinstance(ids, Indices),
        f"{fn} chooses rows with an Indices matrix, got {ids!r} ({type(ids).__name__})",
    )


def _check_table(fn: str, table) -> None:
    _require(
        getattr(table, "is_Matrix", False) and not isinstance(table, Indices),
        f"{fn} needs a float matrix as its table, got {table!r}",
    )


def _check_rows_match(fn: str, name: str, x, ids) -> None:
    _require(
        _same(x.shape[0], ids.shape[0]),
        f"{fn}: {name} {x} has {x.shape[0]} rows but {ids} has {ids.shape[0]} (one per example)",
    )


class _Lookup(MatrixExpr):
    """Base: prints as the call that built it; entries are data-dependent (no ``as_explicit``)."""

    _name = ""

    def _sympystr(self, printer) -> str:
        return f"{self._name}({', '.join(printer._print(a) for a in self.args)})"

    def _latex(self, printer) -> str:
        name = self._name.replace("_", r"\_")
        args = ", ".join(printer._print(a) for a in self.args)
        return rf"\operatorname{{{name}}}\left({args}\right)"

    def _entry(self, i, j, **kwargs):
        raise ShapeError(f"{self} depends on integer data; it has no symbolic entries")


class Embedding(_Lookup):
    """``embedding(E, ids)``: the rows ``E[ids[i, 0]], ..., E[ids[i, k-1]]`` side by side."""

    _name = "embedding"

    def __new__(cls, table, ids):
        _check_table("embedding", table)
        _check_ids("embedding", ids)
        return super().__new__(cls, table, ids)

    @property
    def shape(self) -> tuple:
        table, ids = self.args
        return (ids.shape[0], ids.shape[1] * table.shape[1])


class EmbeddingBag(_Lookup):
    """``embedding_bag(E, ids, W)``: ``Σ_j W[i, j] E[ids[i, j]]`` per example."""

    _name = "embedding_bag"

    def __new__(cls, table, ids, weights):
        _check_table("embedding_bag", table)
        _check_ids("embedding_bag", ids)
        _require(
            _same(weights.shape[0], ids.shape[0]) and _same(weights.shape[1], ids.shape[1]),
            f"embedding_bag: weights {weights} of shape {weights.shape} must have the shape of "
            f"{ids}, {ids.shape}",
        )
        return super().__new__(cls, table, ids, weights)

    @property
    def shape(self) -> tuple:
        table, ids, _ = self.args
        return (ids.shape[0], table.shape[1])


class EmbeddingScores(_Lookup):
    """``embedding_scores(U, ids, H)``: ``S[i, j] = U[ids[i, j]] · H[i]``."""

    _name = "embedding_scores"

    def __new__(cls, table, ids, h):
        _check_table("embedding_scores", table)
        _check_ids("embedding_scores", ids)
        _check_rows_match("embedding_scores", "H", h, ids)
        _require(
            _same(h.shape[1], table.shape[1]),
            f"embedding_scores: H {h} has {h.shape[1]} columns but the table {table} has "
            f"{table.shape[1]}",
        )
        return super().__new__(cls, table, ids, h)

    @property
    def shape(self) -> tuple:
        return tuple(self.args[1].shape)


class HierarchicalSoftmaxNLL(_Lookup):
    """``hierarchical_softmax_nll(U, paths, signs, H)``: per-example NLL, an ``(n, 1)`` column."""

    _name = "hierarchical_softmax_nll"

    def __new__(cls, table, paths, signs, h):
        fn = "hierarchical_softmax_nll"
        _check_table(fn, table)
        _check_ids(fn, paths)
        _check_rows_match(fn, "H", h, paths)
        _require(
            _same(h.shape[1], table.shape[1]),
            f"{fn}: H {h} has {h.shape[1]} columns but the node table {table} has {table.shape[1]}",
        )
        _require(
            tuple(map(sp.sympify, signs.shape)) == tuple(map(sp.sympify, paths.shape)),
            f"{fn}: signs {signs} of shape {signs.shape} must have the shape of {paths}, "
            f"{paths.shape}",
        )
        return super().__new__(cls, table, paths, signs, h)

    @property
    def shape(self) -> tuple:
        return (self.args[1].shape[0], sp.Integer(1))


def embedding(table: sp.Basic, ids: Indices) -> Embedding:
    """The rows of ``table`` (``(V, d)``) chosen by ``ids`` (``(n, k)``), side by side.

    The result is ``(n, k*d)``: example ``i`` is ``table[ids[i, 0]], ..., table[ids[i, k-1]]``.

    Examples
    --------
    >>> import sympy as sp
    >>> from symgrad import nn
    >>> E, window = sp.MatrixSymbol("E", 1000, 50), nn.Indices("window", sp.Symbol("n"), 5)
    >>> nn.embedding(E, window).shape
    (n, 250)
    """
    return Embedding(sp.sympify(table), ids)


def embedding_bag(table: sp.Basic, ids: Indices, weights: sp.Basic | None = None) -> EmbeddingBag:
    """``Σ_j W[i, j] table[ids[i, j]]``: ``(n, d)``; without ``weights`` a plain sum of rows.

    For the mean of each bag pass ``W[i, j] = 1 / len_i`` (``symgrad.runtime.words.pad_bags``
    builds padded ids and these weights).
    """
    if weights is None:
        weights = OneMatrix(*ids.shape)
    return EmbeddingBag(sp.sympify(table), ids, sp.sympify(weights))


def embedding_scores(table: sp.Basic, ids: Indices, h: sp.Basic) -> EmbeddingScores:
    """``S[i, j] = table[ids[i, j]] · h[i]``: ``(n, k)`` scores against chosen rows only.

    Skip-gram with negative sampling scores the context word and ``K`` sampled words in one
    call, ``-sum(log_sigmoid(signs ∘ S))`` with signs ``+1`` then ``-1``.
    """
    return EmbeddingScores(sp.sympify(table), ids, sp.sympify(h))


def hierarchical_softmax_nll(
    table: sp.Basic, paths: Indices, signs: sp.Basic, h: sp.Basic
) -> HierarchicalSoftmaxNLL:
    """Per-example NLL ``-log p(class | h)`` of a hierarchical softmax: an ``(n, 1)`` column.

    ``p(class | h) = Π_j σ(signs[i, j] · table[paths[i, j]] · h[i])`` over the internal nodes on
    the class's path (``paths`` padded with ``-1``, ``signs`` ``±1`` and 0 on padding).
    ``O(d log k)`` per example for ``k`` classes.
    """
    return HierarchicalSoftmaxNLL(sp.sympify(table), paths, sp.sympify(signs), sp.sympify(h))
