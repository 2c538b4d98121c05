"""Raise an IR graph back to SymPy, so a derived backward pass can be read (and checked) as math.

The raised form stays in matrix notation where the graph works on matrices:

=====================================  ===================================================
IR                                     SymPy
=====================================  ===================================================
``input``                              the user's ``Symbol`` / ``MatrixSymbol``
``const``                              a number, ``c*OneMatrix``, ``ZeroMatrix``
``eye`` / ``dim_value``                ``Identity(n)`` / the dimension symbol ``n``
``matmul`` / ``transpose`` / ``trace``  ``MatMul`` / ``Transpose`` / ``Trace``
elementwise ``a0 + a1``, ``a0*a1``     ``MatAdd``, ``HadamardProduct`` (``c*M`` for a scalar
                                       factor), integer powers ``HadamardPower`` (``h∘h``
                                       for a square of a named matrix)
elementwise functions                  ``ElementwiseApplyFunction`` with a ``Lambda`` (one
                                       matrix operand) or :class:`ElementwiseMap` (several)
``sum`` over rows / columns            ``M*OneMatrix(k, 1)`` / ``OneMatrix(1, n)*M``
``broadcast_to``                       ``OneMatrix(n, 1)*b`` (and the like)
``index`` / ``stack``                  ``M[i, j]`` / ``ImmutableMatrix``
``logsumexp``                          ``log(exp(M)*OneMatrix(k, 1))`` (row-wise) and the like
any other op (``max_shift``,           :class:`OpCall`, printed ``max_shift(M; axes=(1,))``,
``row_log_softmax`` ...)               ``row_log_softmax(M)``
=====================================  ===================================================

A 1-d value of length ``k`` is shown as a ``1 x k`` row. Shared nodes (used more than once) become
named intermediate symbols and single-use nodes are inlined, so no node is written out twice.
(A fused elementwise body may still contain a formula that another node also computes, as
``Heaviside(x - y)`` next to a node ``x - y``; :mod:`symgrad.explain` names those too.)

Graph walks are iterative (a 200-deep chain raises without recursion); only elementwise
*bodies* (one SymPy operation each) are walked recursively.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import sympy as sp
from sympy.core.function import Application
from sympy.core.symbol import Str
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.matrices.expressions.matexpr import MatrixElement, MatrixExpr
from sympy.printing.numpy import SciPyPrinter

from .errors import UnsupportedExpressionError
from .node import Node, toposort
from .ops_elementwise import ARGS
from .program import flatten
from .sympy_forms import (
    _broadcast,
    _hadamard,
    _is_matrix,
    _matadd,
    _matmul,
    _ones,
    _scale,
    _shape2,
    _split_coeff,
    _substitute,
    is_ones,
    replace_exact,
    shaped_symbol,
)

__all__ = [
    "SOURCE_OPS",
    "VIEW_OPS",
    "Assignment",
    "ElementwiseMap",
    "NUMPY_OPS",
    "NumPyMatrixPrinter",
    "OpCall",
    "RaisedGraph",
    "input_free",
    "is_ones",
    "numpy_op",
    "raise_graph",
    "replace_exact",
    "shaped_symbol",
    "to_sympy",
    "trivial_nodes",
    "use_counts",
]

#: Ops with no inputs; their values are atoms (or tiny constants) and are never named.
SOURCE_OPS = frozenset({"input", "const", "eye", "dim_value"})
#: Ops that only re-view their input: a view of a source is as cheap to read as the source.
VIEW_OPS = frozenset({"transpose", "reshape", "broadcast_to", "index"})

# One fixed bound variable per position: applications of the same function to the same matrix
# then compare equal (Lambdas over different Dummies do not), which keeps CSE checks structural.
_LAMBDA_VARS = tuple(sp.Dummy(f"x{i}" if i else "x") for i in range(16))


# -- an elementwise function of several matrices ----------------------------------------------
class ElementwiseMap(MatrixExpr):
    """``function`` applied entry by entry to several matrices of one shape.

    SymPy's ``ElementwiseApplyFunction`` takes one matrix; a body such as ``Max(a0, a1)`` or
    ``exp(a0)/a1`` over two matrices needs this.

    Parameters
    ----------
    function : sympy.Lambda
        A scalar Lambda of as many variables as there are matrices.
    *matrices : MatrixExpr
        Operands, all of one shape.
    """

    def __new__(cls, function: sp.Lambda, *matrices):
        matrices = [sp.sympify(m) for m in matrices]
        if len(function.variables) != len(matrices):
            raise ValueError("ElementwiseMap needs one matrix per Lambda variable")
        shapes = {tuple(m.shape) for m in matrices}
        if len(shapes) != 1:
            raise ValueError(f"ElementwiseMap operands differ in shape: {sorted(map(str, shapes))}")
        return super().__new__(cls, function, *matrices)

    @property
    def function(self) -> sp.Lambda:
        return self.args[0]

    @property
    def matrices(self) -> tuple:
        return self.args[1:]

    @property
    def shape(self):
        return self.args[1].shape

    def _entry(self, i, j, **kwargs):
        return self.function(*[m[i, j] for m in self.matrices])

    def _eval_transpose(self):
        return ElementwiseMap(self.function, *[sp.Transpose(m) for m in self.matrices])


class OpCall(MatrixExpr):
    """An IR op with no SymPy counterpart (such as ``max_shift``) applied to its operands.

    Prints as ``name(operands; attributes)``; evaluates numerically through the NumPy function
    registered for the op in :data:`NUMPY_OPS`.
    """

    def __new__(cls, name, attrs, rows, cols, *operands):
        name = name if isinstance(name, Str) else Str(name)
        attrs = attrs if isinstance(attrs, Str) else Str(attrs)
        return super().__new__(cls, name, attrs, sp.sympify(rows), sp.sympify(cols), *operands)

    @property
    def op_name(self) -> str:
        return self.args[0].name

    @property
    def attrs_text(self) -> str:
        return self.args[1].name

    @property
    def operands(self) -> tuple:
        return self.args[4:]

    @property
    def shape(self):
        return (self.args[2], self.args[3])


def _max_shift(x, axes=()):
    m = np.max(x, axis=tuple(axes), keepdims=True)
    # Matches the kernel: an infinite maximum shifts by 0 (see ir.ops_nn.MaxShiftOp).
    return np.where(np.isfinite(m), m, 0.0)


def _row_shifted(x):
    """``(x - m, sum(exp(x - m)))`` along the last axis, as the fused row kernels compute them."""
    d = x - _max_shift(x, axes=(x.ndim - 1,))
    return d, np.exp(d).sum(axis=-1, keepdims=True)


def _row_logsumexp(x):
    d, s = _row_shifted(x)
    return (x - d)[..., :1] + np.log(s)


def _row_log_softmax(x):
    d, s = _row_shifted(x)
    return d - np.log(s)


def _row_softmax(x):
    d, s = _row_shifted(x)
    return np.exp(d) / s


#: NumPy implementations of ops raised as :class:`OpCall`: ``fn(*operands, **attrs)``.
NUMPY_OPS: dict[str, Callable] = {
    "max_shift": _max_shift,
    "row_logsumexp": _row_logsumexp,
    "row_log_softmax": _row_log_softmax,
    "row_softmax": _row_softmax,
}
# OpCall keeps its attributes as text (SymPy arguments must be SymPy objects); the values are
# looked up here when evaluating.
_OP_ATTRS: dict[tuple[str, str], dict] = {}


def numpy_op(name: str, attrs_text: str, *operands):
    """Evaluate the op ``name`` of an :class:`OpCall` on NumPy operands."""
    fn = NUMPY_OPS.get(name)
    if fn is None:
        raise UnsupportedExpressionError(f"no NumPy implementation of op {name!r}")
    return fn(*operands, **_OP_ATTRS.get((name, attrs_text), {}))


def _op_call(node: Node, args: list) -> sp.Basic:
    attrs = {k: v for k, v in node.attrs}
    text = ", ".join(f"{k}={v}" for k, v in node.attrs)
    _OP_ATTRS[(node.op.name, text)] = attrs
    operands = [a if _is_matrix(a) else _ones(a, (1, 1)) for a in args]
    shape = _shape2(node.shape)
    call = OpCall(node.op.name, text, *(shape or (1, 1)), *operands)
    return call if shape is not None else MatrixElement(call, 0, 0)


# -- results ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Assignment:
    """One named intermediate: ``symbol = expr``, computed by ``node``."""

    node: Node
    symbol: sp.Basic
    expr: sp.Basic


@dataclass
class RaisedGraph:
    """A graph raised to SymPy.

    Attributes
    ----------
    assignments
        Named intermediates in dependency order (each refers only to inputs and earlier names);
        a scan is a :class:`~symgrad.ir.to_sympy_scan.LoopBlock` (whose ``symbol`` is ``None``).
    outputs
        One SymPy expression per output node (``flatten`` order of the outputs): the node's
        symbol if it was named, else its inlined expression.
    """

    assignments: list[Assignment]
    outputs: list[sp.Basic]
    values: dict[int, sp.Basic] = field(default_factory=dict, repr=False)

    def value(self, node: Node) -> sp.Basic:
        """What ``node`` is written as in the raised equations (its name, or its expression)."""
        return self.values[id(node)]

    def symbol(self, node: Node) -> sp.Basic | None:
        """The name given to ``node``, or ``None`` if it was inlined."""
        for a in self.assignments:
            if a.node is node:
                return a.symbol
        return None


# -- elementwise bodies in matrix form ----------------------------------------------------------
def _map(body: sp.Basic, matrix_leaves: Mapping, scalar_leaves: Mapping) -> sp.Basic:
    """``body`` as a function applied entry by entry to the matrices it contains."""
    mats = [m for m in matrix_leaves if body.has(m)]
    values = [matrix_leaves[m] for m in mats]
    # The same matrix under two placeholders is one Lambda variable.
    distinct: list = []
    for v in values:
        if v not in distinct:
            distinct.append(v)
    variables = _LAMBDA_VARS[: len(distinct)]
    leaves = dict(scalar_leaves)
    for m, v in zip(mats, values):
        leaves[m] = variables[distinct.index(v)]
    inner = _substitute(body, leaves)
    if len(distinct) == 1:
        return ElementwiseApplyFunction(sp.Lambda(variables[0], inner), distinct[0])
    return ElementwiseMap(sp.Lambda(variables, inner), *distinct)


def _matrix_body(body: sp.Basic, matrix_leaves: Mapping, scalar_leaves: Mapping, shape) -> sp.Basic:
    """Translate a scalar body over matrix operands into matrix algebra (see module docstring)."""
    if body in matrix_leaves:
        return matrix_leaves[body]
    if not body.has(*matrix_leaves):
        return _substitute(body, scalar_leaves)

    def part(e):
        return _matrix_body(e, matrix_leaves, scalar_leaves, shape)

    if isinstance(body, sp.Add):
        scalars, mats = [], []
        for term in body.args:
            (mats if term.has(*matrix_leaves) else scalars).append(term)
        terms = [part(t) for t in mats]
        if scalars:
            terms.insert(0, _ones(sp.Add(*[part(s) for s in scalars]), shape))
        return _matadd(terms)
    if isinstance(body, sp.Mul):
        coeff = sp.S.One
        factors = []
        for f in body.args:
            if not f.has(*matrix_leaves):
                coeff = coeff * part(f)
                continue
            c, ms = _split_coeff(part(f))
            coeff = coeff * c
            factors.append(ms[0] if len(ms) == 1 else sp.MatMul(*ms))
        return _scale(coeff, _hadamard(factors))
    if isinstance(body, sp.Pow):
        base, exp = body.args
        if not exp.has(*matrix_leaves) and exp.is_Integer:
            b = part(base)
            if exp == 1:
                return b
            if exp == 2 and isinstance(b, sp.MatrixSymbol):
                return HadamardProduct(b, b)  # the lectures' h∘h
            return HadamardPower(b, exp)
    if isinstance(body, Application) and all(isinstance(a, sp.Expr) for a in body.args):
        # f(matrix algebra): keep the argument in matrix form, map only the function.
        inner = [
            part(a) if a.has(*matrix_leaves) else _substitute(a, scalar_leaves) for a in body.args
        ]
        placeholders = {}
        args = []
        for a in inner:
            if _is_matrix(a):
                ph = sp.Dummy()
                placeholders[ph] = a
                args.append(ph)
            else:
                args.append(a)
        return _map(body.func(*args, evaluate=False), placeholders, {})
    return _map(body, matrix_leaves, scalar_leaves)


def _elementwise(node: Node, args: list) -> sp.Basic:
    shape = _shape2(node.shape)
    body = node.op.body
    # A node fed the same value twice (x + x after a rewrite) reads as one operand (2*x);
    # x + x and 2*x are the same float.
    first: dict[int, int] = {}
    merge = {}
    for k, inp in enumerate(node.inputs):
        j = first.setdefault(id(inp), k)
        if j != k:
            merge[ARGS[k]] = ARGS[j]
    if merge:
        body = body.xreplace(merge)
    if shape is None:
        return _substitute(body, dict(zip(ARGS, args)))
    matrix_leaves, scalar_leaves = {}, {}
    for k, (inp, a) in enumerate(zip(node.inputs, args)):
        c = is_ones(a) if _is_matrix(a) else None
        if not _is_matrix(a) or c is not None:
            # A constant matrix c*1 broadcast over the output is the scalar c.
            scalar_leaves[ARGS[k]] = a if c is None else c
        else:
            matrix_leaves[ARGS[k]] = _broadcast(a, _shape2(inp.shape), shape)
    if not matrix_leaves:
        return _ones(_substitute(body, scalar_leaves), shape)
    return _matrix_body(body, matrix_leaves, scalar_leaves, shape)


# -- structural ops -----------------------------------------------------------------------------
def _apply(function, x) -> sp.Basic:
    """The scalar SymPy ``function`` applied to ``x``, entry by entry if ``x`` is a matrix."""
    if _is_matrix(x):
        var = _LAMBDA_VARS[0]
        return ElementwiseApplyFunction(sp.Lambda(var, function(var, evaluate=False)), x)
    return function(x, evaluate=False)


def _reduce_sum(node: Node, x) -> sp.Basic:
    src = _shape2(node.inputs[0].shape)
    if src is None:
        return x
    axes = set(node.attr("axes"))
    if len(node.inputs[0].shape) == 1:  # a 1-d array is a row: its axis 0 is the row's axis 1
        axes = {1} if axes else set()
    elif len(node.inputs[0].shape) == 3:  # stacked steps: axes 0 and 1 are the stacked rows
        if len(axes & {0, 1}) == 1:
            raise UnsupportedExpressionError("cannot raise a sum over one of two stacked axes")
        axes = ({0} if 0 in axes else set()) | ({1} if 2 in axes else set())
    rows, cols = src
    left = [sp.OneMatrix(1, rows)] if 0 in axes else []
    right = [sp.OneMatrix(cols, 1)] if 1 in axes else []
    summed = _matmul(*left, x, *right)
    out = _shape2(node.shape)
    if out is None:
        return MatrixElement(summed, 0, 0)
    return _reshape(summed, summed.shape, out)


def _reshape(x, src: tuple | None, dst: tuple | None) -> sp.Basic:
    if src is None and dst is None:
        return x
    if dst is None:  # (1, 1) -> ()
        c = is_ones(x)
        return c if c is not None else MatrixElement(x, 0, 0)
    if src is None:  # () -> (1, 1)
        return _ones(x, (1, 1))
    if tuple(src) == tuple(dst):
        return x
    if tuple(src) == (dst[1], dst[0]):
        return sp.Transpose(x)
    raise UnsupportedExpressionError(f"cannot raise a reshape from {src} to {dst}")


def _scatter(node: Node, x) -> sp.Basic:
    shape = _shape2(node.shape)
    index = tuple(node.attr("index"))
    if len(index) == 1:
        index = (0, index[0])
    rows, cols = shape
    if isinstance(rows, int) and isinstance(cols, int) and rows * cols <= 16:
        entries = [[x if (r, c) == index else 0 for c in range(cols)] for r in range(rows)]
        return sp.ImmutableMatrix(entries)
    i, j = sp.symbols("i j", integer=True)
    delta = x * sp.KroneckerDelta(i, index[0]) * sp.KroneckerDelta(j, index[1])
    return sp.FunctionMatrix(rows, cols, sp.Lambda((i, j), delta))


def _const(node: Node) -> sp.Basic:
    value = node.attr("value")
    shape = _shape2(node.shape)
    return value if shape is None else _ones(value, shape)


def _index(node: Node, x) -> sp.Basic:
    c = is_ones(x)
    if c is not None:
        return c
    index = tuple(node.attr("index"))
    if len(index) == 1:
        index = (0, index[0])
    return MatrixElement(x, *index)


def _stack(node: Node, args) -> sp.Basic:
    rows, cols = _shape2(node.shape)
    return sp.ImmutableMatrix(rows, cols, list(args))


def _raise_node(node: Node, args: list, inputs: Mapping[str, sp.Basic]) -> sp.Basic:
    name = node.op.name
    if node.op.family == "elementwise":
        return _elementwise(node, args)
    if name == "input":
        key = node.attr("name")
        sym = inputs.get(key)
        if sym is None or (_is_matrix(sym) != bool(node.ndim)):
            sym = shaped_symbol(key, node.shape)
        return sym
    if name == "const":
        return _const(node)
    if name == "eye":
        return sp.Identity(node.attr("n"))
    if name == "dim_value":
        return node.attr("dim")
    if name == "matmul":
        return _matmul(*args)
    if name == "transpose":
        c = is_ones(args[0])
        return _ones(c, _shape2(node.shape)) if c is not None else sp.Transpose(args[0])
    if name == "trace":
        return sp.Trace(args[0])
    if name == "sum":
        return _reduce_sum(node, args[0])
    if name == "broadcast_to":
        return _broadcast(args[0], _shape2(node.inputs[0].shape), _shape2(node.shape))
    if name == "reshape":
        return _reshape(args[0], _shape2(node.inputs[0].shape), _shape2(node.shape))
    if name == "index":
        return _index(node, args[0])
    if name == "scatter_element":
        return _scatter(node, args[0])
    if name == "stack":
        return _stack(node, args)
    if name == "logsumexp":
        # The kernel shifts by the maximum; as math it is log(sum(exp(x))).
        if not node.inputs[0].ndim:
            return args[0]
        return _apply(sp.log, _reduce_sum(node, _apply(sp.exp, args[0])))
    # An op SymPy has no word for stays a named call (printable; evaluable if registered).
    return _op_call(node, args)


# -- the walk -----------------------------------------------------------------------------------
def _roots(outputs) -> list[Node]:
    if isinstance(outputs, Node):
        return [outputs]
    return [n for n in flatten(outputs) if n is not None]


def use_counts(outputs) -> dict[int, int]:
    """How often each node is written out when inlined: once per argument position of its users
    (once per elementwise user, whose repeated operands merge), once per output slot."""
    counts: dict[int, int] = {}
    for node in toposort(_roots(outputs)):
        counts.setdefault(id(node), 0)
        inputs = node.inputs
        if node.op.family == "elementwise":
            inputs = list({id(i): i for i in inputs}.values())
        for i in inputs:
            counts[id(i)] = counts.get(id(i), 0) + 1
    for r in _roots(outputs):
        counts[id(r)] = counts.get(id(r), 0) + 1
    return counts


def input_free(order: Iterable[Node]) -> set[int]:
    """Ids of nodes (in topological ``order``) that depend on no ``input`` node."""
    free: set[int] = set()
    for n in order:
        if n.op.name == "input":
            continue
        if all(id(i) in free for i in n.inputs):
            free.add(id(n))
    return free


def trivial_nodes(order: Iterable[Node]) -> set[int]:
    """Ids of nodes never worth a name: sources, views of sources, and input-free constants."""
    order = list(order)
    out = input_free(order)
    for n in order:
        if n.op.name in SOURCE_OPS:
            out.add(id(n))
        elif n.op.name in VIEW_OPS and id(n.inputs[0]) in out:
            out.add(id(n))
    return out


def _atomic(e) -> bool:
    return (
        isinstance(e, (sp.Symbol, sp.MatrixSymbol, sp.Number, sp.NumberSymbol))
        or is_ones(e) is not None
        or isinstance(e, sp.Identity)
    )


def raise_graph(
    outputs,
    inputs: Mapping[str, sp.Basic] | None = None,
    names: Mapping[Node, str] | None = None,
    *,
    share: bool = True,
    namer: Callable[[Node, int], str] | None = None,
    scans=None,
) -> RaisedGraph:
    """Raise the graph reachable from ``outputs`` to SymPy.

    Parameters
    ----------
    outputs
        A node, or a nested result structure of nodes such as ``Program.result``.
    inputs
        The SymPy symbol of each ``input`` node, by input name (a missing one becomes a
        ``Symbol`` / ``MatrixSymbol`` of that name and the node's shape).
    names
        Nodes to name, and their names. A named node becomes an :class:`Assignment` and is
        referred to by a ``Symbol`` (scalar) or ``MatrixSymbol`` (matrix) of that name.
    share
        Also name every other node used more than once (except sources, views of sources and
        input-free constants, which are cheap to repeat), so no node is written out twice.
    namer
        ``namer(node, k) -> name`` for those automatically named nodes (``k`` counts from 1);
        default ``t1, t2, ...``.
    scans
        A :class:`~symgrad.ir.to_sympy_scan.ScanRaiser` naming the loops of scan nodes (one is
        made when the graph has scans). A scan becomes a
        :class:`~symgrad.ir.to_sympy_scan.LoopBlock` among the assignments, and its outputs
        the symbols that block defines; its non-trivial sequence and closure inputs are named.

    Returns
    -------
    RaisedGraph
        The assignments, in dependency order, and the expression of each output.

    Examples
    --------
    >>> import sympy as sp
    >>> from symgrad.compiler.program import build_programs
    >>> x = sp.Symbol("x")
    >>> vg = next(p for p in build_programs([sp.tanh(x)], [x]).programs
    ...           if p.name == "value_and_grad")
    >>> raised = raise_graph(vg.result, {"x": x})
    >>> [(a.symbol, a.expr) for a in raised.assignments]
    [(t1, tanh(x))]
    >>> raised.outputs
    [t1, 1 - t1**2]
    """
    inputs = dict(inputs or {})
    wanted = {id(k): v for k, v in (names or {}).items()}
    roots = _roots(outputs)
    order = toposort(roots)
    counts = use_counts(outputs) if share else {}
    cheap = trivial_nodes(order) if share else set()
    free = input_free(order)
    namer = namer or (lambda node, k: f"t{k}")
    loops = [n for n in order if n.op.name == "scan"]
    if loops:
        from .to_sympy_scan import ScanRaiser

        scans = scans or ScanRaiser(inputs)
        taken = set(wanted.values()) | {str(v) for v in inputs.values()}
        for n, name in scans.input_names(loops, trivial_nodes(order), wanted, taken).items():
            wanted[id(n)] = name
    values: dict[int, sp.Basic] = {}
    loop_outputs: dict[int, list] = {}
    assignments: list = []
    auto = 0
    for node in order:
        args = [values.get(id(i)) for i in node.inputs]
        if node.op.name == "scan":
            block, loop_outputs[id(node)] = scans.raise_scan(node, args)
            assignments.append(block)
            values[id(node)] = sp.S.Zero  # a tuple: only its scan_output readers have values
            continue
        if node.op.name == "scan_output":
            values[id(node)] = loop_outputs[id(node.inputs[0])][node.attr("index")]
            continue
        expr = _raise_node(node, args, inputs)
        if id(node) in free and node.op.name not in SOURCE_OPS:
            # Compile-time constants (sums of identities, 1/n ...) read best simplified.
            expr = _simplify_constant(expr)
        name = wanted.get(id(node))
        if name is None and share and counts.get(id(node), 0) > 1 and id(node) not in cheap:
            auto += 1
            name = namer(node, auto)
        if name is not None and not _atomic(expr):
            symbol = shaped_symbol(name, node.shape)
            assignments.append(Assignment(node, symbol, expr))
            expr = symbol
        values[id(node)] = expr
    return RaisedGraph(assignments, [values[id(r)] for r in roots], values)


def _simplify_constant(expr: sp.Basic) -> sp.Basic:
    try:
        done = expr.doit()
    except Exception:  # noqa: BLE001 - doit is best effort; the unsimplified form is correct
        return expr
    if _is_matrix(done) != _is_matrix(expr):
        return expr
    if _is_matrix(done):
        # doit turns a 1 x 1 OneMatrix into an Identity; keep ones as ones.
        if isinstance(done, sp.Identity) and done.shape == (1, 1):
            return sp.OneMatrix(1, 1)
        if isinstance(done, sp.MatMul):
            c, ms = _split_coeff(done)
            if len(ms) == 1 and isinstance(ms[0], sp.Identity) and ms[0].shape == (1, 1):
                return _ones(c, (1, 1))
    return done


def to_sympy(outputs, inputs: Mapping[str, sp.Basic] | None = None) -> list[sp.Basic]:
    """Each output of the graph as one SymPy expression, everything inlined.

    Convenient for small graphs; for large ones prefer :func:`raise_graph`, whose shared
    intermediates keep the printed size linear in the graph size.

    Examples
    --------
    >>> import sympy as sp
    >>> from symgrad.compiler.program import build_programs
    >>> x, y = sp.symbols("x y")
    >>> vg = next(p for p in build_programs([sp.sin(x) * y], [x, y]).programs
    ...           if p.name == "value_and_grad")
    >>> to_sympy(vg.result, {"x": x, "y": y})
    [y*sin(x), y*cos(x), sin(x)]
    """
    return raise_graph(outputs, inputs, share=False).outputs


# -- numeric evaluation of raised expressions ---------------------------------------------------
class NumPyMatrixPrinter(SciPyPrinter):
    """A NumPy/SciPy printer for ``sympy.lambdify`` that also knows the matrix forms made here.

    ``HadamardPower``, ``ElementwiseApplyFunction``, :class:`ElementwiseMap`, ``Trace``,
    ``KroneckerDelta`` and identities of symbolic size; elementwise functions are vectorised
    over entries, so any scalar body that lambdifies works. Pass an instance made by
    :meth:`for_lambdify` (the settings ``lambdify`` gives its own printers), with
    ``modules=["scipy", "numpy"]`` for special functions such as ``polygamma``.

    Examples
    --------
    >>> import numpy as np, sympy as sp
    >>> A = sp.MatrixSymbol("A", 2, 2)
    >>> expr = sp.HadamardPower(A, 2) + A.applyfunc(sp.tanh)
    >>> printer = NumPyMatrixPrinter.for_lambdify()
    >>> fn = sp.lambdify([A], expr, ["scipy", "numpy"], printer=printer)
    >>> fn(np.zeros((2, 2))).tolist()
    [[0.0, 0.0], [0.0, 0.0]]
    """

    @classmethod
    def for_lambdify(cls) -> NumPyMatrixPrinter:
        """A printer with the settings ``sympy.lambdify`` uses (unknown functions, such as those
        of :mod:`symgrad.nn`, print by name and resolve through their ``_imp_``)."""
        return cls(
            {"fully_qualified_modules": False, "inline": True, "allow_unknown_functions": True}
        )

    def _print_HadamardPower(self, expr):
        base, exp = expr.args
        return f"{self._module_format('numpy.power')}({self._print(base)}, {self._print(exp)})"

    def _vectorized(self, variables, body, operands) -> str:
        names = ", ".join(self._print(v) for v in variables)
        fn = self._module_format("numpy.vectorize")
        args = ", ".join(self._print(m) for m in operands)
        return f"{fn}(lambda {names}: {self._print(body)}, otypes=[float])({args})"

    def _print_ElementwiseApplyFunction(self, expr):
        function = expr.function
        if not isinstance(function, sp.Lambda):
            d = _LAMBDA_VARS[0]
            function = sp.Lambda(d, function(d))
        return self._vectorized(function.variables, function.expr, [expr.expr])

    def _print_ElementwiseMap(self, expr):
        return self._vectorized(expr.function.variables, expr.function.expr, expr.matrices)

    def _print_Trace(self, expr):
        return f"{self._module_format('numpy.trace')}({self._print(expr.arg)})"

    def _print_Identity(self, expr):
        return f"{self._module_format('numpy.eye')}({self._print(expr.shape[0])})"

    def _print_KroneckerDelta(self, expr):
        a, b = expr.args
        return f"(1.0*({self._print(a)} == {self._print(b)}))"

    def _print_OpCall(self, expr):
        fn = self._module_format("symgrad.ir.to_sympy.numpy_op")
        operands = "".join(f", {self._print(m)}" for m in expr.operands)
        return f"{fn}({expr.op_name!r}, {expr.attrs_text!r}{operands})"

    def _print_MatrixElement(self, expr):
        parent = self._print(expr.parent)
        return f"({parent})[{self._print(expr.i)}, {self._print(expr.j)}]"
