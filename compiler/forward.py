"""Forward-mode AD (JVP) over the IR graph: push tangents from inputs to outputs."""

from __future__ import annotations

from ..ir.node import Node, toposort
from ..ir.ops_source import const


def jvp(outputs: list[Node], tangents: dict[Node, Node]) -> list[Node]:
    """Tangents of ``outputs`` given tangent nodes for some input nodes.

    Parameters
    ----------
    outputs
        Nodes whose directional derivatives are wanted.
    tangents
        Map from an input node to its tangent (same shape).

    Returns
    -------
    list of Node
        One tangent per output (a zero constant where no tangent reaches it).
    """
    tan: dict[int, Node] = {id(k): v for k, v in tangents.items()}
    for node in toposort(outputs):
        if id(node) in tan or not node.inputs:
            continue
        ts = [tan.get(id(i)) for i in node.inputs]
        if all(t is None for t in ts):
            continue
        t = node.op.jvp(node, ts)
        if t is not None:
            tan[id(node)] = t
    return [tan.get(id(o)) or const(0, o.shape) for o in outputs]
