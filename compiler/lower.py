"""SymPy → IR lowering: one ``_lower_<SymPyClass>`` method per SymPy node class.

Lowering is fine-grained (one IR node per SymPy operation) so the reverse-mode walker works on
the graph, keeping gradient cost linear in forward cost. Dispatch walks the class's MRO, like
SymPy's printers, so subclasses inherit their parent's lowering.
"""

from __future__ import annotations

import sys

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.matrices.expressions.special import OneMatrix

from ..ir import ops_elementwise as ew
from ..ir.errors import ShapeError, UnsupportedExpressionError
from ..ir.node import Node
from ..ir.ops_linalg import matmul, trace
from ..ir.ops_reduce import reduce_sum
from ..ir.ops_shape import broadcast_to, index, stack, transpose
from ..ir.ops_source import SourceOp, const, const_op, eye, eye_op, input_node, make
from ..ir.registry import register
from ..ir.types import FLOAT, TensorType, as_dim, shape_str

_RELATIONALS = (sp.StrictGreaterThan, sp.GreaterThan, sp.StrictLessThan, sp.LessThan, sp.Eq, sp.Ne)


class DimValueOp(SourceOp):
    """The run-time value of a symbolic dimension (e.g. batch size ``n`` used as ``1/n``)."""

    name = "dim_value"

    def infer(self, inputs, attrs):
        return TensorType((), FLOAT)


dim_value_op = register(DimValueOp())


#: Extra lowerings registered by other modules (e.g. ``symgrad.nn``): SymPy class -> function
#: ``(lowerer, expr) -> Node``. Consulted along the MRO before the ``_lower_<Class>`` methods.
LOWERINGS: dict[type, object] = {}


def register_lowering(cls: type):
    """Decorator registering ``fn(lowerer, expr) -> Node`` as the lowering of ``cls``."""

    def deco(fn):
        LOWERINGS[cls] = fn
        return fn

    return deco


def dim_value(symbol: sp.Symbol) -> Node:
    return make(dim_value_op, (), (("dim", symbol),))


