"""Elementwise ops: a scalar SymPy body over k inputs, broadcast like NumPy.

The local derivative of an elementwise op is ``sympy.diff`` of its body, derived once per body and
cached. Where the derivative contains the body itself (tanh' = 1 - tanh², exp' = exp) it is
rewritten to reuse the forward output, so backward reads a saved value instead of recomputing.
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from .errors import ShapeError, UnsupportedExpressionError
from .node import Node, make
from .registry import Op
from .types import FLOAT, INT, TensorType, broadcast_shapes

#: Placeholder arguments of elementwise bodies (real, so d|a|/da = sign(a)).
ARGS = tuple(sp.Symbol(f"a{i}", real=True) for i in range(64))
#: Placeholder for the op's own output inside derivative bodies.
OUT = sp.Symbol("y_out", real=True)

#: SymPy function classes an elementwise body may contain; ``symgrad.nn`` adds its own.
ELEMENTWISE_FUNCTIONS: set[type] = {
    sp.exp, sp.log, sp.sin, sp.cos, sp.tan, sp.cot, sp.sec, sp.csc,
    sp.asin, sp.acos, sp.atan, sp.atan2, sp.sinh, sp.cosh, sp.tanh, sp.coth,
    sp.asinh, sp.acosh, sp.atanh, sp.erf, sp.erfc, sp.gamma, sp.loggamma, sp.polygamma,
    sp.Abs, sp.sign, sp.Max, sp.Min, sp.Heaviside, sp.Piecewise, sp.floor, sp.ceiling,
}  # fmt: skip

#: Functions whose derivative is zero almost everywhere (SymPy leaves it unevaluated or DiracDelta).
_PIECEWISE_CONSTANT = (sp.floor, sp.ceiling)


def register_elementwise_function(cls: type) -> type:
    """Allow the SymPy function class ``cls`` in elementwise bodies (it needs a printer too)."""
    ELEMENTWISE_FUNCTIONS.add(cls)
    return cls


def _check_vocabulary(body: sp.Expr, where: sp.Expr | None = None) -> None:
    for sub in sp.preorder_traversal(body):
        if isinstance(sub, sp.Derivative | sp.Subs | sp.Integral):
            context = where if where is not None else body
            raise UnsupportedExpressionError(
                f"cannot differentiate {sub.func.__name__} in {context}"
            )
        if isinstance(sub, sp.Function) and type(sub) not in ELEMENTWISE_FUNCTIONS:
            if isinstance(sub, sp.DiracDelta):
                continue
            raise UnsupportedExpressionError(
                f"unsupported SymPy function {type(sub).__name__} in "
                f"{where if where is not None else sub}"
            )


class ElementwiseOp(Op):
    """``y = body(a0, ..., a{k-1})`` applied elementwise with broadcasting.

    Ops are interned by body: two ops with the same body are the same object.
    """

    family = "elementwise"

    def __init__(self, body: sp.Expr, nargs: int, name: str):
        self.body = body
        self.nargs = nargs
        self.arity = nargs
        self.name = name

    def infer(self, inputs, attrs) -> TensorType:
        if any(i.type.kind == INT for i in inputs):
            raise ShapeError(
                f"an integer index input cannot take part in arithmetic ({self.name}); "
                "use it only to choose rows (symgrad.nn.embedding and friends)"
            )
        shape = broadcast_shapes([i.shape for i in inputs], where=f"elementwise {self.name}")
        return TensorType(shape, FLOAT)

    @property
    def args(self) -> tuple:
        return ARGS[: self.nargs]

    # -- derivatives -------------------------------------------------------------------------
    def partial(self, i: int) -> tuple[sp.Expr, list[int], bool]:
        """Derivative of the body w.r.t. argument ``i``.

        Returns ``(expr, used_args, uses_out)`` where ``expr`` is written over ``ARGS`` of the
        arguments in ``used_args`` (renumbered 0..) followed by the output if ``uses_out``.
        """
        return _partial(self.body, self.nargs, i)

    def partial_node(self, node: Node, i: int) -> Node | sp.Expr:
        """The local derivative ∂node/∂input_i as a node, or a SymPy number if constant."""
        expr, used, uses_out = self.partial(i)
        if expr.is_number:
            return expr
        inputs = [node.inputs[j] for j in used] + ([node] if uses_out else [])
        return apply(expr, inputs, name=f"d{self.name}_{i}")

    def vjp(self, node, cotangent):
        from .ops_shape import unbroadcast

        out = []
        for i, inp in enumerate(node.inputs):
            if inp.type.kind != FLOAT:
                out.append(None)
                continue
            d = self.partial_node(node, i)
            if isinstance(d, sp.Expr):
                if d == 0:
                    out.append(None)
                    continue
                contribution = scale(cotangent, d)
            else:
                contribution = mul(cotangent, d)
            out.append(unbroadcast(contribution, inp.shape))
        return out

    def jvp(self, node, tangents):
        from .ops_shape import broadcast_to

        total = None
        for i, t in enumerate(tangents):
            if t is None:
                continue
            d = self.partial_node(node, i)
            if isinstance(d, sp.Expr):
                if d == 0:
                    continue
                term = scale(t, d)
            else:
                term = mul(t, d)
            total = term if total is None else add(total, term)
        if total is None:
            return None
        if total.shape != node.shape:
            total = broadcast_to(total, node.shape)
        return total


@cache
def _partial(body: sp.Expr, nargs: int, i: int):
    args = ARGS[:nargs]
    d = sp.diff(body, args[i])
    if body.is_Pow and body.base == args[i] and body.exp.has(*args) and not body.exp.has(args[i]):
        # SymPy writes d(x**y)/dx as y*x**y/x, which is nan at x = 0; y*x**(y-1) is not.
        d = body.exp * body.base ** (body.exp - 1)
    d = d.replace(
        lambda e: isinstance(e, sp.Derivative) and isinstance(e.expr, _PIECEWISE_CONSTANT),
        lambda e: sp.S.Zero,
    )
    # DiracDelta is zero almost everywhere; frameworks and SymPy's own lambdify agree on 0.
    d = d.replace(lambda e: isinstance(e, sp.DiracDelta), lambda e: sp.S.Zero)
    if body.is_Pow and body.base == args[i] and body.exp.is_Rational and body.exp != 0:
        # d(a^n) = n a^(n-1) = n y^((n-1)/n) whenever that exponent is an integer
        # (n = ±1/k: reciprocal, sqrt, rsqrt, cbrt): reuse y instead of another power.
        n = body.exp
        ratio = (n - 1) / n
        if ratio.is_Integer:
            d = n * OUT**ratio
    if not body.is_Symbol and body.has(*args):
        d = d.xreplace({body: OUT})
    _check_vocabulary(d, where=f"d/d{args[i]} of {body}")
    used = [j for j in range(nargs) if d.has(args[j])]
    uses_out = d.has(OUT)
    mapping = {args[j]: ARGS[k] for k, j in enumerate(used)}
    if uses_out:
        mapping[OUT] = ARGS[len(used)]
    return d.xreplace(mapping), used, uses_out


_ops_by_body: dict = {}


def elementwise_op(body: sp.Expr, nargs: int, name: str | None = None) -> ElementwiseOp:
    """The interned elementwise op for ``body`` over ``ARGS[:nargs]``."""
    key = (body, nargs)
    op = _ops_by_body.get(key)
    if op is None:
        _check_vocabulary(body)
        op = ElementwiseOp(body, nargs, name or _default_name(body))
        _ops_by_body[key] = op
    return op


def _default_name(body: sp.Expr) -> str:
    if isinstance(body, sp.Function):
        return type(body).__name__.lower()
    if body.is_Add:
        return "add"
    if body.is_Mul:
        return "mul"
    if body.is_Pow:
        return "pow"
    return "ew"


def apply(body: sp.Expr, inputs, name: str | None = None) -> Node:
    """Node applying ``body`` (over ``ARGS[:len(inputs)]``) to ``inputs``."""
    inputs = list(inputs)
    # Merge duplicated inputs so the body sees one argument per distinct node.
    distinct: list[Node] = []
    mapping = {}
    for k, n in enumerate(inputs):
        if n in distinct:
            mapping[ARGS[k]] = ARGS[distinct.index(n)]
        else:
            mapping[ARGS[k]] = ARGS[len(distinct)]
            distinct.append(n)
    body = body.xreplace(mapping)
    op = elementwise_op(body, len(distinct), name)
    return make(op, distinct)


a0, a1 = ARGS[0], ARGS[1]


def add(x: Node, y: Node) -> Node:
    return apply(a0 + a1, [x, y], "add")


def sub(x: Node, y: Node) -> Node:
    return apply(a0 - a1, [x, y], "sub")


def mul(x: Node, y: Node) -> Node:
    return apply(a0 * a1, [x, y], "mul")


def div(x: Node, y: Node) -> Node:
    return apply(a0 / a1, [x, y], "div")


def neg(x: Node) -> Node:
    return apply(-a0, [x], "neg")


def scale(x: Node, c) -> Node:
    """``c * x`` for a SymPy number ``c``."""
    c = sp.sympify(c)
    if c == 1:
        return x
    if c == -1:
        return neg(x)
    return apply(c * a0, [x], "scale")


def square(x: Node) -> Node:
    return apply(a0**2, [x], "square")
