"""Source ops: graph inputs and constants (no inputs, no gradient to propagate)."""

from __future__ import annotations

import sympy as sp

from .node import Node, make
from .registry import Op, register
from .types import FLOAT, TensorType, as_dim


class SourceOp(Op):
    """An op with no inputs: nothing to propagate a cotangent or tangent to."""

    family = "source"
    arity = 0

    def vjp(self, node, cotangent):
        return []

    def jvp(self, node, tangents):
        return None


class InputOp(SourceOp):
    """A graph input: ``attrs = name, shape, kind``. Its node *is* the variable."""

    name = "input"

    def infer(self, inputs, attrs):
        return TensorType(tuple(attrs["shape"]), attrs.get("kind", FLOAT))


class ConstOp(SourceOp):
    """A constant ``value`` (a SymPy number) filling ``shape``."""

    name = "const"

    def infer(self, inputs, attrs):
        return TensorType(tuple(attrs.get("shape", ())), FLOAT)


class EyeOp(SourceOp):
    """The ``n x n`` identity matrix."""

    name = "eye"

    def infer(self, inputs, attrs):
        n = attrs["n"]
        return TensorType((n, n), FLOAT)


input_op = register(InputOp())
const_op = register(ConstOp())
eye_op = register(EyeOp())


def input_node(name: str, shape=(), kind: str = FLOAT, role: str = "arg") -> Node:
    """The graph input called ``name`` with the given static shape.

    ``role`` separates user arguments from internal inputs (``"seed"``, ``"tangent"``,
    ``"tape"``) so a user symbol can never collide with them, whatever its name.
    """
    shape = tuple(as_dim(d) for d in shape)
    return make(input_op, (), (("kind", kind), ("name", name), ("role", role), ("shape", shape)))


def const(value, shape=()) -> Node:
    """A constant node; ``value`` is kept exact as a SymPy number."""
    value = sp.sympify(value)
    shape = tuple(as_dim(d) for d in shape)
    return make(const_op, (), (("shape", shape), ("value", value)))


def eye(n) -> Node:
    return make(eye_op, (), (("n", as_dim(n)),))


def is_const(node: Node, value=None) -> bool:
    if node.op is not const_op:
        return False
    return value is None or node.attr("value") == value


def zeros_like_shape(shape) -> Node:
    return const(0, shape)
