"""Shape checks of a compiled call's inputs, precomputed from the graph's input shapes.

Each input's shape is a tuple of ints and SymPy dimension symbols (or expressions of them);
:class:`ShapeChecks` turns them into plain-int comparisons once, so that a call binds each
symbolic dimension to a size and raises a :class:`~symgrad.ir.errors.ShapeError` naming the input,
the expected and the actual shape, without any SymPy work.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ..ir.errors import ShapeError


def shape_str(shape) -> str:
    """``(n, 3)``-style text of a shape (a trailing comma for one axis, as Python writes it).

    >>> shape_str((2,)), shape_str(("n", 3))
    ('(2,)', '(n, 3)')
    """
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def parse_dim(d):
    """A dimension from its stored form: an int as is, anything else as a SymPy expression."""
    if isinstance(d, int):
        return d
    return sp.sympify(d)


class ShapeChecks:
    """The shape checks of a call, precomputed on plain ints (no SymPy work per call).

    Each matrix input's shape becomes a tuple of ``(fixed, value)`` pairs: a fixed size, or the
    position of its dimension symbol in :attr:`symbols`. Dimensions that are expressions of
    symbols (``k*d``) are checked after the symbols are bound.
    """

    def __init__(self, shapes: list[tuple], is_matrix: list[bool]):
        self.symbols = sorted(
            {d for s in shapes for d in s if not isinstance(d, int) and d.is_Symbol}, key=str
        )
        position = {s: j for j, s in enumerate(self.symbols)}
        self.shapes = shapes
        self.matrix_slots = [k for k, m in enumerate(is_matrix) if m]
        self.scalar_slots = [k for k, m in enumerate(is_matrix) if not m]
        self.codes = [
            tuple((True, d) if isinstance(d, int) else (False, position.get(d, -1)) for d in shape)
            for shape in shapes
        ]
        #: symbol -> (input position, axis) of the first matrix input that has it, which is
        #: where the checks read its size
        first = {}
        for k in self.matrix_slots:
            for axis, (fixed, want) in enumerate(self.codes[k]):
                if not fixed and want >= 0:
                    first.setdefault(want, (k, axis))
        self.first_use = {self.symbols[j]: first[j] for j in sorted(first)}
        self.expression_dims = sorted(
            {d for s in shapes for d in s if not isinstance(d, int) and not d.is_Symbol}, key=str
        )

    def bind(self, values: list, names: list[str]) -> None:
        """Check every matrix input's shape and that each symbol has one size in all of them
        (:attr:`first_use` then says where each size was read)."""
        sizes: list = [None] * len(self.symbols)
        owners: list = [None] * len(self.symbols)
        for k in self.matrix_slots:
            v = values[k]
            code = self.codes[k]
            if type(v) is not np.ndarray or v.ndim != len(code):
                self._mismatch(k, names, np.shape(v))
            for axis, ((fixed, want), got) in enumerate(zip(code, v.shape)):
                if fixed:
                    if want != got:
                        self._mismatch(k, names, v.shape)
                elif want >= 0:
                    bound = sizes[want]
                    if bound is None:
                        sizes[want], owners[want] = got, k
                    elif bound != got:
                        raise ShapeError(
                            f"dimension {self.symbols[want]} is {bound} from input "
                            f"{names[owners[want]]!r} but {got} from input {names[k]!r} "
                            f"(axis {axis})"
                        )

    def _mismatch(self, k: int, names: list[str], got) -> None:
        raise ShapeError(
            f"input {names[k]!r} expected shape {shape_str(self.shapes[k])}, got {shape_str(got)}"
        )

    def check_expressions(self, values: list, names: list[str], dims: dict) -> None:
        env = {s: b[0] for s, b in dims.items()}
        for want in self.expression_dims:
            expected = int(want.xreplace(env))
            for k, shape in enumerate(self.shapes):
                for axis, d in enumerate(shape):
                    if d == want and values[k].shape[axis] != expected:
                        raise ShapeError(
                            f"input {names[k]!r} axis {axis} should be {want} = {expected}, "
                            f"got {values[k].shape[axis]}"
                        )
