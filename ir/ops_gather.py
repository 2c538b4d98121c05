"""Row gathers and scatter-adds: the embedding-lookup family.

All ops here choose rows of a table ``E`` (``(V, d)``, one row per vocabulary entry) with an
integer index matrix ``ids`` (``(n, k)``). An id of ``-1`` (any negative id) is padding: it reads
a zero row and receives no gradient, so bags and paths of unequal length share one matrix. An id
``>= V`` is an error raised by the generated code (never a read out of bounds).

=================  ==============  ===========================================================
op                 shape           meaning
=================  ==============  ===========================================================
``gather_rows``    ``(n, k*d)``    the ``k`` chosen rows of each example side by side
``scatter_rows``   ``(V, d)``      its transpose: the ``d``-wide blocks of ``G`` added into rows
``gather_dot``     ``(n, k)``      ``S[i, j] = E[ids[i, j]] · H[i]`` (scores against chosen rows)
``bag_rows``       ``(n, d)``      ``B[i] = Σ_j W[i, j] E[ids[i, j]]`` (weighted sum of rows)
``scatter_outer``  ``(V, d)``      ``D[ids[i, j]] += W[i, j] H[i]`` (the table gradient of both)
=================  ==============  ===========================================================

``gather_dot`` and ``bag_rows`` are each other's transposes in their float arguments, so every
VJP here is built from these five ops; none of them ever forms a dense ``(n, V)`` matrix. The
table gradients (``scatter_rows`` and ``scatter_outer``) are dense ``(V, d)`` values in the IR;
a training step turns them into row-sparse updates (:mod:`symgrad.compiler.sparse_step`).
"""

from __future__ import annotations

from .errors import ShapeError
from .node import Node, make
from .registry import Op, register
from .types import INT, TensorType, dims_equal, shape_str


def _check_table(op: str, table: Node, ids: Node) -> None:
    if ids.type.kind != INT or ids.ndim != 2:
        raise ShapeError(
            f"{op} needs an integer index matrix (n, k) as ids, got {ids.type} "
            "(declare it with symgrad.nn.Indices)"
        )
    if table.type.kind == INT or table.ndim != 2:
        raise ShapeError(f"{op} needs a float table (V, d), got {table.type}")


def _check_dim(op: str, what: str, a, b) -> None:
    if not dims_equal(a, b):
        raise ShapeError(f"{op}: {what} must match, got {a} and {b}")


def _check_per_id(op: str, name: str, x: Node, ids: Node) -> None:
    if x.ndim != 2:
        raise ShapeError(f"{op}: {name} must be a matrix, got {shape_str(x.shape)}")
    _check_dim(op, f"{name} rows and ids rows", x.shape[0], ids.shape[0])
    _check_dim(op, f"{name} columns and ids columns", x.shape[1], ids.shape[1])


def _tangent_sum(parts: list) -> Node | None:
    from . import ops_elementwise as ew

    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    total = parts[0]
    for p in parts[1:]:
        total = ew.add(total, p)
    return total


class GatherRowsOp(Op):
    """``gather_rows(E, ids)``: row ``i`` is ``E[ids[i, 0]], ..., E[ids[i, k-1]]`` concatenated."""

    name = "gather_rows"
    family = "gather"
    arity = 2

    def infer(self, inputs, attrs):
        table, ids = inputs
        _check_table(self.name, table, ids)
        return TensorType((ids.shape[0], ids.shape[1] * table.shape[1]))

    def vjp(self, node, cotangent):
        table, ids = node.inputs
        return [scatter_rows(cotangent, ids, table.shape), None]

    def jvp(self, node, tangents):
        if tangents[0] is None:
            return None
        return gather_rows(tangents[0], node.inputs[1])


class ScatterRowsOp(Op):
    """``scatter_rows(G, ids, V)``: a ``(V, d)`` zero table with each ``d``-wide block of ``G``
    added into the row its id names (``attrs: rows, width``)."""

    name = "scatter_rows"
    family = "scatter"
    arity = 2

    def infer(self, inputs, attrs):
        g, ids = inputs
        if ids.type.kind != INT or ids.ndim != 2 or g.ndim != 2:
            raise ShapeError(f"scatter_rows needs G (n, k*d) and int ids (n, k), got {g.type}")
        _check_dim(self.name, "G rows and ids rows", g.shape[0], ids.shape[0])
        _check_dim(self.name, "G columns and k*d", g.shape[1], ids.shape[1] * attrs["width"])
        return TensorType((attrs["rows"], attrs["width"]))

    def vjp(self, node, cotangent):
        return [gather_rows(cotangent, node.inputs[1]), None]

    def jvp(self, node, tangents):
        if tangents[0] is None:
            return None
        return scatter_rows(tangents[0], node.inputs[1], node.shape)


