"""Lowerings of the ``symgrad.nn`` matrix vocabulary to IR.

Each function has the :func:`~symgrad.compiler.lower.register_lowering` signature
``(lowerer, expr) -> Node`` and reads the expression through a small duck-typed interface
(``function``/``operands`` for elementwise applications, ``arg``/``axis`` for reductions), so this
module does not import the top-level package: ``symgrad.nn`` binds them to its classes.

Log-sum-exp, softmax and log-softmax lower to max-shifted compositions of elementwise ops and
sums (:mod:`symgrad.ir.ops_nn`), so their gradients come from the op registry like everything
else (log-softmax backward is ``g - softmax * sum(g)``; with cross-entropy on top it becomes
``(softmax - y) / n``).
"""

from __future__ import annotations

import sympy as sp

from ..ir import ops_elementwise as ew
from ..ir import ops_nn
from ..ir.node import Node
from ..ir.ops_reduce import reduce_sum
from ..ir.ops_source import const


def lower_broadcast_apply(lowerer, expr) -> Node:
    """``f(A, b, ...)`` elementwise with NumPy broadcasting: one elementwise node.

    Number operands stay inside the scalar body (like the lowering of a plain function call), so
    ``leaky_relu(X, 1/100)`` has one input and its slope is a literal in the kernel.
    """
    body_args, nodes = [], []
    for operand in expr.operands:
        if operand.is_number:
            body_args.append(operand)
        else:
            body_args.append(ew.ARGS[len(nodes)])
            nodes.append(lowerer.lower(operand))
    body = sp.sympify(expr.function(*body_args))
    if not nodes:
        return const(body, expr.shape)
    return ew.apply(body, nodes, expr.function.__name__)


def lower_reduce_sum(lowerer, expr) -> Node:
    """``sum(X, axis)`` keeps the reduced axis as size 1: a column (n, 1) or a row (1, k)."""
    return reduce_sum(lowerer.lower(expr.arg), (expr.axis,), keepdims=True)


def lower_sum_all(lowerer, expr) -> Node:
    return reduce_sum(lowerer.lower(expr.arg))


def lower_logsumexp(lowerer, expr) -> Node:
    return ops_nn.logsumexp(lowerer.lower(expr.arg), (expr.axis,), keepdims=True)


def lower_logsumexp_all(lowerer, expr) -> Node:
    return ops_nn.logsumexp(lowerer.lower(expr.arg))


def lower_log_softmax(lowerer, expr) -> Node:
    return ops_nn.log_softmax(lowerer.lower(expr.arg), (expr.axis,))


def lower_softmax(lowerer, expr) -> Node:
    return ops_nn.softmax(lowerer.lower(expr.arg), (expr.axis,))
