"""The VJP of a scan: a reverse scan whose body is the VJP of the forward body (BPTT).

The backward body recomputes the forward step from the stacked previous carries, then
propagates the carried cotangent one step back and accumulates the gradients of the weights it
closes over ("the derivatives of the same W at each step are added up").
"""

from __future__ import annotations

from .errors import UnsupportedExpressionError
from .node import Node
from .ops_scan import BODY_GRAD, ScanBody, scan, scan_output
from .ops_source import const, input_node, input_op
from .types import FLOAT

_counter = [0]


def _param(prefix: str, shape) -> Node:
    _counter[0] += 1
    return input_node(f"{prefix}{_counter[0]}", shape, role="scan")


def scan_vjp(node: Node, cotangents: list, needed: list | None = None) -> list:
    """Cotangents of the scan's inputs; ``needed[k]`` False skips input k's gradient (an
    unused gradient of a sequence would otherwise be computed and stacked every step)."""
    if not BODY_GRAD:
        raise RuntimeError("internal: the reverse walker was not installed")
    grad_many = BODY_GRAD[0]
    fwd: ScanBody = node.op.body
    if not fwd.stacks_carries:
        raise UnsupportedExpressionError("second-order differentiation through a scan")
    n_seq, n_carry = len(fwd.seq_params), len(fwd.carry_params)
    n_sum = len(fwd.sum_out)
    n_user_stacks = len(fwd.stack_out) - n_carry
    sequences = list(node.inputs[:n_seq])
    closure_outer = list(node.inputs[n_seq + n_carry :])

    carry_cots = cotangents[:n_carry]
    sum_cots = cotangents[n_carry : n_carry + n_sum]
    stack_cots = cotangents[n_carry + n_sum : n_carry + n_sum + n_user_stacks]

    # Backward body parameters.
    lam = [_param("carry_cot", p.shape) for p in fwd.carry_params]
    stack_cot_params, stack_cot_outer = [], []
    for out, cot in zip(fwd.stack_out[:n_user_stacks], stack_cots):
        if cot is not None:
            p = _param("stack_cot", out.shape)
            stack_cot_params.append((out, p))
            stack_cot_outer.append(cot)
    sum_cot_params = []
    sum_cot_outer = []
    for out, cot in zip(fwd.sum_out, sum_cots):
        if cot is not None:
            p = _param("sum_cot", cot.shape)
            sum_cot_params.append((out, p))
            sum_cot_outer.append(cot)

    outputs = (
        list(fwd.carry_out) + [o for o, _ in sum_cot_params] + [o for o, _ in stack_cot_params]
    )
    seeds = list(lam) + [p for _, p in sum_cot_params] + [p for _, p in stack_cot_params]

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
    carry_grads = grads[:n_carry]
    closure_grads = grads[n_carry : n_carry + len(differentiable_closure)]
    seq_grads = grads[n_carry + len(differentiable_closure) :]

    body = ScanBody(
        seq_params=list(fwd.seq_params) + list(fwd.carry_params) + [p for _, p in stack_cot_params],
        carry_params=lam,
        closure_params=list(fwd.closure_params) + [p for _, p in sum_cot_params],
        carry_out=carry_grads,
        sum_out=closure_grads,
        stack_out=seq_grads,
        reverse=not fwd.reverse,
        stacks_carries=False,
    )
    first_carry_stack = node.op.index_of("stack", n_user_stacks)
    stacked_carries = [scan_output(node, first_carry_stack + j) for j in range(n_carry)]
    inits = [
        c if c is not None else const(0, p.shape) for c, p in zip(carry_cots, fwd.carry_params)
    ]
    back = scan(
        body,
        sequences + stacked_carries + stack_cot_outer,
        inits,
        closure_outer + sum_cot_outer,
    )

    result: list = []
    for j in range(n_seq):
        if j in seq_wanted:
            result.append(scan_output(back, back.op.index_of("stack", seq_wanted.index(j))))
        else:
            result.append(None)
    for j in range(n_carry):
        result.append(scan_output(back, back.op.index_of("carry", j)))
    grads_by_closure = {k: scan_output(back, back.op.index_of("sum", i))
                        for i, (k, _) in enumerate(differentiable_closure)}  # fmt: skip
    for k in range(len(closure_outer)):
        result.append(grads_by_closure.get(k))
    return result
