"""Emitters for structural ops: one function per op name, registered in ``EMITTERS``."""

from __future__ import annotations

from collections.abc import Callable

from ..ir.errors import UnsupportedExpressionError
from ..ir.node import Node
from .blas_select import matmul_call

EMITTERS: dict[str, Callable] = {}


def emitter(op_name: str):
    def deco(fn):
        EMITTERS[op_name] = fn
        return fn

    return deco


def emit_structural(em, node: Node) -> None:
    fn = EMITTERS.get(node.op.name)
    if fn is None:
        raise UnsupportedExpressionError(f"op {node.op.name!r} has no Numba emitter")
    name = f"t{node.uid}"
    fn(em, node, name)
    em.names[id(node)] = name


@emitter("input")
def emit_input(em, node, name):  # pragma: no cover - inputs are parameters
    raise UnsupportedExpressionError(f"input {node.attr('name')!r} is not a parameter here")


@emitter("const")
def emit_const(em, node, name):
    value = em.number(node.attr("value"))
    if node.ndim == 0:
        em.emit(f"{name} = _F({value})")
    else:
        em.allocate(name, node.shape, fill=value)


@emitter("eye")
def emit_eye(em, node, name):
    em.emit(f"{name} = np.eye({em.dim(node.attr('n'))}, dtype=_F)")


@emitter("dim_value")
def emit_dim_value(em, node, name):
    em.emit(f"{name} = {em.dim_value(node.attr('dim'))}")


@emitter("matmul")
def emit_matmul(em, node, name):
    a, b = (em.name(i) for i in node.inputs)
    if node.ndim == 2 and all(i.ndim == 2 for i in node.inputs):
        # Into a buffer of its own: the allocating np.dot costs ~1 s more of Numba compile per
        # process, and a scan body can point the buffer at a stack slice or hoist it.
        em.allocate(name, node.shape)
        em.emit(f"{matmul_call()}({a}, {b}, {name})")
    else:
        em.emit(f"{name} = np.dot({a}, {b})")


@emitter("transpose")
def emit_transpose(em, node, name):
    em.emit(f"{name} = {em.name(node.inputs[0])}.T")


@emitter("sum")
def emit_sum(em, node, name):
    (x,) = node.inputs
    axes = node.attr("axes")
    keep = node.attr("keepdims")
    src = em.name(x)
    if node.ndim == 0:
        acc = em.fresh("acc")
        em.emit(f"{acc} = _F(0.0)")
        idx, indent = em.open_loops(x.shape)
        em.emit(f"{acc} += {src}[{', '.join(idx)}]", indent)
        em.emit(f"{name} = {acc}")
        return
    em.allocate(name, node.shape, fill=0)
    idx, indent = em.open_loops(x.shape)
    out_idx = []
    for k, v in enumerate(idx):
        if k in axes:
            if keep:
                out_idx.append("0")
        else:
            out_idx.append(v)
    em.emit(f"{name}[{', '.join(out_idx)}] += {src}[{', '.join(idx)}]", indent)


@emitter("reshape")
def emit_reshape(em, node, name):
    (x,) = node.inputs
    src = em.name(x)
    if node.ndim == 0:
        em.emit(f"{name} = {src}[{', '.join(['0'] * x.ndim)}]")
    elif x.ndim == 0:
        em.allocate(name, node.shape, fill=src)
    else:
        em.emit(f"{name} = np.ascontiguousarray({src}).reshape({em.shape(node.shape)})")


@emitter("broadcast_to")
def emit_broadcast(em, node, name):
    (x,) = node.inputs
    em.emit(f"{name} = np.empty({em.shape(node.shape)}, dtype=_F)")
    idx, indent = em.open_loops(node.shape)
    em.emit(f"{name}[{', '.join(idx)}] = {em.value_at(x, node.shape, idx)}", indent)


def _check_constant_index(em, node, x) -> None:
    # A constant index into a symbolic dimension is only known to be valid at run time.
    for i, d in zip(node.attr("index"), x.shape):
        if not isinstance(d, int):
            em.emit(f"if {i} >= {em.dim(d)}:")
            em.emit(f'raise IndexError("constant index {i} is out of range for dimension {d}")', 2)


@emitter("index")
def emit_index(em, node, name):
    (x,) = node.inputs
    _check_constant_index(em, node, x)
    em.emit(f"{name} = {em.name(x)}[{', '.join(str(i) for i in node.attr('index'))}]")


@emitter("scatter_element")
def emit_scatter_element(em, node, name):
    (x,) = node.inputs
    _check_constant_index(em, node, node)
    em.allocate(name, node.shape, fill=0)
    em.emit(f"{name}[{', '.join(str(i) for i in node.attr('index'))}] = {em.name(x)}")


@emitter("stack")
def emit_stack(em, node, name):
    rows, cols = node.shape
    em.emit(f"{name} = np.empty(({rows}, {cols}), dtype=_F)")
    for k, s in enumerate(node.inputs):
        em.emit(f"{name}[{k // cols}, {k % cols}] = {em.name(s)}")


@emitter("trace")
def emit_trace(em, node, name):
    (x,) = node.inputs
    src = em.name(x)
    i = em.fresh("i")
    em.emit(f"{name} = _F(0.0)")
    em.emit(f"for {i} in range({src}.shape[0]):")
    em.emit(f"{name} += {src}[{i}, {i}]", 2)
