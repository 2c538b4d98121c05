"""Lowerings of the ``symgrad.nn`` embedding vocabulary: integer index inputs and the gathers.

Same duck-typed interface as :mod:`symgrad.compiler.lower_nn` (``symgrad.nn`` binds these to its
classes): an index input is any ``MatrixSymbol`` subclass with ``is_index_input``.
"""

from __future__ import annotations

from ..ir.node import Node
from ..ir.ops_gather import bag_rows, gather_dot, gather_rows
from ..ir.ops_hsoftmax import hsoftmax_nll
from ..ir.types import INT, as_dim


def lower_indices(lowerer, expr) -> Node:
    shape = tuple(as_dim(d) for d in expr.shape)
    return lowerer.input_of(expr, expr.name, shape, kind=INT)


def lower_embedding(lowerer, expr) -> Node:
    table, ids = expr.args
    return gather_rows(lowerer.lower(table), lowerer.lower(ids))


def lower_embedding_bag(lowerer, expr) -> Node:
    table, ids, weights = (lowerer.lower(a) for a in expr.args)
    return bag_rows(table, ids, weights)


def lower_embedding_scores(lowerer, expr) -> Node:
    table, ids, h = (lowerer.lower(a) for a in expr.args)
    return gather_dot(table, ids, h)


def lower_hierarchical_softmax_nll(lowerer, expr) -> Node:
    table, paths, signs, h = (lowerer.lower(a) for a in expr.args)
    return hsoftmax_nll(table, paths, signs, h)
