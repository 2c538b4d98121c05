"""symgrad.ir: types, the hash-consed node, the op registry and graph utilities."""

from . import functions, ops_elementwise, ops_linalg, ops_reduce, ops_shape, ops_source  # noqa: F401
from .errors import CacheError, InputError, ShapeError, SymgradError, UnsupportedExpressionError
from .node import Node, consumers, make, toposort
from .registry import REGISTRY, Op, get_op, register
from .types import FLOAT, INT, TensorType

__all__ = [
    "CacheError", "InputError", "ShapeError", "SymgradError", "UnsupportedExpressionError",
    "Node", "consumers", "make", "toposort", "REGISTRY", "Op", "get_op", "register",
    "FLOAT", "INT", "TensorType",
]  # fmt: skip
