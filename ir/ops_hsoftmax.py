"""Hierarchical softmax: the negative log-likelihood of a class along its path in a binary tree.

With the tree's internal nodes as rows of ``U`` (``(k - 1, d)`` for ``k`` classes), each example
``i`` carries the path of its target class as internal-node ids ``paths[i]`` (padded with ``-1``)
and the branch taken at each as a sign ``signs[i, j] = ±1``. Then

    p(class | h) = Π_j σ(signs[i, j] · U[paths[i, j]] · h),
    nll[i] = Σ_j softplus(−signs[i, j] · s[i, j]),   s = gather_dot(U, paths, H),

which costs ``O(d log k)`` per example for a balanced (or Huffman) tree instead of ``O(d k)``.
The VJP is built from the gather ops: with ``c = −signs · σ(−signs · s) · g``,
``∂H = bag_rows(U, paths, c)`` and ``∂U = scatter_outer(c, paths, H)`` (row-sparse). Padding
entries must have sign 0, which makes their ``c`` zero (the forward kernel skips them anyway).
"""

from __future__ import annotations

import sympy as sp

from . import ops_elementwise as ew
from .errors import ShapeError
from .node import Node, make
from .ops_gather import bag_rows, gather_dot, scatter_outer
from .ops_reduce import reduce_sum
from .registry import Op, register
from .types import INT, TensorType, dims_equal, shape_str

a0, a1, a2 = ew.ARGS[:3]

# σ(−sign·s) written so exp only overflows towards 1/(1 + inf) = 0.
_SIGMOID_OF_MARGIN = 1 / (1 + sp.exp(a1 * a0))


class HSoftmaxNLLOp(Op):
    """``hsoftmax_nll(U, paths, signs, H)`` → ``(n, 1)``: per-example NLL (see the module)."""

    name = "hsoftmax_nll"
    family = "gather"
    arity = 4

    def infer(self, inputs, attrs):
        table, paths, signs, h = inputs
        if paths.type.kind != INT or paths.ndim != 2:
            raise ShapeError(f"hsoftmax_nll needs integer paths (n, L), got {paths.type}")
        if table.ndim != 2 or h.ndim != 2 or signs.ndim != 2:
            raise ShapeError(
                "hsoftmax_nll needs U (k-1, d), signs (n, L) and H (n, d); got "
                f"{shape_str(table.shape)}, {shape_str(signs.shape)}, {shape_str(h.shape)}"
            )
        checks = [
            ("signs and paths shapes", signs.shape, paths.shape),
            ("H rows and paths rows", (h.shape[0],), (paths.shape[0],)),
            ("H columns and U columns", (h.shape[1],), (table.shape[1],)),
        ]
        for what, a, b in checks:
            if not all(dims_equal(x, y) for x, y in zip(a, b)):
                raise ShapeError(f"hsoftmax_nll: {what} must match, got {a} and {b}")
        return TensorType((paths.shape[0], 1))

    def vjp(self, node, cotangent):
        table, paths, signs, h = node.inputs
        s = gather_dot(table, paths, h)
        c = ew.apply(-a1 * a2 * _SIGMOID_OF_MARGIN, [s, signs, cotangent], "hsm_coef")
        d_signs = ew.apply(-a0 * a2 * _SIGMOID_OF_MARGIN, [s, signs, cotangent], "hsm_dsign")
        return [
            scatter_outer(c, paths, h, table.shape[0]),
            None,
            d_signs,
            bag_rows(table, paths, c),
        ]

    def jvp(self, node, tangents):
        table, paths, signs, h = node.inputs
        d_table, _, d_signs, d_h = tangents
        s = gather_dot(table, paths, h)
        parts = []
        if d_table is not None:
            parts.append(gather_dot(d_table, paths, h))
        if d_h is not None:
            parts.append(gather_dot(table, paths, d_h))
        total = None
        if parts:
            ds = parts[0] if len(parts) == 1 else ew.add(parts[0], parts[1])
            total = ew.apply(-a1 * a2 * _SIGMOID_OF_MARGIN, [s, signs, ds], "hsm_tangent")
        if d_signs is not None:
            term = ew.apply(-a0 * a2 * _SIGMOID_OF_MARGIN, [s, signs, d_signs], "hsm_tangent")
            total = term if total is None else ew.add(total, term)
        if total is None:
            return None
        return reduce_sum(total, (1,), keepdims=True)


hsoftmax_nll_op = register(HSoftmaxNLLOp())


def hsoftmax_nll(table: Node, paths: Node, signs: Node, h: Node) -> Node:
    """Per-example negative log-likelihood ``(n, 1)`` of the classes whose paths are given."""
    return make(hsoftmax_nll_op, (table, paths, signs, h), ())
