"""Constant folding and light algebraic simplification.

Constants are inlined into elementwise bodies, where SymPy's own evaluation does the algebra
(``a0*1 → a0``, ``a0 + 0 → a0``, ``2*3 → 6``); a body reduced to one argument becomes that argument.
"""

from __future__ import annotations

import math

import sympy as sp

from ...ir import ops_elementwise as ew
from ...ir.node import Node
from ...ir.ops_linalg import matmul_op, trace_op
from ...ir.ops_reduce import sum_op
from ...ir.ops_shape import (
    broadcast_op,
    broadcast_to,
    index_op,
    reshape,
    reshape_op,
    transpose_op,
)
from ...ir.ops_source import const, const_op, eye_op
from ...ir.types import broadcast_shapes


def _finite_number(value: sp.Expr) -> bool:
    if not value.is_number:
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def fold_elementwise(node: Node) -> Node | None:
    op = node.op
    if not isinstance(op, ew.ElementwiseOp):
        return None
    consts = [i for i, n in enumerate(node.inputs) if n.op is const_op]
    if not consts:
        if op.body == ew.a0 and node.inputs[0].shape == node.shape:
            return node.inputs[0]
        return None
    mapping = {ew.ARGS[i]: node.inputs[i].attr("value") for i in consts}
    body = op.body.xreplace(mapping)
    rest = [n for i, n in enumerate(node.inputs) if i not in consts]
    if not rest:
        if not _finite_number(body):
            return None
        return const(body, node.shape)
    renumber = {}
    k = 0
    for i in range(len(node.inputs)):
        if i not in consts:
            renumber[ew.ARGS[i]] = ew.ARGS[k]
            k += 1
    body = body.xreplace(renumber)
    if body.has(sp.zoo, sp.nan):
        return None
    if body.is_number:
        if not _finite_number(body):
            return None
        return const(body, node.shape)
    if body == ew.a0 and len(rest) == 1:
        out = rest[0]
    else:
        out = ew.apply(body, rest, op.name)
    if out.shape != node.shape:
        out = broadcast_to(out, node.shape)
    return out


def fold_structural(node: Node) -> Node | None:
    op = node.op
    if op is broadcast_op or op is reshape_op:
        (x,) = node.inputs
        if x.op is const_op:
            return const(x.attr("value"), node.shape)
        if op is reshape_op and x.op is reshape_op:
            return reshape(x.inputs[0], node.shape)
        return None
    if op is transpose_op and node.inputs[0].op is const_op:
        return const(node.inputs[0].attr("value"), node.shape)
    if op is transpose_op and node.inputs[0].op is transpose_op:
        return node.inputs[0].inputs[0]
    if op is index_op and node.inputs[0].op is const_op:
        return const(node.inputs[0].attr("value"))
    if op is sum_op:
        (x,) = node.inputs
        axes = node.attr("axes")
        if all(x.shape[a] == 1 for a in axes):
            return reshape(x, node.shape)
        if x.op is const_op and all(isinstance(x.shape[a], int) for a in axes):
            count = math.prod(x.shape[a] for a in axes)
            return const(x.attr("value") * count, node.shape)
        return None
    if op is matmul_op:
        a, b = node.inputs
        if (a.op is const_op and a.attr("value") == 0) or (
            b.op is const_op and b.attr("value") == 0
        ):
            return const(0, node.shape)
        if a.op is eye_op:
            return b
        if b.op is eye_op:
            return a
        for scaled_eye, other in ((a, b), (b, a)):
            factor = _scaled_identity_factor(scaled_eye)
            if factor is not None:
                if factor.op is const_op:
                    return ew.scale(other, factor.attr("value"))
                return ew.mul(other, factor)
        return None
    if op is trace_op:
        (x,) = node.inputs
        if x.op is const_op and x.attr("value") == 0:
            return const(0)
    return None


def _scaled_identity_factor(node: Node) -> Node | None:
    """``s`` if ``node`` is ``eye * s`` for a scalar ``s`` (the VJP of a trace)."""
    if not isinstance(node.op, ew.ElementwiseOp):
        return None
    if node.op.nargs == 1 and node.inputs[0].op is eye_op:
        c = node.op.body.xreplace({ew.a0: 1})
        if c.is_number and node.op.body == c * ew.a0:
            return const(c)
        return None
    if node.op.body != ew.a0 * ew.a1:
        return None
    x, y = node.inputs
    if x.op is eye_op and y.ndim == 0:
        return y
    if y.op is eye_op and x.ndim == 0:
        return x
    return None


def drop_implicit_broadcast(node: Node) -> Node | None:
    """An elementwise op broadcasts by itself: feed it the unbroadcast operand.

    A scalar reshaped to an all-ones shape (``(1, 1)``, from the VJP of a sum) counts as a
    broadcast too, so the scalar is read directly instead of from a materialised 1-element array.
    """
    if not isinstance(node.op, ew.ElementwiseOp):
        return None

    def is_view(i: Node) -> bool:
        return i.op is broadcast_op or (i.op is reshape_op and i.inputs[0].ndim == 0)

    if not any(is_view(i) for i in node.inputs):
        return None
    inputs = [i.inputs[0] if is_view(i) else i for i in node.inputs]
    if broadcast_shapes([i.shape for i in inputs]) != node.shape:
        return None
    from ...ir.node import make

    return make(node.op, inputs, node.attrs)
