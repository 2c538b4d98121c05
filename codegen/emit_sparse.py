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
    """Distinct ids by one argsort and a linear pass, which also records each id's slot.

    Every id of every index input goes into one buffer (row-major, padding included); after
    sorting, a run of equal ids gets one slot, written back at each id's buffer position, so
    ``row_gradient`` finds the slot of ``ids[i, j]`` by position instead of searching.
    """
    limit = em.dim(node.attr("rows"))
    buf, slots, order = em.fresh("ids"), em.fresh("slots"), em.fresh("order")
    size = " + ".join(f"{em.name(a)}.size" for a in node.inputs)
    em.emit(f"{buf} = np.empty({size}, dtype=np.int64)")
    offsets = {}
    offset = "0"
    for a in node.inputs:
        src = em.name(a)
        start = em.fresh("off")
        em.emit(f"{start} = {offset}")
        offsets[id(a)] = start
        i, j, r = em.fresh("i"), em.fresh("j"), em.fresh("r")
        em.emit(f"for {i} in range({src}.shape[0]):")
        em.emit(f"for {j} in range({src}.shape[1]):", 2)
        em.emit(f"{r} = {src}[{i}, {j}]", 3)
        em.emit(f"if {r} >= {limit}:", 3)
        em.emit(RANGE_ERROR, 4)
        em.emit(f"{buf}[{start} + {i} * {src}.shape[1] + {j}] = {r}", 3)
        offset = f"{start} + {src}.size"
    em.emit(f"{order} = np.argsort({buf})")
    em.allocate(slots, f"{buf}.size", fill=-1, dtype="np.int64")
    em.emit(f"{name} = np.empty({buf}.size, dtype=np.int64)")
    dim, q, e, r = em.fresh("m"), em.fresh("q"), em.fresh("e"), em.fresh("r")
    em.emit(f"{dim} = 0")
    em.emit(f"for {q} in range({buf}.size):")
    em.emit(f"{e} = {order}[{q}]", 2)
    em.emit(f"{r} = {buf}[{e}]", 2)
    em.emit(f"if {r} < 0:", 2)
    em.emit("continue", 3)
    em.emit(f"if {dim} == 0 or {r} != {name}[{dim} - 1]:", 2)
    em.emit(f"{name}[{dim}] = {r}", 3)
    em.emit(f"{dim} += 1", 3)
    em.emit(f"{slots}[{e}] = {dim} - 1", 2)
    em.emit(f"{name} = {name}[:{dim}]")
    em.dims[node.attr("count")] = dim
    em.row_slots[id(node)] = (slots, offsets)


def _add_contributions(em, dst: str, contributions, row_of, scale: str = "") -> None:
    """``dst[row_of(r, i, j, ids), :] += scale * contribution`` for each id ``r = ids[i, j]``
    of each row scatter.

    ``contributions`` are ``(kind, input nodes)`` pairs read like ``scatter_rows`` (``"rows"``:
    ``G, ids``) or ``scatter_outer`` (``"outer"``: ``W, ids, H``).
    """
    width = em.fresh("w")
    em.emit(f"{width} = {dst}.shape[1]")
    for kind, inputs in contributions:
        names = [em.name(x) for x in inputs]
        ids = names[1]
        i, j, r, p, c = (em.fresh(s) for s in ("i", "j", "r", "p", "c"))
        em.emit(f"for {i} in range({ids}.shape[0]):")
        em.emit(f"for {j} in range({ids}.shape[1]):", 2)
        em.emit(f"{r} = {ids}[{i}, {j}]", 3)
        em.emit(f"if {r} < 0:", 3)
        em.emit("continue", 4)
        em.emit(f"{p} = {row_of(r, i, j, inputs[1])}", 3)
        if kind == "rows":
            term = f"{scale}{names[0]}[{i}, {j} * {width} + {c}]"
        else:
            weight = em.fresh("wt")
            em.emit(f"{weight} = {scale}{names[0]}[{i}, {j}]", 3)
            term = f"{weight} * {names[2]}[{i}, {c}]"
        em.emit(f"for {c} in range({width}):", 3)
        em.emit(f"{dst}[{p}, {c}] += {term}", 4)


def _contributions(node, first: int) -> list:
    out, k = [], first
    for kind in node.attr("kinds"):
        size = 2 if kind == "rows" else 3
        out.append((kind, node.inputs[k : k + size]))
        k += size
    return out


@emitter("row_gradient")
def emit_row_gradient(em, node, name):
    slots, offsets = em.row_slots[id(node.inputs[0])]
    em.allocate(name, node.shape, fill=0)

    def slot(r, i, j, ids) -> str:
        return f"{slots}[{offsets[id(ids)]} + {i} * {em.name(ids)}.shape[1] + {j}]"

    _add_contributions(em, name, _contributions(node, 1), slot)


@emitter("add_rows")
def emit_add_rows(em, node, name):
    em.emit(f"{name} = {em.name(node.inputs[0])}.copy()")
    add_rows_in_place(em, name, node)


def add_rows_in_place(em, dst: str, node) -> None:
    """``dst[r, :] += c * contribution`` for the ``add_rows`` node ``node``."""
    coefficient = em.name(node.inputs[1])
    _add_contributions(
        em, dst, _contributions(node, 2), lambda r, i, j, ids: r, scale=f"{coefficient} * "
    )


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
