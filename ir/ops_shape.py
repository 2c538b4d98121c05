"""Shape and indexing ops: reshape, broadcast, transpose, element access, stacking."""

from __future__ import annotations

from .errors import ShapeError
from .node import Node, make
from .registry import Op, register
from .types import FLOAT, TensorType, as_dim, broadcast_axes, broadcast_shapes, shape_str


class ReshapeOp(Op):
    """Reshape keeping the element count (used to add or drop size-1 axes)."""

    name = "reshape"
    family = "shape"
    arity = 1

    def infer(self, inputs, attrs):
        return TensorType(tuple(attrs["shape"]), inputs[0].type.kind)

    def vjp(self, node, cotangent):
        return [reshape(cotangent, node.inputs[0].shape)]

    def jvp(self, node, tangents):
        (t,) = tangents
        return None if t is None else reshape(t, node.shape)


class BroadcastOp(Op):
    """Materialise NumPy broadcasting of the input to ``shape``."""

    name = "broadcast_to"
    family = "shape"
    arity = 1

    def infer(self, inputs, attrs):
        shape = tuple(attrs["shape"])
        if broadcast_shapes([inputs[0].shape, shape], "broadcast_to") != shape:
            raise ShapeError(f"cannot broadcast {shape_str(inputs[0].shape)} to {shape_str(shape)}")
        return TensorType(shape, inputs[0].type.kind)

    def vjp(self, node, cotangent):
        return [unbroadcast(cotangent, node.inputs[0].shape)]

    def jvp(self, node, tangents):
        (t,) = tangents
        return None if t is None else broadcast_to(t, node.shape)


class TransposeOp(Op):
    """Swap the two axes of a matrix."""

    name = "transpose"
    family = "shape"
    arity = 1

    def infer(self, inputs, attrs):
        (a,) = inputs
        if a.ndim != 2:
            raise ShapeError(f"transpose needs a matrix, got {shape_str(a.shape)}")
        return TensorType((a.shape[1], a.shape[0]), a.type.kind)

    def vjp(self, node, cotangent):
        return [transpose(cotangent)]

    def jvp(self, node, tangents):
        (t,) = tangents
        return None if t is None else transpose(t)


class IndexOp(Op):
    """One element ``a[index]`` of an array (a static index tuple)."""

    name = "index"
    family = "shape"
    arity = 1

    def infer(self, inputs, attrs):
        (a,) = inputs
        index = attrs["index"]
        if len(index) != a.ndim:
            raise ShapeError(f"index {index} does not match shape {shape_str(a.shape)}")
        for i, d in zip(index, a.shape):
            if isinstance(d, int) and not (0 <= i < d):
                raise ShapeError(f"index {index} out of range for shape {shape_str(a.shape)}")
        return TensorType((), a.type.kind)

    def vjp(self, node, cotangent):
        (a,) = node.inputs
        return [scatter_element(cotangent, a.shape, node.attr("index"))]

    def jvp(self, node, tangents):
        (t,) = tangents
        return None if t is None else index(t, node.attr("index"))


class ScatterElementOp(Op):
    """Zeros of ``shape`` with the scalar input at ``index`` (the VJP of :class:`IndexOp`)."""

    name = "scatter_element"
    family = "shape"
    arity = 1

    def infer(self, inputs, attrs):
        return TensorType(tuple(attrs["shape"]), FLOAT)

    def vjp(self, node, cotangent):
        return [index(cotangent, node.attr("index"))]

    def jvp(self, node, tangents):
        (t,) = tangents
        return None if t is None else scatter_element(t, node.shape, node.attr("index"))


class StackOp(Op):
    """A matrix of ``shape`` built row-major from scalar inputs."""

    name = "stack"
    family = "shape"

    def infer(self, inputs, attrs):
        shape = tuple(attrs["shape"])
        count = 1
        for d in shape:
            count *= d
        if count != len(inputs) or any(i.ndim for i in inputs):
            raise ShapeError(f"stack of {len(inputs)} scalars cannot fill {shape_str(shape)}")
        return TensorType(shape, FLOAT)

    def vjp(self, node, cotangent):
        rows, cols = node.shape
        return [index(cotangent, (k // cols, k % cols)) for k in range(len(node.inputs))]

    def jvp(self, node, tangents):
        from .ops_source import const

        if all(t is None for t in tangents):
            return None
        filled = [const(0) if t is None else t for t in tangents]
        return stack(filled, node.shape)


reshape_op = register(ReshapeOp())
broadcast_op = register(BroadcastOp())
transpose_op = register(TransposeOp())
index_op = register(IndexOp())
scatter_element_op = register(ScatterElementOp())
stack_op = register(StackOp())


def reshape(x: Node, shape) -> Node:
    shape = tuple(as_dim(d) for d in shape)
    if x.shape == shape:
        return x
    if x.op is reshape_op:
        x = x.inputs[0]
        if x.shape == shape:
            return x
    return make(reshape_op, (x,), (("shape", shape),))


def broadcast_to(x: Node, shape) -> Node:
    shape = tuple(as_dim(d) for d in shape)
    if x.shape == shape:
        return x
    return make(broadcast_op, (x,), (("shape", shape),))


def transpose(x: Node) -> Node:
    if x.op is transpose_op:
        return x.inputs[0]
    return make(transpose_op, (x,))


def index(x: Node, idx) -> Node:
    idx = tuple(int(i) for i in idx)
    if x.op is stack_op:
        cols = x.shape[1]
        return x.inputs[idx[0] * cols + idx[1]]
    return make(index_op, (x,), (("index", idx),))


def scatter_element(x: Node, shape, idx) -> Node:
    return make(scatter_element_op, (x,), (("index", tuple(idx)), ("shape", tuple(shape))))


def stack(scalars, shape) -> Node:
    return make(stack_op, tuple(scalars), (("shape", tuple(as_dim(d) for d in shape)),))


def unbroadcast(x: Node, shape) -> Node:
    """Sum ``x`` over the axes along which a value of ``shape`` was broadcast to ``x.shape``."""
    from .ops_reduce import reduce_sum

    shape = tuple(shape)
    if x.shape == shape:
        return x
    leading, stretched = broadcast_axes(shape, x.shape)
    summed = reduce_sum(x, leading + stretched, keepdims=True)
    return reshape(summed, shape)
