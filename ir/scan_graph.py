"""Graph helpers shared by the scan transformations (hoisting, residuals, sinking).

They live in ``ir`` because the scan VJP (an ``ir`` rule) uses them, and ``ir`` imports nothing
from the compiler.
"""

from __future__ import annotations

from .node import Node, toposort
from .ops_source import const_op, eye_op, input_node
from .types import FLOAT

_counter = [0]


def fresh_param(prefix: str, shape, kind: str = FLOAT) -> Node:
    """A new body parameter (an input node no user symbol can collide with)."""
    _counter[0] += 1
    return input_node(f"{prefix}{_counter[0]}", shape, kind=kind, role="scan")


def is_source(node: Node) -> bool:
    """No inputs: a parameter, a graph input or a constant."""
    return not node.inputs


def is_trivial_source(node: Node) -> bool:
    """Constants and identity matrices: free to rebuild anywhere, never worth hoisting."""
    return node.op is const_op or node.op is eye_op


def variance(outputs: list, varying: list, stop: list) -> tuple[list, set, set]:
    """Which body nodes change from step to step.

    Parameters
    ----------
    outputs
        The body's outputs.
    varying
        Parameters whose value changes each step (sequence slices and carries).
    stop
        All body parameters (their inputs, if any, are outside the body).

    Returns
    -------
    order, variant_ids, seen_ids
        The body's nodes in topological order, the ids of those depending on a ``varying``
        parameter, and the ids of all of them.
    """
    order = toposort([o for o in outputs if o is not None], stop=stop)
    stop_ids = {id(s) for s in stop}
    variant = {id(v) for v in varying}
    for n in order:
        if id(n) in stop_ids:
            continue
        if any(id(i) in variant for i in n.inputs):
            variant.add(id(n))
    return order, variant, {id(n) for n in order}
