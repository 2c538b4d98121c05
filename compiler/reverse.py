"""Reverse-mode AD over the IR graph.

Each op's VJP builds IR nodes, so the gradient is itself a graph: it can be optimised, emitted and
differentiated again (Hessians). Cotangents arriving at a node from several users are summed.
"""

from __future__ import annotations

from ..ir import ops_elementwise as ew
from ..ir.errors import ShapeError
from ..ir.node import Node, toposort
from ..ir.ops_scan import set_body_grad
from ..ir.ops_source import const
from ..ir.types import FLOAT, TUPLE, shape_str


def _sum(parts: list[Node]) -> Node:
    total = parts[0]
    for p in parts[1:]:
        total = ew.add(total, p)
    return total


def grad(output: Node, wrt: list[Node], cotangent: Node) -> list[Node]:
    """Gradients of ``output`` with respect to each node in ``wrt``.

    Parameters
    ----------
    output
        The node to differentiate.
    wrt
        Nodes (usually graph inputs) to differentiate with respect to.
    cotangent
        The cotangent of ``output`` (the seed), a node of ``output``'s shape.

    Returns
    -------
    list of Node
        One gradient per ``wrt`` node, of that node's shape (a zero constant where ``output``
        does not depend on it).
    """
    return grad_many([output], [cotangent], wrt)


def grad_many(outputs: list[Node], cotangents: list[Node], wrt: list[Node]) -> list[Node]:
    """Gradients of ``Σᵢ <cotangentᵢ, outputᵢ>`` with respect to each node in ``wrt``.

    Multi-output ops (kind ``"tuple"``, e.g. a scan) receive their cotangents per output index
    from the ``*_output`` nodes that read them, and get one list of cotangents in their VJP.
    """
    order = toposort(outputs)
    targets = {id(w) for w in wrt}
    # Only nodes on a path to a wrt node need cotangents.
    relevant: set[int] = set()
    for node in order:
        if id(node) in targets or any(id(i) in relevant for i in node.inputs):
            relevant.add(id(node))

    pending: dict[int, list] = {}
    for out, cot in zip(outputs, cotangents):
        pending.setdefault(id(out), []).append(cot)
    totals: dict[int, Node] = {}
    for node in reversed(order):
        parts = pending.pop(id(node), None)
        if not parts or id(node) not in relevant:
            continue
        if node.type.kind == TUPLE:
            by_index: dict[int, list[Node]] = {}
            for k, c in parts:
                by_index.setdefault(k, []).append(c)
            total = [_sum(by_index[k]) if k in by_index else None for k in range(node.op.n_outputs)]
        else:
            total = _sum(parts)
            totals[id(node)] = total
        if not node.inputs:
            continue
        if node.type.kind == TUPLE:
            # Multi-output ops (scans) are told which inputs need a gradient at all.
            needed = [id(i) in relevant for i in node.inputs]
            contributions = node.op.vjp(node, total, needed=needed)
        else:
            contributions = node.op.vjp(node, total)
        for inp, c in zip(node.inputs, contributions):
            if c is None or id(inp) not in relevant:
                continue
            if inp.type.kind == TUPLE:
                pending.setdefault(id(inp), []).append(c)  # (output index, cotangent)
                continue
            if inp.type.kind != FLOAT:
                continue
            if c.shape != inp.shape:
                raise ShapeError(
                    f"internal: VJP of {node.op.name} gave shape {shape_str(c.shape)} "
                    f"for an input of shape {shape_str(inp.shape)}"
                )
            pending.setdefault(id(inp), []).append(c)
    return [totals.get(id(w)) or const(0, w.shape) for w in wrt]


# The scan op's VJP differentiates its body with this walker.
set_body_grad(grad_many)
