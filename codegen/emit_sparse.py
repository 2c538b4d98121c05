"""Numba loops for row-sparse updates (:mod:`symgrad.ir.ops_sparse`).

``touched_rows`` binds the run-time row count ``m`` as a dimension, so the update rule that
follows is emitted as ordinary fused loops over ``(m, d)``. ``put_rows`` as an in-place target is
written by :func:`write_rows_in_place` (called from the function emitter), touching only ``m``
rows of the caller's array.
"""

from __future__ import annotations

from .emit_gather import RANGE_ERROR
from .emit_structural import emitter


@emitter("touched_rows")
def emit_touched_rows(em, node, name):
    ids = [em.name(x) for x in node.inputs]
    limit = em.dim(node.attr("rows"))
    buf, count = em.fresh("ids"), em.fresh("count")
    size = " + ".join(f"{a}.size" for a in ids)
    em.emit(f"{buf} = np.empty({size}, dtype=np.int64)")
    em.emit(f"{count} = 0")
    for a in ids:
        i, j, r = em.fresh("i"), em.fresh("j"), em.fresh("r")
        em.emit(f"for {i} in range({a}.shape[0]):")
        em.emit(f"for {j} in range({a}.shape[1]):", 2)
        em.emit(f"{r} = {a}[{i}, {j}]", 3)
        em.emit(f"if {r} >= 0:", 3)
        em.emit(f"if {r} >= {limit}:", 4)
        em.emit(RANGE_ERROR, 5)
        em.emit(f"{buf}[{count}] = {r}", 4)
        em.emit(f"{count} += 1", 4)
    em.emit(f"{name} = np.unique({buf}[:{count}])")
    dim = em.fresh("m")
    em.emit(f"{dim} = {name}.shape[0]")
    em.dims[node.attr("count")] = dim


@emitter("row_gradient")
def emit_row_gradient(em, node, name):
    rows = em.name(node.inputs[0])
    em.emit(f"{name} = np.zeros({em.shape(node.shape)}, dtype=_F)")
    width = em.fresh("w")
    em.emit(f"{width} = {name}.shape[1]")
    k = 1
    for kind in node.attr("kinds"):
        if kind == "rows":
            g, ids = (em.name(x) for x in node.inputs[k : k + 2])
            k += 2
        else:
            w, ids, h = (em.name(x) for x in node.inputs[k : k + 3])
            k += 3
        i, j, r, p, c = (em.fresh(s) for s in ("i", "j", "r", "p", "c"))
        em.emit(f"for {i} in range({ids}.shape[0]):")
        em.emit(f"for {j} in range({ids}.shape[1]):", 2)
        em.emit(f"{r} = {ids}[{i}, {j}]", 3)
        em.emit(f"if {r} < 0:", 3)
        em.emit("continue", 4)
        em.emit(f"{p} = np.searchsorted({rows}, {r})", 3)
        em.emit(f"for {c} in range({width}):", 3)
        if kind == "rows":
            em.emit(f"{name}[{p}, {c}] += {g}[{i}, {j} * {width} + {c}]", 4)
        else:
            em.emit(f"{name}[{p}, {c}] += {w}[{i}, {j}] * {h}[{i}, {c}]", 4)


@emitter("take_rows")
def emit_take_rows(em, node, name):
    x, rows = (em.name(a) for a in node.inputs)
    em.emit(f"{name} = np.empty({em.shape(node.shape)}, dtype=_F)")
    p, c = em.fresh("p"), em.fresh("c")
    em.emit(f"for {p} in range({rows}.shape[0]):")
    em.emit(f"for {c} in range({x}.shape[1]):", 2)
    em.emit(f"{name}[{p}, {c}] = {x}[{rows}[{p}], {c}]", 3)


@emitter("put_rows")
def emit_put_rows(em, node, name):
    em.emit(f"{name} = {em.name(node.inputs[0])}.copy()")
    write_rows(em, name, node)


def write_rows(em, dst: str, node) -> None:
    """``dst[rows[p], :] = values[p, :]`` for the ``put_rows`` node ``node``."""
    _, rows, values = node.inputs
    rows, values = em.name(rows), em.name(values)
    p, c = em.fresh("p"), em.fresh("c")
    em.emit(f"for {p} in range({rows}.shape[0]):")
    em.emit(f"for {c} in range({values}.shape[1]):", 2)
    em.emit(f"{dst}[{rows}[{p}], {c}] = {values}[{p}, {c}]", 3)
