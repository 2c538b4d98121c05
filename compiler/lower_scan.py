"""Lowering of scans: the step body becomes a graph held by a scan op."""

from __future__ import annotations

from ..ir.errors import ShapeError
from ..ir.node import Node, toposort
from ..ir.ops_scan import ScanBody, scan, scan_output
from ..ir.ops_source import const_op, eye_op, input_node
from ..ir.scan_expr import Scan, ScanFinal, ScanSum
from ..ir.scan_hoist import hoist
from ..ir.types import as_dim, shape_str
from .lower import register_lowering
from .passes import optimize


def _step_param(symbol) -> Node:
    shape = tuple(as_dim(d) for d in getattr(symbol, "shape", ()))
    return input_node(symbol.name, shape, role="scan")


def lower_scan(lowerer, expr: Scan) -> Node:
    """The scan node for ``expr`` (memoised: every ScanSum/ScanFinal of it shares one loop)."""
    node = lowerer.memo.get(expr)
    if node is not None:
        return node
    sequences, seq_params = [], []
    for step_symbol, sequence in expr.sequences:
        seq = lowerer.lower(sequence)
        step = _step_param(step_symbol)
        if seq.shape[1:] != step.shape:
            raise ShapeError(
                f"step symbol {step_symbol} has shape {shape_str(step.shape)} but sequence "
                f"{sequence.name} has steps of shape {shape_str(seq.shape[1:])}"
            )
        sequences.append(seq)
        seq_params.append(step)
    if len({s.shape[0] for s in sequences}) > 1:
        raise ShapeError("all sequences of a scan must have the same length")
    inits, carry_params = [], []
    for previous, _, init in expr.states:
        inits.append(lowerer.lower(init))
        carry_params.append(_step_param(previous))
        if inits[-1].shape != carry_params[-1].shape:
            raise ShapeError(
                f"initial value of {previous} has shape {shape_str(inits[-1].shape)}, "
                f"expected {shape_str(carry_params[-1].shape)}"
            )

    saved = dict(lowerer.bindings)
    for (step_symbol, _), p in zip(expr.sequences, seq_params):
        lowerer.bindings[step_symbol] = p
    for (previous, _, _), p in zip(expr.states, carry_params):
        lowerer.bindings[previous] = p
    try:
        carry_out = [lowerer.lower(new) for _, new, _ in expr.states]
        sum_out = [lowerer.lower(o) for o in expr.outputs]
    finally:
        lowerer.bindings = saved
    for (previous, _, _), new, p in zip(expr.states, carry_out, carry_params):
        if new.shape != p.shape:
            raise ShapeError(
                f"the new value of state {previous} has shape {shape_str(new.shape)}, "
                f"expected {shape_str(p.shape)}"
            )
    for o, e in zip(sum_out, expr.outputs):
        if o.ndim:
            raise ShapeError(f"per-step output {e} must be a scalar")
    outputs = optimize(carry_out + sum_out)
    carry_out, sum_out = outputs[: len(carry_out)], outputs[len(carry_out) :]

    params = seq_params + carry_params
    param_ids = {id(p) for p in params}
    closure = [
        n
        for n in toposort(carry_out + sum_out, stop=params)
        if not n.inputs and id(n) not in param_ids and n.op not in (const_op, eye_op)
    ]
    body = ScanBody(
        seq_params=seq_params,
        carry_params=carry_params,
        closure_params=closure,
        carry_out=carry_out,
        sum_out=sum_out,
        reverse=expr.reverse,
    )
    # Input projections and invariants leave the loop before anything differentiates the scan,
    # so BPTT sees the hoisted form too (dW = Σ x_tᵀ δ_t becomes one matrix product).
    body, sequences, closure = hoist(body, sequences, closure)
    node = scan(body, sequences, inits, closure)
    lowerer.memo[expr] = node
    return node


@register_lowering(ScanSum)
def lower_scan_sum(lowerer, expr: ScanSum) -> Node:
    scan_expr, k = expr.args
    node = lower_scan(lowerer, scan_expr)
    return scan_output(node, node.op.index_of("sum", int(k)))


@register_lowering(ScanFinal)
def lower_scan_final(lowerer, expr: ScanFinal) -> Node:
    scan_expr, j = expr.args
    node = lower_scan(lowerer, scan_expr)
    return scan_output(node, node.op.index_of("carry", int(j)))
