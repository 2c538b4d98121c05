"""Emit a scan as a real loop inside the one compiled function.

Compile time does not grow with the sequence length, which is a run-time value. Every array
the body produces is allocated once before the loop (:mod:`.emit_scan_buffers`); carries live in
two buffers each, written and swapped every step, so a step's new state never overwrites the
state it is still reading. Summed outputs accumulate in place; stacked outputs are written into
preallocated ``(T, ...)`` buffers. Names the body creates are dropped after the loop, so the
outer function never reads a loop-local variable.
"""

from __future__ import annotations

from ..ir.ops_scan import ScanOp
from ..ir.ops_shape import transpose_op
from .emit_function import emit_units
from .emit_scan_buffers import LoopBuffers, add_lines, copy_lines
from .emit_structural import emitter


def _emit_body(em, body, buffers: LoopBuffers) -> None:
    """The body's units, as ``emit_units`` would, with their allocations moved out."""
    emit_units(em, body.outputs, leaves=body.params, keep=body.outputs, around=buffers.emit_unit)


def _loop_operand(em, outer) -> str:
    """The name the loop body reads closure input ``outer`` by (emitted before the loop).

    A transposed matrix (``Uᵀ`` in the backward pass's ``δ·Uᵀ``) is copied into a C-ordered
    array once: OpenBLAS multiplies the step's small matrices by a transposed operand about 1.8x
    slower than by a plain one (LSTM training step: 23.6 -> 18.8 ms).
    """
    name = em.name(outer)
    if outer.op is not transpose_op or outer.ndim != 2:
        return name
    contiguous = em.fresh("plain")
    em.emit(f"{contiguous} = np.ascontiguousarray({name})")
    return contiguous


def _direct_targets(body, stacks, spares, t) -> dict:
    """Where each body output may be written directly: its carry's spare buffer, else its
    stack slice. Only values the body computes qualify (a parameter passed through, such as
    ``h_{t-1}`` stacked for the backward pass, is copied), each into one place."""
    params = {id(p) for p in body.params}
    targets = {}
    for spare, out in zip(spares, body.carry_out):
        if spare is not None and out.ndim and id(out) not in params:
            targets.setdefault(id(out), spare)
    for buf, out in zip(stacks, body.stack_out):
        if out.ndim and id(out) not in params:
            targets.setdefault(id(out), f"{buf}[{t}]")
    return targets


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
    carries, spares = [], []
    for init, param in zip(inits, body.carry_params):
        c = em.fresh("carry")
        if param.ndim:
            # Two buffers per carry: the step writes the spare, then the two swap.
            em.emit(f"{c} = np.empty({em.shape(param.shape)}, dtype=_F)")
            copy_lines(em, c, em.name(init), param.shape)
            spare = em.fresh("spare")
            em.emit(f"{spare} = np.empty({em.shape(param.shape)}, dtype=_F)")
            spares.append(spare)
        else:
            em.emit(f"{c} = _F({em.name(init)})")
            spares.append(None)
        carries.append(c)
    sums = []
    for out in body.sum_out:
        acc = em.fresh("acc")
        if out.ndim:
            em.allocate(acc, out.shape, fill=0)
        else:
            em.emit(f"{acc} = _F(0.0)")
        sums.append(acc)
    stacks = []
    for out in body.stack_out:
        buf = em.fresh("stack")
        em.emit(f"{buf} = np.empty(({length},) + {em.shape(out.shape)}, dtype=_F)")
        stacks.append(buf)

    operands = {
        id(param): _loop_operand(em, outer)
        for outer, param in zip(closure, body.closure_params)
        if outer is not param
    }
    t = em.fresh("step")
    steps = f"range({length} - 1, -1, -1)" if body.reverse else f"range({length})"
    buffers = LoopBuffers(em, len(em.lines), _direct_targets(body, stacks, spares, t))
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
            em.names[id(param)] = operands[id(param)]
    _emit_body(em, body, buffers)
    for buf, out in zip(stacks, body.stack_out):
        if buffers.redirected.get(id(out)) != f"{buf}[{t}]":
            copy_lines(em, buf, em.name(out), out.shape, prefix=t)
    for acc, out in zip(sums, body.sum_out):
        add_lines(em, acc, em.name(out), out.shape)
    # Write every new carry before swapping any in (a state may read another's old value).
    fresh = []
    for spare, out in zip(spares, body.carry_out):
        if spare is None:
            v = em.fresh("next")
            em.emit(f"{v} = _F({em.name(out)})")
            fresh.append(v)
        else:
            if buffers.redirected.get(id(out)) != spare:
                copy_lines(em, spare, em.name(out), out.shape)
            fresh.append(None)
    for k, (c, spare) in enumerate(zip(carries, spares)):
        if spare is None:
            em.emit(f"{c} = {fresh[k]}")
        else:
            em.emit(f"{c}, {spare} = {spare}, {c}")
    em.base -= 1
    em.names = saved_names
    buffers.finish()
    em.scan_outputs[id(node)] = carries + sums + stacks


@emitter("scan_output")
def emit_scan_output(em, node, name):
    (scan,) = node.inputs
    em.emit(f"{name} = {em.scan_outputs[id(scan)][node.attr('index')]}")
