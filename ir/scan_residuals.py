"""Choose the step intermediates (residuals) a forward scan saves for its reverse scan.

The reverse body is the VJP of the forward body. The parts of it that do not depend on a
cotangent are forward values; rather than recompute them every reverse step (a second forward
pass, matrix products included), the forward loop writes them into ``(T, ...)`` buffers and the
reverse body reads slice ``t``. What is saved is exactly what the cotangent-dependent part
reads, minus what is free to rebuild from other saved values (``1 - h²`` from ``h``).
"""

from __future__ import annotations

import sympy as sp

from .node import Node, toposort
from .ops_elementwise import ElementwiseOp
from .ops_shape import reshape_op, transpose_op
from .scan_graph import variance


def _cheap(node: Node) -> bool:
    """A view (transpose, reshape) or an elementwise node of plain arithmetic (no
    transcendental): rebuilding it costs a few flops inside a loop the reverse body runs anyway,
    and saving a transposed copy would cost a strided write per step."""
    if node.op is transpose_op or node.op is reshape_op:
        return True
    if not isinstance(node.op, ElementwiseOp):
        return False
    body = node.op.body
    if body.atoms(sp.Function):
        return False
    return all(p.exp.is_Integer for p in body.atoms(sp.Pow))


def choose_residuals(grads: list, seeds: list, varying: list, available: list) -> list[Node]:
    """The forward values the reverse body must read from saved buffers.

    Parameters
    ----------
    grads
        The reverse body's outputs (gradient nodes built over the forward body's nodes).
    seeds
        The reverse body's cotangent parameters.
    varying
        The forward body's per-step parameters (sequence slices and carries).
    available
        Per-step parameters the reverse body can read directly (the sequence slices).

    Returns
    -------
    list of Node
        Forward nodes (carry parameters included: a previous state is saved like any other
        value), in topological order.
    """
    order = toposort([g for g in grads if g is not None])
    dep = {id(s) for s in seeds}
    for n in order:
        if any(id(i) in dep for i in n.inputs):
            dep.add(id(n))
    _, variant, _ = variance(grads, varying, list(varying) + list(seeds))
    free = {id(a) for a in available}
    needed: dict[int, Node] = {}
    for n in order:
        if id(n) not in dep:
            continue
        for i in n.inputs:
            if id(i) not in dep and id(i) in variant and id(i) not in free:
                needed[id(i)] = i
    # Trade a cheap elementwise residual for its inputs when at most one of them is not saved
    # already: no more buffers, and shared inputs (a gate read by several derivatives) merge.
    position = {id(n): k for k, n in enumerate(order)}
    changed = True
    while changed:
        changed = False
        for key, r in sorted(needed.items(), key=lambda kv: -position.get(kv[0], -1)):
            if not _cheap(r):
                continue
            missing = {
                id(i): i
                for i in r.inputs
                if id(i) in variant and id(i) not in free and id(i) not in needed
            }
            if len(missing) <= 1:
                del needed[key]
                needed.update(missing)
                changed = True
                break
    return sorted(needed.values(), key=lambda n: position.get(id(n), -1))
