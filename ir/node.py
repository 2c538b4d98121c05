"""The immutable, hash-consed IR node.

Building a node that already exists (same op, same inputs, same attributes) returns the existing
object, so common subexpressions merge as the graph is built and node identity is value equality.
"""

from __future__ import annotations

import itertools
import weakref
from typing import TYPE_CHECKING

from .types import TensorType

if TYPE_CHECKING:  # pragma: no cover
    from .registry import Op

_interned: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_counter = itertools.count()


class Node:
    """One value in the IR: ``op(*inputs; attrs)`` with a static :class:`TensorType`.

    Do not construct directly; use :func:`make` (or an op's ``__call__``), which interns.
    """

    __slots__ = ("op", "inputs", "attrs", "type", "uid", "__weakref__")

    def __init__(self, op: Op, inputs: tuple, attrs: tuple, type_: TensorType):
        self.op = op
        self.inputs = inputs
        self.attrs = attrs
        self.type = type_
        self.uid = next(_counter)

    @property
    def shape(self) -> tuple:
        return self.type.shape

    @property
    def ndim(self) -> int:
        return len(self.type.shape)

    def attr(self, name: str, default=None):
        for key, value in self.attrs:
            if key == name:
                return value
        return default

    def __repr__(self) -> str:
        args = ", ".join(f"%{i.uid}" for i in self.inputs)
        attrs = ", ".join(f"{k}={v}" for k, v in self.attrs if k != "body")
        inner = ", ".join(x for x in (args, attrs) if x)
        return f"%{self.uid} = {self.op.name}({inner}) : {self.type}"

    # Identity is value equality thanks to interning.
    __hash__ = object.__hash__

    def __eq__(self, other) -> bool:
        return self is other


def make(op: Op, inputs=(), attrs=()) -> Node:
    """Return the unique node ``op(*inputs; attrs)``, inferring its type."""
    inputs = tuple(inputs)
    attrs = tuple(attrs)
    key = (op, tuple(id(i) for i in inputs), attrs)
    node = _interned.get(key)
    if node is not None and node.inputs == inputs:
        return node
    type_ = op.infer(inputs, dict(attrs))
    node = Node(op, inputs, attrs, type_)
    _interned[key] = node
    return node


def toposort(outputs, stop=()) -> list[Node]:
    """Nodes reachable from ``outputs``, inputs before users (iterative: no recursion limit).

    Nodes in ``stop`` are included but their inputs are not followed.
    """
    order: list[Node] = []
    seen: set[int] = set()
    stop_ids = {id(s) for s in stop}
    for root in outputs:
        if root is None or id(root) in seen:
            continue
        stack = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            if id(node) in stop_ids:
                continue
            for inp in reversed(node.inputs):
                if id(inp) not in seen:
                    stack.append((inp, False))
    return order


def consumers(order) -> dict[int, list[Node]]:
    """Map from node id to the nodes (in ``order``) that use it."""
    users: dict[int, list[Node]] = {id(n): [] for n in order}
    for n in order:
        for i in n.inputs:
            users.setdefault(id(i), []).append(n)
    return users


def substitute(outputs: list, mapping: dict[int, Node]) -> list:
    """Rebuild ``outputs`` with the nodes whose ids are keys of ``mapping`` replaced.

    ``None`` entries pass through. Matching is on the original nodes, before their inputs are
    rebuilt, so replacing a node and one of its ancestors at once works.
    """
    new: dict[int, Node] = {}
    for node in toposort([o for o in outputs if o is not None]):
        replacement = mapping.get(id(node))
        if replacement is not None:
            new[id(node)] = replacement
            continue
        inputs = tuple(new[id(i)] for i in node.inputs)
        new[id(node)] = node if inputs == node.inputs else make(node.op, inputs, node.attrs)
    return [None if o is None else new[id(o)] for o in outputs]
