"""Move work out of a scan's loop before the scan node is built.

Two rewrites of the step body, both invisible to differentiation (the moved work becomes outer
graph nodes, whose VJPs the ordinary walker applies):

* loop-invariant code motion: a body node that depends on no sequence slice and no carry (a
  transposed weight, a broadcast constant, a scalar factor of the loss) is computed once before
  the loop and enters the body as a closure parameter;
* input projections: ``x_t · W`` with ``x_t`` a sequence slice and ``W`` loop-invariant is
  computed for all steps as one ``(T·n, d) · (d, h)`` matrix product on the reshaped sequence,
  and the body reads its slice ``t`` as a new sequence.
"""

from __future__ import annotations

from .node import consumers, substitute
from .ops_linalg import matmul, matmul_op
from .ops_scan import ScanBody
from .ops_shape import reshape
from .ops_source import input_node
from .scan_graph import is_source, is_trivial_source, variance


def closure_map(body: ScanBody, closure) -> dict:
    """Body closure parameter id -> the outer node feeding it (for rebuilding outside)."""
    return {id(p): o for p, o in zip(body.closure_params, closure) if p is not o}


def outside(node, cmap: dict):
    """``node`` (loop-invariant) rebuilt over the outer nodes instead of closure parameters."""
    return substitute([node], cmap)[0]


def project_sequence(seq, rhs):
    """``seq[t] · rhs`` for every t as one matrix product: ``(T, r, c) -> (T, r, k)``."""
    steps, rows, cols = seq.shape
    flat = reshape(seq, (steps * rows, cols))
    return reshape(matmul(flat, rhs), (steps, rows, rhs.shape[1]))


def _param_for(prefix: str, node):
    """The parameter standing for hoisted ``node``: named after it, so hoisting a body that is
    lowered twice (a scan read by its sum and by its final state) gives the same body again,
    and both readers share one loop."""
    return input_node(f"{prefix}{node.uid}", node.shape, kind=node.type.kind, role="scan")


def hoist(body: ScanBody, sequences: list, closure: list) -> tuple[ScanBody, list, list]:
    """The body with invariants and input projections moved out, and its new outer inputs.

    Parameters
    ----------
    body
        The step body.
    sequences, closure
        The outer nodes feeding ``body.seq_params`` and ``body.closure_params``.

    Returns
    -------
    body, sequences, closure
        Carries are unchanged; parameters the new body no longer reads are dropped (but at least
        one sequence stays, since it sets the number of steps).
    """
    params = body.params
    param_ids = {id(p) for p in params}
    seq_index = {id(p): j for j, p in enumerate(body.seq_params)}
    order, variant, _ = variance(body.outputs, body.seq_params + body.carry_params, params)
    users = consumers(order)
    cmap = closure_map(body, closure)

    mapping: dict = {}
    new_seq, new_seq_outer, new_closure, new_closure_outer = [], [], [], []
    for n in order:
        if id(n) in param_ids:
            continue
        if id(n) not in variant:
            if is_source(n) or is_trivial_source(n):
                continue
            if not any(id(u) in variant for u in users.get(id(n), ())):
                continue  # only the frontier: its invariant inputs go out with it
            p = _param_for("inv", n)
            mapping[id(n)] = p
            new_closure.append(p)
            new_closure_outer.append(outside(n, cmap))
            continue
        if n.op is matmul_op:
            a, b = n.inputs
            if id(a) in seq_index and id(b) not in variant and a.ndim == 2:
                p = _param_for("proj", n)
                mapping[id(n)] = p
                new_seq.append(p)
                new_seq_outer.append(project_sequence(sequences[seq_index[id(a)]],
                                                      outside(b, cmap)))  # fmt: skip
    if not mapping:
        return body, list(sequences), list(closure)
    outs = substitute(body.outputs, mapping)
    nc, ns = len(body.carry_out), len(body.sum_out)
    new_body = ScanBody(
        seq_params=list(body.seq_params) + new_seq,
        carry_params=list(body.carry_params),
        closure_params=list(body.closure_params) + new_closure,
        carry_out=outs[:nc],
        sum_out=outs[nc : nc + ns],
        stack_out=outs[nc + ns :],
        reverse=body.reverse,
        is_backward=body.is_backward,
    )
    return prune(new_body, list(sequences) + new_seq_outer, list(closure) + new_closure_outer)


def prune(body: ScanBody, sequences: list, closure: list) -> tuple[ScanBody, list, list]:
    """Drop the sequence and closure parameters the body does not read (keeping one sequence)."""
    _, _, seen = variance(body.outputs, [], body.params)
    seq = [(p, s) for p, s in zip(body.seq_params, sequences) if id(p) in seen]
    if not seq:
        seq = [(body.seq_params[0], sequences[0])]
    clo = [(p, c) for p, c in zip(body.closure_params, closure) if id(p) in seen]
    pruned = ScanBody(
        seq_params=[p for p, _ in seq],
        carry_params=list(body.carry_params),
        closure_params=[p for p, _ in clo],
        carry_out=list(body.carry_out),
        sum_out=list(body.sum_out),
        stack_out=list(body.stack_out),
        reverse=body.reverse,
        is_backward=body.is_backward,
    )
    return pruned, [s for _, s in seq], [c for _, c in clo]