class GatherDotOp(Op):
    """``gather_dot(E, ids, H)``: ``S[i, j] = E[ids[i, j]] · H[i]`` (0 for padding)."""

    name = "gather_dot"
    family = "gather"
    arity = 3

    def infer(self, inputs, attrs):
        table, ids, h = inputs
        _check_table(self.name, table, ids)
        if h.ndim != 2:
            raise ShapeError(f"gather_dot needs H (n, d), got {shape_str(h.shape)}")
        _check_dim(self.name, "H rows and ids rows", h.shape[0], ids.shape[0])
        _check_dim(self.name, "H columns and table columns", h.shape[1], table.shape[1])
        return TensorType(tuple(ids.shape))

    def vjp(self, node, cotangent):
        table, ids, h = node.inputs
        return [
            scatter_outer(cotangent, ids, h, table.shape[0]),
            None,
            bag_rows(table, ids, cotangent),
        ]

    def jvp(self, node, tangents):
        table, ids, h = node.inputs
        dt, _, dh = tangents
        return _tangent_sum([
            gather_dot(dt, ids, h) if dt is not None else None,
            gather_dot(table, ids, dh) if dh is not None else None,
        ])  # fmt: skip


class BagRowsOp(Op):
    """``bag_rows(E, ids, W)``: ``B[i] = Σ_j W[i, j] E[ids[i, j]]`` over non-padding ids."""

    name = "bag_rows"
    family = "gather"
    arity = 3

    def infer(self, inputs, attrs):
        table, ids, w = inputs
        _check_table(self.name, table, ids)
        _check_per_id(self.name, "weights", w, ids)
        return TensorType((ids.shape[0], table.shape[1]))

    def vjp(self, node, cotangent):
        table, ids, w = node.inputs
        return [
            scatter_outer(w, ids, cotangent, table.shape[0]),
            None,
            gather_dot(table, ids, cotangent),
        ]

    def jvp(self, node, tangents):
        table, ids, w = node.inputs
        dt, _, dw = tangents
        return _tangent_sum([
            bag_rows(dt, ids, w) if dt is not None else None,
            bag_rows(table, ids, dw) if dw is not None else None,
        ])  # fmt: skip


class ScatterOuterOp(Op):
    """``scatter_outer(W, ids, H, V)``: a ``(V, d)`` zero table with ``W[i, j] H[i]`` added into
    row ``ids[i, j]`` (``attrs: rows``)."""

    name = "scatter_outer"
    family = "scatter"
    arity = 3

    def infer(self, inputs, attrs):
        w, ids, h = inputs
        if ids.type.kind != INT or ids.ndim != 2 or h.ndim != 2:
            raise ShapeError("scatter_outer needs W (n, k), int ids (n, k) and H (n, d)")
        _check_per_id(self.name, "weights", w, ids)
        _check_dim(self.name, "H rows and ids rows", h.shape[0], ids.shape[0])
        return TensorType((attrs["rows"], h.shape[1]))

    def vjp(self, node, cotangent):
        w, ids, h = node.inputs
        return [gather_dot(cotangent, ids, h), None, bag_rows(cotangent, ids, w)]

    def jvp(self, node, tangents):
        w, ids, h = node.inputs
        dw, _, dh = tangents
        rows = node.attr("rows")
        return _tangent_sum([
            scatter_outer(dw, ids, h, rows) if dw is not None else None,
            scatter_outer(w, ids, dh, rows) if dh is not None else None,
        ])  # fmt: skip


gather_rows_op = register(GatherRowsOp())
scatter_rows_op = register(ScatterRowsOp())
gather_dot_op = register(GatherDotOp())
bag_rows_op = register(BagRowsOp())
scatter_outer_op = register(ScatterOuterOp())

#: Ops whose value is a table gradient made of row contributions (sparse-update candidates).
SCATTER_OPS = (scatter_rows_op, scatter_outer_op)


def gather_rows(table: Node, ids: Node) -> Node:
    """The rows of ``table`` chosen by ``ids`` (``(n, k)``), concatenated per example.

    Examples
    --------
    >>> from symgrad.ir.ops_source import input_node
    >>> E, ids = input_node("E", (50, 8)), input_node("ids", (4, 5), kind="int")
    >>> gather_rows(E, ids).shape
    (4, 40)
    """
    return make(gather_rows_op, (table, ids), ())


def scatter_rows(g: Node, ids: Node, table_shape) -> Node:
    rows, width = table_shape
    return make(scatter_rows_op, (g, ids), (("rows", rows), ("width", width)))


def gather_dot(table: Node, ids: Node, h: Node) -> Node:
    return make(gather_dot_op, (table, ids, h), ())


def bag_rows(table: Node, ids: Node, weights: Node) -> Node:
    return make(bag_rows_op, (table, ids, weights), ())


def scatter_outer(weights: Node, ids: Node, h: Node, rows) -> Node:
    return make(scatter_outer_op, (weights, ids, h), (("rows", rows),))
