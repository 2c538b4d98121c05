"""Log-sum-exp, log-softmax and softmax along the last axis, each as one fused op.

Along the last axis (rows of a matrix: the classes of a batch of logits) these three are each one
loop nest in the generated code: per row, a pass for the maximum ``m``, a pass for
``s = sum(exp(x - m))``, and for (log-)softmax a pass writing the result. Built from elementwise
ops, ``sum`` and :class:`~symgrad.ir.ops_nn.MaxShiftOp` instead, as they are along other axes,
the same formula is five or six loop nests with their temporaries, and their backward pass as
many again; a recurrent net evaluates it at every time step.

The numerics are those of the composed forms in :mod:`symgrad.ir.ops_nn` (the same shift, 0
when the maximum is infinite, and the same operations in the same order), so the two agree to
rounding. The VJPs and JVPs are written with ops that are themselves differentiable, so higher
derivatives work, and from the op's own output where that is exact:

* ``lse = logsumexp(x)``: ``∂x = g ∘ softmax(x)`` (not ``exp(x - lse)``, which cancels);
* ``y = log_softmax(x)``: ``∂x = g - exp(y) ∘ sum(g)``;
* ``p = softmax(x)``: ``∂x = p ∘ (g - sum(g ∘ p))``,

with sums along the last axis kept as size 1 so they broadcast back.
"""

from __future__ import annotations

import sympy as sp

from . import ops_elementwise as ew
from .errors import ShapeError
from .node import Node, make
from .ops_reduce import reduce_sum
from .registry import Op, register
from .types import TensorType, shape_str

a0, a1, a2 = ew.ARGS[:3]


class _RowOp(Op):
    """Shared checks: one input with at least one axis, reduced along its last axis."""

    family = "reduce"
    arity = 1

    def infer(self, inputs, attrs):
        (x,) = inputs
        if x.ndim < 1:
            raise ShapeError(f"{self.name} along the last axis of a scalar ({shape_str(x.shape)})")
        return TensorType(self.out_shape(x.shape), x.type.kind)

    def out_shape(self, shape: tuple) -> tuple:
        return shape


def _row_sum(x: Node) -> Node:
    return reduce_sum(x, (x.ndim - 1,), keepdims=True)


class RowLogSumExpOp(_RowOp):
    """``log(sum(exp(x)))`` along the last axis, kept as size 1: ``(..., k)`` → ``(..., 1)``."""

    name = "row_logsumexp"

    def out_shape(self, shape):
        return (*shape[:-1], 1)

    # The weights are softmax(x), recomputed from x: exp(x - lse) would cancel (x and lse are
    # both ~1e4 for large logits, and their difference loses the low bits).
    def vjp(self, node, cotangent):
        (x,) = node.inputs
        return [ew.mul(cotangent, row_op("softmax", x))]

    def jvp(self, node, tangents):
        (t,) = tangents
        if t is None:
            return None
        (x,) = node.inputs
        return _row_sum(ew.mul(t, row_op("softmax", x)))


class RowLogSoftmaxOp(_RowOp):
    """``x - logsumexp(x)`` along the last axis (same shape as ``x``)."""

    name = "row_log_softmax"

    def vjp(self, node, cotangent):
        return [ew.apply(a0 - sp.exp(a1) * a2, [cotangent, node, _row_sum(cotangent)], "dlsm")]

    def jvp(self, node, tangents):
        (t,) = tangents
        if t is None:
            return None
        weighted = ew.apply(sp.exp(a0) * a1, [node, t], "softmax_t")
        return ew.sub(t, _row_sum(weighted))


class RowSoftmaxOp(_RowOp):
    """``exp(x) / sum(exp(x))`` along the last axis (same shape as ``x``; rows sum to 1)."""

    name = "row_softmax"

    def vjp(self, node, cotangent):
        dot = _row_sum(ew.mul(cotangent, node))
        return [ew.apply(a0 * (a1 - a2), [node, cotangent, dot], "dsoftmax")]

    def jvp(self, node, tangents):
        (t,) = tangents
        if t is None:
            return None
        dot = _row_sum(ew.mul(t, node))
        return ew.apply(a0 * (a1 - a2), [node, t, dot], "dsoftmax")


row_logsumexp_op = register(RowLogSumExpOp())
row_log_softmax_op = register(RowLogSoftmaxOp())
row_softmax_op = register(RowSoftmaxOp())

#: The fused ops by the name of the function they compute.
ROW_OPS = {
    "logsumexp": row_logsumexp_op,
    "log_softmax": row_log_softmax_op,
    "softmax": row_softmax_op,
}


def along_last_axis(x: Node, axes: tuple) -> bool:
    """Whether reducing ``x`` over ``axes`` is a reduction along its last axis only."""
    return x.ndim >= 1 and tuple(axes) == (x.ndim - 1,)


def row_op(kind: str, x: Node) -> Node:
    """The fused ``kind`` (``"logsumexp"``, ``"log_softmax"``, ``"softmax"``) of ``x``'s rows."""
    return make(ROW_OPS[kind], (x,), ())
