"""Row-sparse parameter updates: the ops a training step uses instead of a dense table gradient.

A table ``E`` (``(V, d)``) used only through the gather ops gets a gradient that is a sum of
row scatters (``scatter_rows`` / ``scatter_outer``), non-zero on the rows the batch touched.
For an update rule that leaves a parameter and its state unchanged where the gradient is zero
(SGD, Adagrad), updating only those rows equals the dense update exactly. The step then computes

* ``rows = touched_rows(ids...)``: the sorted distinct row ids of the batch, ``(m,)`` where ``m``
  is a run-time length (a fresh dimension symbol bound by the generated code);
* ``g = row_gradient(rows, contributions...)``: the ``(m, d)`` gradient of those rows, the
  contributions of repeated ids summed first (so Adagrad sees the same ``g²`` as dense);
* ``take_rows(X, rows)`` for the parameter and each state, the rule applied on ``(m, d)``, and
* ``put_rows(X, rows, new)``, which the emitter writes straight into the caller's array.

A rule of the form ``p ← p + c·g`` with no state (SGD) needs none of that: ``add_rows`` adds
``c`` times each row contribution straight into the caller's array, in one pass.

None of these is differentiated: they exist only in the update part of a step.
"""

from __future__ import annotations

import sympy as sp

from .errors import UnsupportedExpressionError
from .node import Node, make
from .ops_gather import scatter_outer_op, scatter_rows_op
from .registry import Op, register
from .types import INT, TensorType


class _UpdateOnlyOp(Op):
    family = "sparse"

    def vjp(self, node, cotangent):
        raise UnsupportedExpressionError(f"{self.name} is part of an update and has no gradient")

    def jvp(self, node, tangents):
        raise UnsupportedExpressionError(f"{self.name} is part of an update and has no tangent")


class TouchedRowsOp(_UpdateOnlyOp):
    """Sorted distinct non-negative ids of all index inputs (``attrs: count, rows``)."""

    name = "touched_rows"
    arity = None

    def infer(self, inputs, attrs):
        return TensorType((attrs["count"],), INT)


class RowGradientOp(_UpdateOnlyOp):
    """The gradient of the touched rows: ``inputs = rows, *contribution inputs``.

    ``attrs["kinds"]`` says how to read the contributions that follow ``rows``: ``"rows"`` takes
    ``(G, ids)`` like ``scatter_rows``, ``"outer"`` takes ``(W, ids, H)`` like ``scatter_outer``.
    """

    name = "row_gradient"
    arity = None

    def infer(self, inputs, attrs):
        return TensorType((inputs[0].shape[0], attrs["width"]))


class TakeRowsOp(_UpdateOnlyOp):
    """``X[rows]``: the touched rows of a parameter or state array."""

    name = "take_rows"
    arity = 2

    def infer(self, inputs, attrs):
        x, rows = inputs
        return TensorType((rows.shape[0], x.shape[1]))


class PutRowsOp(_UpdateOnlyOp):
    """``X`` with ``X[rows] = values``; as an in-place target it writes only those rows."""

    name = "put_rows"
    arity = 3

    def infer(self, inputs, attrs):
        return inputs[0].type


class AddRowsOp(_UpdateOnlyOp):
    """``X + c * (sum of row scatters)``: ``inputs = X, c, *contribution inputs``.

    As an in-place target it adds each contribution straight into the caller's rows: the whole
    update of a rule of the form ``p ← p + c·g`` (SGD), with no coalescing needed.
    ``attrs["kinds"]`` reads the contributions like :class:`RowGradientOp`.
    """

    name = "add_rows"
    arity = None

    def infer(self, inputs, attrs):
        return inputs[0].type


touched_rows_op = register(TouchedRowsOp())
add_rows_op = register(AddRowsOp())
row_gradient_op = register(RowGradientOp())
take_rows_op = register(TakeRowsOp())
put_rows_op = register(PutRowsOp())

_KINDS = {scatter_rows_op: "rows", scatter_outer_op: "outer"}


def touched_rows(ids: list[Node], table_rows, count: sp.Symbol) -> Node:
    """Sorted distinct ids in ``ids`` (each ``(n, k)``, negatives skipped); length ``count``."""
    return make(touched_rows_op, tuple(ids), (("count", count), ("rows", table_rows)))


def row_gradient(rows: Node, scatters: list[Node]) -> Node:
    """The ``(m, d)`` sum of the row scatters ``scatters`` restricted to ``rows``."""
    inputs: list[Node] = [rows]
    kinds = []
    for s in scatters:
        kinds.append(_KINDS[s.op])
        inputs.extend(s.inputs)
    width = scatters[0].shape[1]
    return make(row_gradient_op, tuple(inputs), (("kinds", tuple(kinds)), ("width", width)))


def add_rows(x: Node, coefficient: Node, scatters: list[Node]) -> Node:
    """``x + coefficient * sum(scatters)`` (a scalar ``coefficient``), row by row."""
    inputs: list[Node] = [x, coefficient]
    kinds = []
    for s in scatters:
        kinds.append(_KINDS[s.op])
        inputs.extend(s.inputs)
    return make(add_rows_op, tuple(inputs), (("kinds", tuple(kinds)),))


def take_rows(x: Node, rows: Node) -> Node:
    return make(take_rows_op, (x, rows), ())


def put_rows(x: Node, rows: Node, values: Node) -> Node:
    return make(put_rows_op, (x, rows, values), ())


def scatter_ids(scatter: Node) -> Node:
    """The index input of a row scatter."""
    return scatter.inputs[1]


def is_row_scatter(node: Node) -> bool:
    return node.op in _KINDS
