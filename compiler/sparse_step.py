"""Row-sparse updates in a training step: when and how a table is updated only where touched.

A parameter used only through the embedding gathers has a gradient that is a sum of row scatters
(:mod:`symgrad.ir.ops_gather`). If the update rule leaves a parameter and its state unchanged
wherever the gradient is zero, updating only the touched rows is *exactly* the dense update, at a
cost of ``O(rows touched)`` instead of ``O(V)``: the rule is checked symbolically
(:func:`is_exact_when_zero`), which holds for SGD and Adagrad but not for rules with decay or
momentum (Momentum, RMSprop, Adam change untouched rows too). Those get the dense update unless
the caller asks for lazy sparse updates (``sparse=True``), TensorFlow's "LazyAdam" behaviour.
"""

from __future__ import annotations

import sympy as sp

from ..ir.node import Node
from ..ir.ops_elementwise import ARGS, ElementwiseOp
from ..ir.ops_sparse import is_row_scatter, put_rows, row_gradient, scatter_ids, take_rows
from ..ir.ops_sparse import touched_rows as touched_rows_node

SPARSE_MODES = ("auto", True, False)


def is_exact_when_zero(rule) -> bool:
    """Whether ``rule`` with a zero gradient leaves the parameter and every state unchanged."""
    current = {rule.param: rule.param, rule.grad: sp.Integer(0)}
    for _, placeholder in rule.states:
        current[placeholder] = placeholder
    for target, body in rule.updates:
        current[target] = sp.sympify(body).xreplace(current)
    targets = [rule.param] + [p for _, p in rule.states]
    return all(sp.simplify(current[t] - t) == 0 for t in targets)


def additive_coefficient(rule) -> sp.Expr | None:
    """``c`` if ``rule`` is ``p ← p + c·g`` with no state and ``c`` free of ``p`` and ``g``.

    Such a rule (SGD) is applied by adding ``c`` times each row contribution straight into the
    table: no distinct rows, no coalesced gradient, one pass.
    """
    if rule.states or len(rule.updates) != 1 or rule.updates[0][0] != rule.param:
        return None
    body = sp.sympify(rule.updates[0][1])
    c = sp.diff(body, rule.grad)
    if c.has(rule.param, rule.grad) or sp.simplify(body - rule.param - c * rule.grad) != 0:
        return None
    return c


def row_scatters(grad: Node) -> list[Node] | None:
    """The row scatters whose sum is ``grad``, or ``None`` if it is anything else."""
    if is_row_scatter(grad):
        return [grad]
    op = grad.op
    if isinstance(op, ElementwiseOp) and op.body == ARGS[0] + ARGS[1]:
        if any(tuple(i.shape) != tuple(grad.shape) for i in grad.inputs):
            return None
        parts = [row_scatters(i) for i in grad.inputs]
        if any(p is None for p in parts):
            return None
        return [s for p in parts for s in p]
    return None


class RowView:
    """The touched rows of one table: its compact gradient and row views of its arrays."""

    def __init__(self, table: Node, scatters: list[Node], count: sp.Symbol):
        self.scatters = scatters
        ids = []
        for s in scatters:
            if scatter_ids(s) not in ids:
                ids.append(scatter_ids(s))
        self.rows = touched_rows_node(ids, table.shape[0], count)
        self.grad = row_gradient(self.rows, scatters)

    def take(self, array: Node) -> Node:
        return take_rows(array, self.rows)

    def put(self, array: Node, values: Node) -> Node:
        return put_rows(array, self.rows, values)


def row_view(table: Node, grad: Node, rule, sparse, index: int) -> RowView | None:
    """A :class:`RowView` if ``table`` gets a row-sparse update under mode ``sparse``."""
    if sparse is False:
        return None
    scatters = row_scatters(grad)
    if scatters is None:
        return None
    if sparse == "auto" and not is_exact_when_zero(rule):
        return None
    return RowView(table, scatters, sp.Dummy(f"touched{index}", integer=True, positive=True))
