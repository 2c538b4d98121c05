"""Numerically stable forms of SymPy spellings that lose precision or overflow."""

from __future__ import annotations

import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

from ...ir import ops_elementwise as ew
from ...ir.functions import logaddexp
from ...ir.node import Node

ew.register_elementwise_function(log1p)
ew.register_elementwise_function(expm1)

_log = sp.log(ew.a0)
_exp = sp.exp(ew.a0)


def _single_input_body(node: Node) -> sp.Expr | None:
    if isinstance(node.op, ew.ElementwiseOp) and node.op.nargs == 1:
        return node.op.body
    return None


def _exp_terms(node: Node, limit: int = 16) -> list[Node] | None:
    """Arguments of the exps if ``node`` is a sum (``add`` chain) of ``exp`` nodes."""
    body = node.op.body if isinstance(node.op, ew.ElementwiseOp) else None
    if body == _exp:
        return [node.inputs[0]]
    if body == ew.a0 + ew.a1 and len(node.inputs) == 2:
        left = _exp_terms(node.inputs[0], limit - 1) if limit else None
        right = _exp_terms(node.inputs[1], limit - 1) if limit else None
        if left is not None and right is not None and node.inputs[0].shape == node.shape:
            return left + right
    return None


def stabilize(node: Node) -> Node | None:
    """log(1 + x) → log1p(x); exp(x) - 1 → expm1(x); log(Σ exp(aᵢ)) → logaddexp(a…)."""
    body = _single_input_body(node)
    if body is None:
        return None
    (inner,) = node.inputs
    if body == _log:
        terms = _exp_terms(inner)
        if terms is not None and len(terms) >= 2:
            args = ew.ARGS[: len(terms)]
            return ew.apply(logaddexp(*args), terms, "logaddexp")
    inner_body = _single_input_body(inner)
    if body == _log and inner_body is not None:
        shifted = inner_body - 1
        if shifted.free_symbols <= {ew.a0} and (inner_body - ew.a0) == 1:
            return ew.apply(log1p(ew.a0), [inner.inputs[0]], "log1p")
    if body == ew.a0 - 1 and inner_body == _exp:
        return ew.apply(expm1(ew.a0), [inner.inputs[0]], "expm1")
    return None
