"""Emit a scan as a real loop inside the one compiled function.

Compile time does not grow with the sequence length, which is a run-time value. Carries are
rebound each step; summed outputs accumulate in place; stacked outputs are written into
preallocated ``(T, ...)`` buffers. Names the body creates are dropped after the loop, so the
outer function never reads a loop-local variable.
"""

from __future__ import annotations

from ..ir.ops_scan import ScanOp
from .emit_function import emit_units
from .emit_structural import emitter


def _contiguous(em, node) -> str:
    name = em.name(node)
    if node.ndim == 0:
        return f"_F({name})"
    return f"np.ascontiguousarray({name})"


@emitter("scan")
def emit_scan(em, node, name):
    op: ScanOp = node.op
    body = op.body
    n_seq, n_carry = len(body.seq_params), len(body.carry_params)
    sequences = node.inputs[:n_seq]
    inits = node.inputs[n_seq : n_seq + n_carry]
    closure = node.inputs[n_seq + n_carry :]

    length = em.fresh("T")
    em.emit(f"{length} = {em.name(sequences[0])}.shape[0]")
    carries = []
    for init in inits:
        c = em.fresh("carry")
        em.emit(f"{c} = {_contiguous(em, init)}")
        carries.append(c)
    sums = []
    for out in body.sum_out:
        acc = em.fresh("acc")
        if out.ndim:
            em.emit(f"{acc} = np.zeros({em.shape(out.shape)}, dtype=_F)")
        else:
            em.emit(f"{acc} = _F(0.0)")
        sums.append(acc)
    stacks = []
    for out in body.stack_out:
        buf = em.fresh("stack")
        em.emit(f"{buf} = np.empty(({length},) + {em.shape(out.shape)}, dtype=_F)")
        stacks.append(buf)

    t = em.fresh("step")
    steps = f"range({length} - 1, -1, -1)" if body.reverse else f"range({length})"
    em.emit(f"for {t} in {steps}:")
    saved_names = dict(em.names)
    em.base += 1
    for seq, param in zip(sequences, body.seq_params):
        v = em.fresh("seq")
        em.emit(f"{v} = {em.name(seq)}[{t}]")
        em.names[id(param)] = v
    for c, param in zip(carries, body.carry_params):
        em.names[id(param)] = c
    for outer, param in zip(closure, body.closure_params):
        if outer is not param:
            em.names[id(param)] = em.name(outer)
    emit_units(em, body.outputs, leaves=body.params, keep=body.outputs)
    for buf, out in zip(stacks, body.stack_out):
        em.emit(f"{buf}[{t}] = {em.name(out)}")
    for acc, out in zip(sums, body.sum_out):
        em.emit(f"{acc} += {em.name(out)}")
    # Compute every new carry before rebinding any (a state may read another's old value).
    fresh = []
    for out in body.carry_out:
        v = em.fresh("next")
        em.emit(f"{v} = {_contiguous(em, out)}")
        fresh.append(v)
    for c, v in zip(carries, fresh):
        em.emit(f"{c} = {v}")
    em.base -= 1
    em.names = saved_names
    em.scan_outputs[id(node)] = carries + sums + stacks


@emitter("scan_output")
def emit_scan_output(em, node, name):
    (scan,) = node.inputs
    em.emit(f"{name} = {em.scan_outputs[id(scan)][node.attr('index')]}")
