"""The op registry: every op is one :class:`Op` object registered here by name.

An op knows its arity, how to infer its output type, its VJP (built from IR nodes) and its JVP.
The AD walkers, passes and emitters know no specific op; they ask the op.
"""

from __future__ import annotations

from .errors import UnsupportedExpressionError
from .node import Node, make
from .types import TensorType

REGISTRY: dict[str, Op] = {}


class Op:
    """Base class of IR operations.

    Subclasses override :meth:`infer`, :meth:`vjp` and :meth:`jvp`. ``family`` groups ops for
    passes and codegen: ``"elementwise"``, ``"linalg"``, ``"reduce"``, ``"shape"``, ``"source"``.
    """

    name: str = "op"
    family: str = "structural"
    arity: int | None = None

    def __call__(self, *inputs: Node, **attrs) -> Node:
        if self.arity is not None and len(inputs) != self.arity:
            raise TypeError(f"{self.name} takes {self.arity} inputs, got {len(inputs)}")
        return make(self, inputs, tuple(sorted(attrs.items())))

    def infer(self, inputs: tuple, attrs: dict) -> TensorType:
        raise NotImplementedError

    def vjp(self, node: Node, cotangent: Node) -> list:
        """Cotangents of each input given the cotangent of ``node`` (``None``: no gradient)."""
        raise UnsupportedExpressionError(f"op {self.name!r} has no VJP rule")

    def jvp(self, node: Node, tangents: list) -> Node | None:
        """Tangent of ``node`` given tangents of its inputs (``None`` entries are zero)."""
        raise UnsupportedExpressionError(f"op {self.name!r} has no JVP rule")

    def __repr__(self) -> str:
        return f"<op {self.name}>"


def register(op: Op) -> Op:
    """Add ``op`` to the registry under its name and return it."""
    if op.name in REGISTRY and REGISTRY[op.name] is not op:
        raise ValueError(f"op {op.name!r} registered twice")
    REGISTRY[op.name] = op
    return op


def get_op(name: str) -> Op:
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnsupportedExpressionError(f"no op named {name!r} is registered") from None
