"""Neural-network reductions: the max shift, and log-sum-exp / (log-)softmax built on it.

``logsumexp``, ``log_softmax`` and ``softmax`` are invariant under shifting their input by a
constant along the reduced axes, so they are built from elementwise ops, ``sum`` and one new op,
:class:`MaxShiftOp`: the maximum along the axes, used as that constant. With ``m`` the shift,

* ``logsumexp(x) = m + log(sum(exp(x - m)))``,
* ``log_softmax(x) = (x - m) - log(sum(exp(x - m)))``,
* ``softmax(x) = exp(x - m) / sum(exp(x - m))``.

Nothing overflows (``exp`` only sees values ``<= 0``), and unlike ``x - logsumexp(x)`` no value is
the difference of two large numbers, so float32 stays accurate for logits of ±1e4. Because the
results do not depend on the shift, the shift has no gradient: its VJP and JVP are zero, and the
gradients the AD walkers derive from the rest of the graph are exact (for ``logsumexp`` the
softmax weights ``exp(x - m) / sum(...)``; for log-softmax ``g - softmax * sum(g)``), to any order.

Along the last axis, the common case (the classes of a batch of logits), the three are fused ops
instead, one loop nest each (:mod:`symgrad.ir.ops_softmax_rows`), with the same numerics.
"""

from __future__ import annotations

import sympy as sp

from . import ops_elementwise as ew
from .errors import ShapeError
from .node import Node, make
from .ops_softmax_rows import along_last_axis, row_op
from .registry import Op, register
from .types import TensorType, shape_str


def _kept_shape(shape: tuple, axes: tuple) -> tuple:
    """``shape`` with the reduced ``axes`` set to 1 (the keepdims shape)."""
    return tuple(1 if k in axes else d for k, d in enumerate(shape))


class MaxShiftOp(Op):
    """The maximum of ``x`` along ``axes`` (kept as size 1), or 0 where that maximum is infinite.

    Only for shifting shift-invariant formulas (its gradient is zero by definition). The
    infinite case keeps those formulas right: all ``-inf`` gives ``logsumexp = -inf``, any
    ``+inf`` gives ``+inf``, instead of ``inf - inf = nan``. NaN inputs are never the maximum;
    they reach the sum and propagate.
    """

    name = "max_shift"
    family = "reduce"
    arity = 1

    def infer(self, inputs, attrs):
        (x,) = inputs
        axes = attrs["axes"]
        if not axes or any(not 0 <= a < x.ndim for a in axes):
            raise ShapeError(f"max_shift over axes {axes} of an array of {shape_str(x.shape)}")
        return TensorType(_kept_shape(x.shape, axes), x.type.kind)

    def vjp(self, node, cotangent):
        return [None]

    def jvp(self, node, tangents):
        return None


max_shift_op = register(MaxShiftOp())


def _axes(x: Node, axes) -> tuple:
    if axes is None:
        return tuple(range(x.ndim))
    return tuple(sorted({a % x.ndim for a in axes}))


def max_shift(x: Node, axes: tuple | None = None) -> Node:
    """The shift for ``x`` along ``axes`` (default all), shaped to broadcast against ``x``."""
    return make(max_shift_op, (x,), (("axes", _axes(x, axes)),))


def _shifted(x: Node, axes: tuple) -> tuple[Node, Node, Node]:
    """``(x - m, exp(x - m), sum(exp(x - m)))`` with the sum kept broadcastable against ``x``."""
    from .ops_reduce import reduce_sum

    d = ew.sub(x, max_shift(x, axes))
    e = ew.apply(sp.exp(ew.a0), [d], "exp")
    return d, e, reduce_sum(e, axes, keepdims=True)


def _log(x: Node) -> Node:
    return ew.apply(sp.log(ew.a0), [x], "log")


def logsumexp(x: Node, axes: tuple | None = None, keepdims: bool = False) -> Node:
    """Stable ``log(sum(exp(x)))`` over ``axes`` (default: all) of ``x``.

    Examples
    --------
    >>> from symgrad.ir.ops_source import input_node
    >>> logsumexp(input_node("z", (4, 3)), axes=(1,), keepdims=True).shape
    (4, 1)
    """
    from .ops_shape import reshape

    if x.ndim == 0:
        return x
    axes = _axes(x, axes)
    if along_last_axis(x, axes):
        y = row_op("logsumexp", x)
    else:
        _, _, s = _shifted(x, axes)
        y = ew.add(max_shift(x, axes), _log(s))
    if keepdims:
        return y
    return reshape(y, tuple(d for k, d in enumerate(x.shape) if k not in axes))


def log_softmax(x: Node, axes: tuple = (1,)) -> Node:
    """``(x - m) - log(sum(exp(x - m)))`` along ``axes``: finite for any finite ``x``."""
    if along_last_axis(x, _axes(x, axes)):
        return row_op("log_softmax", x)
    d, _, s = _shifted(x, _axes(x, axes))
    return ew.sub(d, _log(s))


def softmax(x: Node, axes: tuple = (1,)) -> Node:
    """``exp(x - m) / sum(exp(x - m))`` along ``axes``: never overflows, rows sum to 1."""
    if along_last_axis(x, _axes(x, axes)):
        return row_op("softmax", x)
    _, e, s = _shifted(x, _axes(x, axes))
    return ew.div(e, s)


def is_shifted(node: Node) -> bool:
    """Whether ``node`` is ``x - max_shift(...)`` (already stable: rewrites leave it alone)."""
    return (
        isinstance(node.op, ew.ElementwiseOp)
        and node.op.body == ew.a0 - ew.a1
        and len(node.inputs) == 2
        and node.inputs[1].op is max_shift_op
    )
