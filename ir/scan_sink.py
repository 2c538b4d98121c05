"""Move per-step products of a reverse scan after its loop, as one product over all steps.

A shared weight's gradient is a sum over steps, ``Σ_t a_tᵀ δ_t``; with ``a_t`` a slice of a
stacked sequence that is one ``(k, T·n) · (T·n, m)`` matrix product over the reshaped stacks
once ``δ_t`` is stacked too. A bias gradient ``Σ_t 1ᵀ δ_t`` becomes one reduction over the same
stack, and a per-step output ``δ_t · Wᵀ`` (the gradient of an input sequence) one product on the
reshaped stack. Inside the loop only ``δ_t`` is written to its buffer.
"""

from __future__ import annotations

from .node import Node
from .ops_elementwise import ARGS, ElementwiseOp, add
from .ops_linalg import matmul, matmul_op
from .ops_reduce import reduce_sum, sum_op
from .ops_scan import ScanBody, scan, scan_output
from .ops_shape import reshape, transpose, transpose_op
from .scan_graph import variance
from .scan_hoist import closure_map, outside, project_sequence, prune


def _terms(node: Node) -> list[Node]:
    """The summands of a tree of same-shape additions (gradients summed at fan-out)."""
    op = node.op
    if isinstance(op, ElementwiseOp) and op.body == ARGS[0] + ARGS[1]:
        a, b = node.inputs
        if a.shape == node.shape and b.shape == node.shape:
            return _terms(a) + _terms(b)
    return [node]


class _Sinker:
    def __init__(self, body: ScanBody, sequences: list, closure: list):
        self.body = body
        self.seq_outer = {id(p): s for p, s in zip(body.seq_params, sequences)}
        self.cmap = closure_map(body, closure)
        _, self.variant, _ = variance(body.outputs, body.seq_params + body.carry_params,
                                      body.params)  # fmt: skip
        self.steps = sequences[0].shape[0]
        #: nodes to stack (by id, in order) -> position among the new stack outputs
        self.stacked: dict[int, int] = {}
        self.stack_nodes: list[Node] = []

    def stack(self, g: Node) -> int:
        k = self.stacked.get(id(g))
        if k is None:
            k = self.stacked[id(g)] = len(self.stack_nodes)
            self.stack_nodes.append(g)
        return k

    def flat(self, g: Node):
        """A plan reading the stack of ``g`` reshaped to ``(T·rows, cols)``."""
        k = self.stack(g)
        rows, cols = g.shape
        return lambda stacks: reshape(stacks[k], (self.steps * rows, cols))

    def per_step(self, g: Node) -> bool:
        return id(g) in self.variant and g.ndim == 2

    def sum_term(self, term: Node):
        """A plan computing ``Σ_t term_t`` after the loop from stacks, or None."""
        if term.op is transpose_op:
            inner = self.sum_term(term.inputs[0])
            return None if inner is None else (lambda s: transpose(inner(s)))
        if term.op is matmul_op:
            a, g = term.inputs
            if a.op is transpose_op and id(a.inputs[0]) in self.seq_outer and self.per_step(g):
                seq = self.seq_outer[id(a.inputs[0])]
                steps, rows, cols = seq.shape
                flat_a = reshape(seq, (steps * rows, cols))
                flat_g = self.flat(g)
                return lambda s: matmul(transpose(flat_a), flat_g(s))
            return None
        if term.op is sum_op:
            (g,) = term.inputs
            if id(g) not in self.stacked or g.ndim == 0:
                return None  # only worth it when the stack is written anyway
            k = self.stack(g)
            axes = (0,) + tuple(a + 1 for a in term.attr("axes"))
            keep = term.attr("keepdims")
            return lambda s: reshape(reduce_sum(s[k], axes, keep), term.shape)
        return None

    def stack_term(self, out: Node):
        """A plan computing the stack of ``out`` after the loop, or None."""
        if out.op is matmul_op:
            g, w = out.inputs
            if self.per_step(g) and id(w) not in self.variant:
                k = self.stack(g)
                w_outer = outside(w, self.cmap)
                return lambda s: project_sequence(s[k], w_outer)
        return None


def scan_sunk(body: ScanBody, sequences: list, inits: list, closure: list) -> list[Node]:
    """Build the scan of ``body`` with summed and stacked products moved after the loop.

    Returns
    -------
    list of Node
        The outer value of each output of ``body`` (carries, sums, stacks in that order).
    """
    sk = _Sinker(body, sequences, closure)
    stack_plans = [sk.stack_term(o) for o in body.stack_out]
    for o, plan in zip(body.stack_out, stack_plans):
        if plan is None:
            sk.stack(o)
    # Products first: a bias reduction only moves out over a stack they already write.
    sum_plans: list = []
    for s in body.sum_out:
        sum_plans.append([(t, sk.sum_term(t)) for t in _terms(s)])
    for plans in sum_plans:
        for k, (t, plan) in enumerate(plans):
            if plan is None:
                plans[k] = (t, sk.sum_term(t))
    kept_sums = []
    for plans in sum_plans:
        inner = [t for t, plan in plans if plan is None]
        total = inner[0] if inner else None
        for t in inner[1:]:
            total = add(total, t)
        kept_sums.append(total)

    new_body = ScanBody(
        seq_params=list(body.seq_params),
        carry_params=list(body.carry_params),
        closure_params=list(body.closure_params),
        carry_out=list(body.carry_out),
        sum_out=[s for s in kept_sums if s is not None],
        stack_out=list(sk.stack_nodes),
        reverse=body.reverse,
        is_backward=body.is_backward,
    )
    new_body, seqs, clos = prune(new_body, sequences, closure)
    node = scan(new_body, seqs, inits, clos)
    stacks = [scan_output(node, node.op.index_of("stack", k)) for k in range(len(sk.stack_nodes))]

    results = [scan_output(node, node.op.index_of("carry", j)) for j in range(len(body.carry_out))]
    sum_slot = 0
    for plans, kept in zip(sum_plans, kept_sums):
        total = None
        if kept is not None:
            total = scan_output(node, node.op.index_of("sum", sum_slot))
            sum_slot += 1
        for _, plan in plans:
            if plan is not None:
                part = plan(stacks)
                total = part if total is None else add(total, part)
        results.append(total)
    for o, plan in zip(body.stack_out, stack_plans):
        results.append(plan(stacks) if plan is not None else stacks[sk.stacked[id(o)]])
    return results
