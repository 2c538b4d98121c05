"""Canonical order of sums and products, so equal values spelled in another order merge.

SymPy orders the terms of ``x W + h U + b`` and of its transpose differently; after transposes
are pulled out, the two spellings are chains ``(a + b) + c`` and ``(c + b) + a`` of the same
leaves. Flattening a chain and rebuilding it with the leaves in a fixed order lets hash-consing
merge them, so the LSTM's gates are computed once instead of twice.
"""

from __future__ import annotations

from ...ir import ops_elementwise as ew
from ...ir.node import Node

_ADD = ew.a0 + ew.a1
_MUL = ew.a0 * ew.a1
#: Longer chains are left alone: rebuilding every prefix of a long chain would duplicate it
#: (each partial sum stays alive for the backward pass), making the graph quadratic.
_MAX_LEAVES = 6


def _chain_leaves(node: Node, body) -> list[Node] | None:
    """Leaves of the chain rooted at ``node``, or None if it has more than ``_MAX_LEAVES``."""
    leaves: list[Node] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n.op, ew.ElementwiseOp) and n.op.body == body:
            stack.extend(reversed(n.inputs))
        else:
            leaves.append(n)
        if len(leaves) + len(stack) > _MAX_LEAVES:
            return None
    return leaves


def canonical_order(node: Node) -> Node | None:
    if not isinstance(node.op, ew.ElementwiseOp):
        return None
    body = node.op.body
    if body != _ADD and body != _MUL:
        return None
    leaves = _chain_leaves(node, body)
    if leaves is None:
        return None
    # Full-shape operands first, broadcast ones after; ties by creation order (deterministic).
    ordered = sorted(leaves, key=lambda n: (-n.ndim, n.uid))
    build = ew.add if body == _ADD else ew.mul
    out = ordered[0]
    for leaf in ordered[1:]:
        out = build(out, leaf)
    return None if out is node else out
