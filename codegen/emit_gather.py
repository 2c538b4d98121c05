"""Numba loops for the embedding-lookup family (:mod:`symgrad.ir.ops_gather`) and the
hierarchical-softmax NLL (:mod:`symgrad.ir.ops_hsoftmax`).

Every kernel walks the ``(n, k)`` index matrix once and touches only the chosen rows, so its cost
is ``O(n k d)`` whatever the vocabulary size. Negative ids are padding and are skipped; an id past
the table is an ``IndexError`` (the caller's arguments are also checked, with names, before the
call: see ``Compiled``), never a read out of bounds.
"""

from __future__ import annotations

from .emit_structural import emitter

RANGE_ERROR = 'raise IndexError("an index input holds an id past the rows of its table")'


def _rows_of_ids(em, ids: str, table_rows: str, indent: int = 1) -> tuple[str, str, str, int]:
    """Open ``for i, j`` over ``ids``, bind ``r = ids[i, j]``, skip padding, check the range."""
    i, j, r = em.fresh("i"), em.fresh("j"), em.fresh("r")
    em.emit(f"for {i} in range({ids}.shape[0]):", indent)
    em.emit(f"for {j} in range({ids}.shape[1]):", indent + 1)
    inner = indent + 2
    em.emit(f"{r} = {ids}[{i}, {j}]", inner)
    em.emit(f"if {r} < 0:", inner)
    em.emit("continue", inner + 1)
    em.emit(f"if {r} >= {table_rows}:", inner)
    em.emit(RANGE_ERROR, inner + 1)
    return i, j, r, inner


#: Bytes per cache line on the x86 and ARM CPUs Numba targets (the prefetch stride).
LINE_BYTES = 64
#: How many ids ahead of the row being read the next rows are prefetched.
PREFETCH_AHEAD = 8


def _prefetch_ahead(em, table: str, ids: str, i: str, j: str, inner: int) -> None:
    """Prefetch the table row ``PREFETCH_AHEAD`` ids further on (``codegen/prefetch.py``)."""
    flat, ia, ja, ra, c = (em.fresh(x) for x in ("ahead", "ia", "ja", "ra", "c"))
    width = ids + ".shape[1]"
    step = LINE_BYTES // (4 if em.dtype == "float32" else 8)  # elements per cache line
    em.emit(f"{flat} = {i} * {width} + {j} + {PREFETCH_AHEAD}", inner)
    em.emit(f"{ia} = {flat} // {width}", inner)
    em.emit(f"if {ia} < {ids}.shape[0]:", inner)
    em.emit(f"{ja} = {flat} - {ia} * {width}", inner + 1)
    em.emit(f"{ra} = {ids}[{ia}, {ja}]", inner + 1)
    em.emit(f"if {ra} >= 0:", inner + 1)
    em.emit(f"for {c} in range(0, {table}.shape[1], {step}):", inner + 2)
    em.emit(f"prefetch_element({table}, {ra}, {c})", inner + 3)


def _zeros_over_ids(em, node, name, ids: str, table_rows: str):
    """``name = zeros(shape)``, then the loop over the non-padding ids (see _rows_of_ids)."""
    em.allocate(name, node.shape, fill=0)
    return _rows_of_ids(em, ids, table_rows)


def _for_columns(em, count: str, inner: int, statement) -> None:
    """``for c in range(count): statement(c)`` at indentation ``inner``."""
    c = em.fresh("c")
    em.emit(f"for {c} in range({count}):", inner)
    em.emit(statement(c), inner + 1)


@emitter("gather_rows")
def emit_gather_rows(em, node, name):
    table, ids = (em.name(x) for x in node.inputs)
    i, j, r, inner = _zeros_over_ids(em, node, name, ids, f"{table}.shape[0]")
    width = f"{table}.shape[1]"
    _for_columns(
        em, width, inner, lambda c: f"{name}[{i}, {j} * {width} + {c}] = {table}[{r}, {c}]"
    )


@emitter("scatter_rows")
def emit_scatter_rows(em, node, name):
    g, ids = (em.name(x) for x in node.inputs)
    i, j, r, inner = _zeros_over_ids(em, node, name, ids, f"{name}.shape[0]")
    width = f"{name}.shape[1]"
    _for_columns(em, width, inner, lambda c: f"{name}[{r}, {c}] += {g}[{i}, {j} * {width} + {c}]")


@emitter("gather_dot")
def emit_gather_dot(em, node, name):
    table, ids, h = (em.name(x) for x in node.inputs)
    i, j, r, inner = _zeros_over_ids(em, node, name, ids, f"{table}.shape[0]")
    _prefetch_ahead(em, table, ids, i, j, inner)
    acc = em.fresh("acc")
    em.emit(f"{acc} = _F(0.0)", inner)
    _for_columns(
        em, f"{table}.shape[1]", inner, lambda c: f"{acc} += {table}[{r}, {c}] * {h}[{i}, {c}]"
    )
    em.emit(f"{name}[{i}, {j}] = {acc}", inner)


@emitter("bag_rows")
def emit_bag_rows(em, node, name):
    table, ids, w = (em.name(x) for x in node.inputs)
    i, j, r, inner = _zeros_over_ids(em, node, name, ids, f"{table}.shape[0]")
    _prefetch_ahead(em, table, ids, i, j, inner)
    weight = em.fresh("wt")
    em.emit(f"{weight} = {w}[{i}, {j}]", inner)
    _for_columns(
        em,
        f"{table}.shape[1]",
        inner,
        lambda c: f"{name}[{i}, {c}] += {weight} * {table}[{r}, {c}]",
    )


@emitter("scatter_outer")
def emit_scatter_outer(em, node, name):
    w, ids, h = (em.name(x) for x in node.inputs)
    i, j, r, inner = _zeros_over_ids(em, node, name, ids, f"{name}.shape[0]")
    weight = em.fresh("wt")
    em.emit(f"{weight} = {w}[{i}, {j}]", inner)
    _for_columns(
        em, f"{h}.shape[1]", inner, lambda c: f"{name}[{r}, {c}] += {weight} * {h}[{i}, {c}]"
    )


@emitter("hsoftmax_nll")
def emit_hsoftmax_nll(em, node, name):
    """``Σ_j softplus(−signs[i, j] · S[i, j])`` per example over the non-padding path entries.

    ``S`` is the ``gather_dot`` of the path rows (its ids were range-checked there), so this is
    one pass over ``(n, L)`` numbers; ``fast_softplus`` is stable for scores of any size.
    """
    scores, paths, signs = (em.name(x) for x in node.inputs)
    i, j, acc = em.fresh("i"), em.fresh("j"), em.fresh("acc")
    em.emit(f"{name} = np.empty({em.shape(node.shape)}, dtype=_F)")
    em.emit(f"for {i} in range({paths}.shape[0]):")
    em.emit(f"{acc} = _F(0.0)", 2)
    em.emit(f"for {j} in range({paths}.shape[1]):", 2)
    em.emit(f"if {paths}[{i}, {j}] >= 0:", 3)
    em.emit(f"{acc} += fast_softplus(-{signs}[{i}, {j}] * {scores}[{i}, {j}])", 4)
    em.emit(f"{name}[{i}, 0] = {acc}", 2)
