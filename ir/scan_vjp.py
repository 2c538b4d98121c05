"""The VJP of a scan: a reverse scan whose body is the VJP of the forward body (BPTT).

The forward values the reverse body reads (gates, activations, previous states: the residuals,
see :mod:`symgrad.ir.scan_residuals`) are stacked by an *extended* forward scan: the same body
and inputs with extra stacked outputs. A graph holding both the plain and the extended scan runs
only the extended one (``compiler.passes.scan_merge``), so the forward loop runs once and the
reverse loop does no forward work. The reverse loop propagates the carried cotangent one step
back; the gradients of shared weights, which are sums over steps, are formed after the loop
as single matrix products over stacked per-step factors (:mod:`symgrad.ir.scan_sink`).
"""

from __future__ import annotations

from .errors import UnsupportedExpressionError
from .node import Node, substitute
from .ops_scan import BODY_GRAD, ScanBody, scan, scan_output
from .ops_source import const, input_op
from .scan_graph import fresh_param
from .scan_hoist import hoist
from .scan_residuals import choose_residuals
from .scan_sink import scan_sunk
from .types import FLOAT


def extended_forward(node: Node, residuals: list[Node]) -> list[Node]:
    """Outer nodes holding the stacked ``residuals`` of the forward scan ``node``."""
    fwd: ScanBody = node.op.body
    if not residuals:
        return []
    body = ScanBody(
        seq_params=list(fwd.seq_params),
        carry_params=list(fwd.carry_params),
        closure_params=list(fwd.closure_params),
        carry_out=list(fwd.carry_out),
        sum_out=list(fwd.sum_out),
        stack_out=list(fwd.stack_out) + list(residuals),
        reverse=fwd.reverse,
    )
    n_seq, n_carry = len(fwd.seq_params), len(fwd.carry_params)
    ins = node.inputs
    ext = scan(body, ins[:n_seq], ins[n_seq : n_seq + n_carry], ins[n_seq + n_carry :],
               extends=node.op)  # fmt: skip
    first = ext.op.index_of("stack", len(fwd.stack_out))
    return [scan_output(ext, first + k) for k in range(len(residuals))]


def scan_vjp(node: Node, cotangents: list, needed: list | None = None) -> list:
    """Cotangents of the scan's inputs; ``needed[k]`` False skips input k's gradient (an
    unused gradient of a sequence would otherwise be computed and stacked every step)."""
    if not BODY_GRAD:
        raise RuntimeError("internal: the reverse walker was not installed")
    grad_many = BODY_GRAD[0]
    fwd: ScanBody = node.op.body
    if fwd.is_backward:
        raise UnsupportedExpressionError("second-order differentiation through a scan")
    n_seq, n_carry = len(fwd.seq_params), len(fwd.carry_params)
    n_sum, n_stack = len(fwd.sum_out), len(fwd.stack_out)
    sequences = list(node.inputs[:n_seq])
    closure_outer = list(node.inputs[n_seq + n_carry :])

    carry_cots = cotangents[:n_carry]
    sum_cots = cotangents[n_carry : n_carry + n_sum]
    stack_cots = cotangents[n_carry + n_sum : n_carry + n_sum + n_stack]

    # Backward body parameters: carried cotangents, per-step and summed output cotangents.
    lam = [fresh_param("carry_cot", p.shape) for p in fwd.carry_params]
    stack_cot = [(o, fresh_param("stack_cot", o.shape), c)
                 for o, c in zip(fwd.stack_out, stack_cots) if c is not None]  # fmt: skip
    sum_cot = [(o, fresh_param("sum_cot", c.shape), c)
               for o, c in zip(fwd.sum_out, sum_cots) if c is not None]  # fmt: skip
    outputs = list(fwd.carry_out) + [o for o, _, _ in sum_cot] + [o for o, _, _ in stack_cot]
    seeds = list(lam) + [p for _, p, _ in sum_cot] + [p for _, p, _ in stack_cot]

    if needed is None:
        needed = [True] * len(node.inputs)
    seq_wanted = [j for j in range(n_seq) if needed[j]]
    differentiable_closure = [
        (k, p)
        for k, p in enumerate(fwd.closure_params)
        if p.op is input_op
        and p.type.kind == FLOAT
        and closure_outer[k].type.kind == FLOAT
        and needed[n_seq + n_carry + k]
    ]
    wrt = (
        list(fwd.carry_params)
        + [p for _, p in differentiable_closure]
        + [fwd.seq_params[j] for j in seq_wanted]
    )
    grads = grad_many(outputs, seeds, wrt)

    # The reverse body reads saved forward values instead of recomputing them.
    varying = list(fwd.seq_params) + list(fwd.carry_params)
    residuals = choose_residuals(grads, seeds, varying, available=fwd.seq_params)
    saved = [fresh_param("saved", r.shape) for r in residuals]
    grads = substitute(grads, {id(r): p for r, p in zip(residuals, saved)})
    carry_grads = grads[:n_carry]
    closure_grads = grads[n_carry : n_carry + len(differentiable_closure)]
    seq_grads = grads[n_carry + len(differentiable_closure) :]

    body = ScanBody(
        seq_params=list(fwd.seq_params) + saved + [p for _, p, _ in stack_cot],
        carry_params=lam,
        closure_params=list(fwd.closure_params) + [p for _, p, _ in sum_cot],
        carry_out=carry_grads,
        sum_out=closure_grads,
        stack_out=seq_grads,
        reverse=not fwd.reverse,
        is_backward=True,
    )
    body_sequences = sequences + extended_forward(node, residuals) + [c for _, _, c in stack_cot]
    body_closure = closure_outer + [c for _, _, c in sum_cot]
    body, body_sequences, body_closure = hoist(body, body_sequences, body_closure)
    inits = [
        c if c is not None else const(0, p.shape) for c, p in zip(carry_cots, fwd.carry_params)
    ]
    outs = scan_sunk(body, body_sequences, inits, body_closure)
    n_grads = len(differentiable_closure)
    back_carry = outs[:n_carry]
    back_sum = outs[n_carry : n_carry + n_grads]
    back_stack = outs[n_carry + n_grads :]

    result: list = []
    for j in range(n_seq):
        result.append(back_stack[seq_wanted.index(j)] if j in seq_wanted else None)
    result.extend(back_carry)
    grads_by_closure = {k: back_sum[i] for i, (k, _) in enumerate(differentiable_closure)}
    for k in range(len(closure_outer)):
        result.append(grads_by_closure.get(k))
    return result
