"""Hierarchical softmax: the negative log-likelihood of a class along its path in a binary tree.

With the tree's internal nodes as rows of ``U`` (``(k - 1, d)`` for ``k`` classes), each example
``i`` carries the path of its target class as internal-node ids ``paths[i]`` (padded with ``-1``)
and the branch taken at each as a sign ``signs[i, j] = ±1``. Then

    p(class | h) = Π_j σ(signs[i, j] · U[paths[i, j]] · h),
    nll[i] = Σ_j softplus(−signs[i, j] · s[i, j]),   s = gather_dot(U, paths, H),

which costs ``O(d log k)`` per example for a balanced (or Huffman) tree instead of ``O(d k)``.
The op reads the scores ``s`` (one ``gather_dot`` node, which the forward pass and the VJP
share); its VJP is ``c = −signs · σ(−signs · s) · g`` with respect to ``s``, which
``gather_dot``'s VJP turns into ``∂H = bag_rows(U, paths, c)`` and
``∂U = scatter_outer(c, paths, H)`` (row-sparse). Padding entries must have sign 0, which makes
their ``c`` zero (the forward kernel skips them anyway).
"""

from __future__ import annotations

import sympy as sp

from . import ops_elementwise as ew
from .errors import ShapeError
from .node import Node, make
from .ops_gather import gather_dot
from .ops_reduce import reduce_sum
from .registry import Op, register
from .types import INT, TensorType, dims_equal, shape_str

a0, a1, a2 = ew.ARGS[:3]

# σ(−sign·s) written so exp only overflows towards 1/(1 + inf) = 0.
_SIGMOID_OF_MARGIN = 1 / (1 + sp.exp(a1 * a0))


class HSoftmaxNLLOp(Op):
    """``hsoftmax_nll(S, paths, signs)`` → ``(n, 1)``: ``Σ_j softplus(−signs · S)`` over the
    non-padding entries of each row, from the path scores ``S = gather_dot(U, paths, H)``.

    Built on the scores rather than on ``U`` and ``H`` so that the forward pass and the VJP
    share one ``gather_dot`` node: the backward pass reads ``S`` instead of recomputing ``d``-wide
    dot products. Its VJP treats padding like any entry: there ``S = 0`` and the sign is 0, and
    ``gather_dot``'s own VJP skips padding ids.
    """

    name = "hsoftmax_nll"
    # Not "gather": its first input is the scores, not a table the ids index (the id range
    # checks of ``index_bounds`` apply to the gather_dot that made the scores).
    family = "reduce"
    arity = 3

    def infer(self, inputs, attrs):
        scores, paths, signs = inputs
        if paths.type.kind != INT or paths.ndim != 2:
            raise ShapeError(f"hsoftmax_nll needs integer paths (n, L), got {paths.type}")
        if signs.ndim != 2 or scores.ndim != 2:
            raise ShapeError(
                "hsoftmax_nll needs signs (n, L) and scores (n, L); got "
                f"{shape_str(signs.shape)}, {shape_str(scores.shape)}"
            )
        for what, shape in (("signs", signs.shape), ("scores", scores.shape)):
            if not all(dims_equal(x, y) for x, y in zip(shape, paths.shape)):
                raise ShapeError(
                    f"hsoftmax_nll: {what} and paths shapes must match, got "
                    f"{shape_str(shape)} and {shape_str(paths.shape)}"
                )
        return TensorType((paths.shape[0], 1))

    def vjp(self, node, cotangent):
        scores, _, signs = node.inputs
        inputs = [scores, signs, cotangent]
        return [
            ew.apply(-a1 * a2 * _SIGMOID_OF_MARGIN, inputs, "hsm_coef"),
            None,
            ew.apply(-a0 * a2 * _SIGMOID_OF_MARGIN, inputs, "hsm_dsign"),
        ]

    def jvp(self, node, tangents):
        scores, _, signs = node.inputs
        d_scores, _, d_signs = tangents
        total = None
        if d_scores is not None:
            total = ew.apply(
                -a1 * a2 * _SIGMOID_OF_MARGIN, [scores, signs, d_scores], "hsm_tangent"
            )
        if d_signs is not None:
            term = ew.apply(-a0 * a2 * _SIGMOID_OF_MARGIN, [scores, signs, d_signs], "hsm_tangent")
            total = term if total is None else ew.add(total, term)
        if total is None:
            return None
        return reduce_sum(total, (1,), keepdims=True)


hsoftmax_nll_op = register(HSoftmaxNLLOp())


def hsoftmax_nll(table: Node, paths: Node, signs: Node, h: Node) -> Node:
    """Per-example negative log-likelihood ``(n, 1)`` of the classes whose paths are given."""
    return make(hsoftmax_nll_op, (gather_dot(table, paths, h), paths, signs), ())