class Lowerer:
    """Lowers SymPy expressions to IR nodes, recording the input symbols it meets.

    Parameters
    ----------
    dim_symbols
        Symbols that occur in ``MatrixSymbol`` shapes: they are bound from array shapes at call
        time, and lower to their run-time value where they appear in the expression.
    """

    def __init__(self, dim_symbols=()):
        self.memo: dict = {}
        self.dim_symbols = set(dim_symbols)
        #: name -> shape: scalar symbols lowered as arrays (vectorised calls)
        self.shape_overrides: dict[str, tuple] = {}
        #: per-step symbols bound to scan body parameters while a scan body is lowered
        self.bindings: dict = {}
        #: input name -> (SymPy symbol, input node), in the order met
        self.inputs: dict[str, tuple[sp.Basic, Node]] = {}

    # -- entry ---------------------------------------------------------------------------------
    def lower(self, expr) -> Node:
        bound = self.bindings.get(expr)
        if bound is not None:
            return bound
        node = self.memo.get(expr)
        if node is not None:
            return node
        for cls in type(expr).__mro__:
            registered = LOWERINGS.get(cls)
            if registered is not None:
                node = registered(self, expr)
                self.memo[expr] = node
                return node
            method = getattr(self, f"_lower_{cls.__name__}", None)
            if method is not None:
                break
        else:
            raise UnsupportedExpressionError(
                f"no lowering for SymPy class {type(expr).__name__} (in {expr})"
            )
        node = method(expr)
        self.memo[expr] = node
        return node

    def lower_all(self, exprs) -> list[Node]:
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 20000))
        try:
            return [self.lower(e) for e in exprs]
        finally:
            sys.setrecursionlimit(limit)

    def input_of(self, symbol, name: str, shape, kind: str = FLOAT) -> Node:
        """The input node of ``symbol``, recorded as an input of the expression."""
        known = self.inputs.get(name)
        if known is not None and known[0] != symbol:
            raise ShapeError(
                f"two different symbols are both called {name!r}: {known[0]!r} and {symbol!r}"
            )
        node = input_node(name, shape, kind=kind)
        self.inputs[name] = (symbol, node)
        return node

    # -- leaves --------------------------------------------------------------------------------
    def _lower_Symbol(self, expr: sp.Symbol) -> Node:
        if expr in self.dim_symbols:
            return dim_value(expr)
        return self.input_of(expr, expr.name, self.shape_overrides.get(expr.name, ()))

    def _lower_MatrixSymbol(self, expr: sp.MatrixSymbol) -> Node:
        rows, cols = expr.shape
        for d in (rows, cols):
            d = sp.sympify(d)
            if not (d.is_Integer and d > 0) and not d.free_symbols:
                raise ShapeError(f"MatrixSymbol {expr.name} has an invalid dimension {d}")
        return self.input_of(expr, expr.name, (as_dim(rows), as_dim(cols)))

    def _lower_SequenceSymbol(self, expr) -> Node:
        return self.input_of(expr, expr.name, tuple(as_dim(d) for d in expr.shape))

    def _lower_Number(self, expr) -> Node:
        if expr is sp.nan or expr is sp.zoo:
            raise UnsupportedExpressionError(f"the expression contains {expr}")
        return const(expr)

    def _lower_NumberSymbol(self, expr) -> Node:
        return const(expr)

    def _lower_ImaginaryUnit(self, expr) -> Node:
        raise UnsupportedExpressionError("complex numbers (I) are not supported: symgrad is real")

    def _lower_BooleanAtom(self, expr) -> Node:
        return const(1 if expr else 0)

    # -- scalar arithmetic ---------------------------------------------------------------------
    def _lower_Add(self, expr: sp.Add) -> Node:
        coeff, terms = expr.as_coeff_Add()
        nodes = []
        for term in sp.Add.make_args(terms):
            nodes.append(self.lower(term))
        node = nodes[0]
        for other in nodes[1:]:
            node = ew.add(node, other)
        if coeff != 0:
            node = ew.apply(ew.a0 + coeff, [node], "add_const")
        return node

    def _lower_Mul(self, expr: sp.Mul) -> Node:
        coeff, rest = expr.as_coeff_Mul()
        numer, denom = [], []
        for factor in sp.Mul.make_args(rest):
            if factor.is_Pow and factor.exp.is_Number and factor.exp < 0 and factor.base != -1:
                denom.append(factor.base ** (-factor.exp))
            else:
                numer.append(factor)
        node = None
        for f in numer:
            n = self.lower(f)
            node = n if node is None else ew.mul(node, n)
        den = None
        for f in denom:
            n = self.lower(f)
            den = n if den is None else ew.mul(den, n)
        if den is not None:
            if node is None:
                return ew.apply(coeff / ew.a0, [den], "reciprocal")
            node = ew.div(node, den)
        if node is None:
            return const(coeff)
        return ew.scale(node, coeff)

    def _lower_Pow(self, expr: sp.Pow) -> Node:
        base, exp = expr.args
        if exp.is_Number:
            if exp == 1:
                return self.lower(base)
            return ew.apply(ew.a0**exp, [self.lower(base)], "pow")
        if base.is_number:
            if base is sp.E:
                return ew.apply(sp.exp(ew.a0), [self.lower(exp)], "exp")
            return ew.apply(base**ew.a0, [self.lower(exp)], "pow")
        return ew.apply(ew.a0**ew.a1, [self.lower(base), self.lower(exp)], "pow")

    def _elementwise(self, func, args, name=None) -> Node:
        """Apply a scalar SymPy function to lowered arguments; numbers stay in the body."""
        body_args, nodes = [], []
        for a in args:
            if a.is_number:
                body_args.append(a)
            else:
                body_args.append(ew.ARGS[len(nodes)])
                nodes.append(self.lower(a))
        body = func(*body_args)
        if not nodes:
            return const(body)
        return ew.apply(body, nodes, name)

    def _lower_Function(self, expr) -> Node:
        if type(expr) not in ew.ELEMENTWISE_FUNCTIONS:
            raise UnsupportedExpressionError(
                f"unsupported SymPy function {type(expr).__name__} in {expr}"
            )
        return self._elementwise(expr.func, expr.args, type(expr).__name__.lower())

    def _lower_AppliedUndef(self, expr) -> Node:
        raise UnsupportedExpressionError(
            f"undefined function {type(expr).__name__} in {expr}: give it a body (a SymPy Lambda)"
        )

    def _lower_MinMaxBase(self, expr) -> Node:
        return self._elementwise(expr.func, expr.args, type(expr).__name__.lower())

    def _lower_conjugate(self, expr) -> Node:
        return self.lower(expr.args[0])  # every symbol is real

    _lower_re = _lower_conjugate

    def _lower_im(self, expr) -> Node:
        return const(0)

    def _lower_Piecewise(self, expr: sp.Piecewise) -> Node:
        nodes: list[Node] = []

        def leaf(e):
            if e.is_number or isinstance(e, sp.logic.boolalg.BooleanAtom):
                return e
            n = self.lower(e)
            if n in nodes:
                return ew.ARGS[nodes.index(n)]
            nodes.append(n)
            return ew.ARGS[len(nodes) - 1]

        def cond(c):
            if isinstance(c, _RELATIONALS):
                return c.func(leaf(c.lhs), leaf(c.rhs))
            if isinstance(c, sp.logic.boolalg.BooleanAtom):
                return c
            if isinstance(c, (sp.And, sp.Or, sp.Not)):
                return c.func(*[cond(a) for a in c.args])
            raise UnsupportedExpressionError(f"unsupported condition {c} in {expr}")

        pieces = [(leaf(e), cond(c)) for e, c in expr.args]
        body = sp.Piecewise(*pieces, evaluate=False)
        if not nodes:
            return const(body)
        return ew.apply(body, nodes, "piecewise")

    def _lower_Relational(self, expr) -> Node:
        raise UnsupportedExpressionError(
            f"a condition ({expr}) can only appear inside Piecewise, not as a value"
        )

    def _lower_Derivative(self, expr) -> Node:
        return self.lower(expr.doit())

    # -- matrices ------------------------------------------------------------------------------
    def _lower_MatAdd(self, expr) -> Node:
        nodes = [self.lower(a) for a in expr.args]
        node = nodes[0]
        for other in nodes[1:]:
            if other.shape != node.shape and other.ndim == node.ndim == 2:
                raise ShapeError(
                    f"MatAdd of {shape_str(node.shape)} and {shape_str(other.shape)} in {expr}"
                )
            node = ew.add(node, other)
        return node

    def _lower_MatMul(self, expr) -> Node:
        scalars = [a for a in expr.args if not getattr(a, "is_Matrix", False)]
        matrices = [a for a in expr.args if getattr(a, "is_Matrix", False)]
        node = None
        for m in matrices:
            n = self.lower(m)
            node = n if node is None else self.matmul(node, n, expr)
        for s in scalars:
            node = ew.mul(node, self.lower(s)) if not s.is_number else ew.scale(node, s)
        return node

    def matmul(self, a: Node, b: Node, where) -> Node:
        if a.shape[1] != b.shape[0]:
            raise ShapeError(f"MatMul of {shape_str(a.shape)} and {shape_str(b.shape)} in {where}")
        out_shape = (a.shape[0], b.shape[1])
        # Special matrices never reach BLAS: ones broadcast, identities vanish, zeros fold.
        for special, other, axis in ((a, b, 0), (b, a, 1)):
            if special.op is const_op:
                value = special.attr("value")
                if value == 0:
                    return const(0, out_shape)
                summed = (
                    reduce_sum(other, (axis,), keepdims=True) if other.shape[axis] != 1 else other
                )
                return broadcast_to(ew.scale(summed, value), out_shape)
            if special.op is eye_op:
                return other
        return matmul(a, b)

    def _lower_Transpose(self, expr) -> Node:
        return transpose(self.lower(expr.arg))

    def _lower_HadamardProduct(self, expr) -> Node:
        nodes = [self.lower(a) for a in expr.args]
        node = nodes[0]
        for other in nodes[1:]:
            node = ew.mul(node, other)
        return node

    def _lower_HadamardPower(self, expr) -> Node:
        base, exp = expr.args
        if base.is_Matrix and not getattr(exp, "is_Matrix", False):
            return self._elementwise(lambda b, e: b**e, (base, exp), "pow")
        raise UnsupportedExpressionError(f"HadamardPower with a matrix exponent in {expr}")

    def _lower_ElementwiseApplyFunction(self, expr) -> Node:
        func = expr.function
        arg = self.lower(expr.expr)
        body = sp.sympify(func(ew.a0))
        # Other symbols in the body (a learnable slope, say) become further inputs.
        extra = sorted(body.free_symbols - {ew.a0}, key=str)
        mapping = {s: ew.ARGS[k + 1] for k, s in enumerate(extra)}
        nodes = [arg] + [self.lower(s) for s in extra]
        for s, n in zip(extra, nodes[1:]):
            if n.ndim:
                raise ShapeError(f"{s} in the applied function of {expr} must be a scalar")
        return ew.apply(body.xreplace(mapping), nodes, getattr(func, "__name__", "apply"))

    def _lower_Inverse(self, expr) -> Node:
        raise UnsupportedExpressionError(
            f"unsupported matrix expression Inverse in {expr}: symgrad has no matrix inverse"
        )

    def _lower_Trace(self, expr) -> Node:
        return trace(self.lower(expr.arg))

    def _lower_MatrixElement(self, expr) -> Node:
        parent, i, j = expr.args
        if not (i.is_Integer and j.is_Integer):
            raise UnsupportedExpressionError(f"symbolic matrix index in {expr}")
        return index(self.lower(parent), (int(i), int(j)))

    def _lower_OneMatrix(self, expr) -> Node:
        return const(1, tuple(as_dim(d) for d in expr.shape))

    def _lower_ZeroMatrix(self, expr) -> Node:
        return const(0, tuple(as_dim(d) for d in expr.shape))

    def _lower_Identity(self, expr) -> Node:
        return eye(as_dim(expr.shape[0]))

    def _lower_MatrixBase(self, expr) -> Node:
        rows, cols = expr.shape
        return stack([self.lower(e) for e in expr], (rows, cols))

    def _lower_MatPow(self, expr) -> Node:
        base, exp = expr.args
        if not (exp.is_Integer and exp > 0):
            raise UnsupportedExpressionError(f"MatPow with exponent {exp} in {expr}")
        b = self.lower(base)
        node = b
        for _ in range(int(exp) - 1):
            node = self.matmul(node, b, expr)
        return node

    def _lower_MatrixExpr(self, expr) -> Node:
        raise UnsupportedExpressionError(
            f"unsupported matrix expression {type(expr).__name__} in {expr}"
        )


def is_matrix(expr) -> bool:
    return bool(getattr(expr, "is_Matrix", False))


__all__ = ["Lowerer", "dim_value", "dim_value_op", "is_matrix", "OneMatrix",
           "HadamardPower", "HadamardProduct", "ElementwiseApplyFunction"]  # fmt: skip
