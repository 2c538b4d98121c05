"""The scan op: a loop over time steps holding its step body as a graph.

A scan node has inputs ``[sequences..., initial carries..., closure values...]`` and many outputs
(kind ``"tuple"``), read by :class:`ScanOutputOp` nodes: the final carries, per-step values summed
over time, and per-step values stacked into ``(T, ...)`` arrays. Its VJP is a reverse scan (BPTT)
whose body is the VJP of the forward body; it reads the step intermediates (residuals) that an
extended copy of the forward scan stacks (see :mod:`symgrad.ir.scan_vjp`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import UnsupportedExpressionError
from .node import Node, make
from .registry import Op, register
from .types import FLOAT, TUPLE, TensorType


@dataclass(eq=False)
class ScanBody:
    """The step body of a scan.

    ``seq_params`` / ``carry_params`` / ``closure_params`` are the body's parameter nodes; the
    scan node's inputs feed them in that order. A closure parameter may be the outer node itself
    (a graph input used inside the body). Outputs: ``carry_out`` (new carries, one per carry
    parameter), ``sum_out`` (summed over time) and ``stack_out`` (stacked over time).
    """

    seq_params: list[Node]
    carry_params: list[Node]
    closure_params: list[Node]
    carry_out: list[Node]
    sum_out: list[Node] = field(default_factory=list)
    stack_out: list[Node] = field(default_factory=list)
    reverse: bool = False
    #: a reverse scan built by the VJP (differentiating it again is not supported)
    is_backward: bool = False

    @property
    def params(self) -> list[Node]:
        return self.seq_params + self.carry_params + self.closure_params

    @property
    def outputs(self) -> list[Node]:
        return self.carry_out + self.sum_out + self.stack_out


#: The reverse-mode walker, installed by ``symgrad.compiler.reverse`` (ir cannot import it).
BODY_GRAD: list = []


def set_body_grad(fn) -> None:
    BODY_GRAD[:] = [fn]


class ScanOp(Op):
    """One op object per scan body (ops are compared by identity)."""

    name = "scan"
    family = "control"

    def __init__(self, body: ScanBody, extends: ScanOp | None = None):
        self.body = body
        #: the scan op whose outputs are a prefix of this one's (same inputs, more stacks): a
        #: graph holding both runs only this one (``compiler.passes.scan_merge``)
        self.extends = extends
        self.n_outputs = len(body.carry_out) + len(body.sum_out) + len(body.stack_out)

    def infer(self, inputs, attrs):
        return TensorType((), TUPLE)

    def output_type(self, node: Node, k: int) -> TensorType:
        b = self.body
        nc, ns = len(b.carry_out), len(b.sum_out)
        if k < nc:
            return b.carry_out[k].type
        if k < nc + ns:
            return b.sum_out[k - nc].type
        length = node.inputs[0].shape[0]
        inner = b.stack_out[k - nc - ns]
        return TensorType((length, *inner.shape), FLOAT)

    def index_of(self, category: str, j: int) -> int:
        b = self.body
        offset = {"carry": 0, "sum": len(b.carry_out), "stack": len(b.carry_out) + len(b.sum_out)}
        return offset[category] + j

    def vjp(self, node, cotangents, needed=None):
        from .scan_vjp import scan_vjp

        return scan_vjp(node, cotangents, needed)

    def jvp(self, node, tangents):
        raise UnsupportedExpressionError("forward mode (JVP) through a scan is not supported yet")


class ScanOutputOp(Op):
    """Output ``index`` of a scan node."""

    name = "scan_output"
    family = "control"
    arity = 1

    def infer(self, inputs, attrs):
        (scan,) = inputs
        return scan.op.output_type(scan, attrs["index"])

    def vjp(self, node, cotangent):
        return [(node.attr("index"), cotangent)]

    def jvp(self, node, tangents):
        raise UnsupportedExpressionError("forward mode (JVP) through a scan is not supported yet")


scan_output_op = register(ScanOutputOp())


_interned_ops: dict = {}


def _body_key(body: ScanBody) -> tuple:
    parts = (body.seq_params, body.carry_params, body.closure_params, body.carry_out,
             body.sum_out, body.stack_out)  # fmt: skip
    return tuple(tuple(id(n) for n in p) for p in parts) + (body.reverse, body.is_backward)


def scan(body: ScanBody, sequences, inits, closure, extends: ScanOp | None = None) -> Node:
    """The scan node running ``body`` (see :class:`ScanBody` for the input order).

    Ops are interned by body: the same recurrence spelled twice in SymPy (say once for its
    summed loss and once, re-simplified by SymPy, for its final state) lowers to identical body
    nodes, hence one op and, by hash-consing, one loop.
    """
    if not sequences:
        raise UnsupportedExpressionError("a scan needs at least one sequence")
    key = _body_key(body) + (id(extends),)
    entry = _interned_ops.get(key)
    if entry is None:
        # Keep the body's nodes alive with the op so their ids stay unique.
        entry = _interned_ops[key] = ScanOp(body, extends)
    return make(entry, [*sequences, *inits, *closure])


def scan_output(node: Node, index: int) -> Node:
    return make(scan_output_op, (node,), (("index", index),))
