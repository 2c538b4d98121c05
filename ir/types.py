"""Types of IR values: a dtype kind and a shape of ints and SymPy dimension expressions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import sympy as sp

from .errors import ShapeError

Dim = Union[int, sp.Expr]

#: Kinds of values. The concrete float width is a compile option, not a node property.
FLOAT = "float"
INT = "int"
#: The kind of a multi-output node (a scan); its parts are read by ``*_output`` nodes.
TUPLE = "tuple"
#: The length of the vectorised variant compiled when scalar symbols receive 1-D arrays (calls
#: over points); generated code treats arrays along it as possibly millions long.
VECTOR_DIM = sp.Symbol("N_symgrad_vector")


def as_dim(d) -> Dim:
    """Normalise a dimension: Python ints stay ints, SymPy integers become ints."""
    if isinstance(d, (int,)) and not isinstance(d, bool):
        return d
    d = sp.sympify(d)
    if d.is_Integer:
        return int(d)
    return d


@dataclass(frozen=True)
class TensorType:
    """Shape and kind of an IR value.

    Parameters
    ----------
    shape
        Tuple of dimensions; each an ``int`` or a SymPy expression (e.g. a batch size ``n``).
    kind
        ``"float"`` or ``"int"``.
    """

    shape: tuple = ()
    kind: str = FLOAT

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def is_scalar(self) -> bool:
        return len(self.shape) == 0

    def __str__(self) -> str:
        dims = ", ".join(str(d) for d in self.shape)
        return f"{self.kind}[{dims}]"


def shape_str(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def broadcast_shapes(shapes, where: str = "") -> tuple:
    """NumPy broadcasting of static shapes (dims compared structurally)."""
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(ndim):
        dim = 1
        for s in shapes:
            k = axis - (ndim - len(s))
            if k < 0:
                continue
            d = s[k]
            if d == 1:
                continue
            if dim == 1:
                dim = d
            elif dim != d:
                detail = " x ".join(shape_str(s) for s in shapes)
                raise ShapeError(
                    f"cannot broadcast shapes {detail}{' in ' + where if where else ''}"
                )
        out.append(dim)
    return tuple(out)


def broadcast_axes(src: tuple, dst: tuple) -> tuple[tuple, tuple]:
    """Axes of ``dst`` that a value of shape ``src`` was broadcast along.

    Returns ``(leading, stretched)``: leading axes that ``src`` lacks, and axes where ``src``
    has size 1 but ``dst`` does not (indices into ``dst``).
    """
    lead = len(dst) - len(src)
    leading = tuple(range(lead))
    stretched = tuple(lead + k for k, d in enumerate(src) if d == 1 and dst[lead + k] != 1)
    return leading, stretched


def dims_equal(a: Dim, b: Dim) -> bool:
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    return sp.simplify(sp.sympify(a) - sp.sympify(b)) == 0


def free_dims(shape) -> set:
    """The SymPy symbols that appear in a shape."""
    out: set = set()
    for d in shape:
        if not isinstance(d, int):
            out |= d.free_symbols
    return out
