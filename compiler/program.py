"""Build the programs of a compiled function: value, value-and-gradient, forward/backward with a
tape, and forward-mode JVP — each an optimised IR graph ready for code generation."""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from ..ir.errors import InputError, ShapeError, UnsupportedExpressionError
from ..ir.node import Node, toposort
from ..ir.ops_source import const, const_op, input_node, input_op
from ..ir.program import Program, flatten, unflatten
from ..ir.scan_expr import SequenceSymbol, scan_bound_symbols
from ..ir.types import as_dim
from .forward import jvp
from .lower import Lowerer, dim_value_op, is_matrix
from .passes import optimize
from .reverse import grad


@dataclass
class InputSpec:
    """What the caller must pass for one symbol."""

    name: str
    symbol: sp.Basic
    shape: tuple
    is_matrix: bool
    kind: str = "float"


@dataclass
class ProgramSet:
    inputs: list[InputSpec]
    wrt: list[int]  # indices into inputs
    out_shapes: list[tuple]  # main output first, then aux
    dims: list[sp.Symbol]
    programs: list[Program] = field(default_factory=list)
    tape_size: int = 0
    inplace: list[int] = field(default_factory=list)  # inputs a step updates in place
    #: index input name -> [(table rows, table label)]: ids must be below every bound
    index_bounds: dict = field(default_factory=dict)


def dimension_symbols(exprs) -> set:
    """Symbols used as array dimensions (bound from shapes at call time, never inputs)."""
    dims: set = set()
    for e in exprs:
        for m in e.atoms(sp.MatrixSymbol, SequenceSymbol):
            for d in m.shape:
                dims |= sp.sympify(d).free_symbols
    return dims


def free_input_symbols(exprs) -> list:
    """The inputs of ``exprs``: symbols, matrix symbols and sequences, sorted by name.

    Dimension symbols and the per-step symbols of scans are not inputs.
    """
    dims = dimension_symbols(exprs)
    bound = scan_bound_symbols(exprs)
    found = {}
    for e in exprs:
        # free_symbols, not atoms: a Lambda's bound variable (applyfunc) is no input.
        candidates = {a for a in e.free_symbols if isinstance(a, (sp.Symbol, sp.MatrixSymbol))}
        for a in candidates | e.atoms(SequenceSymbol):
            if a in dims or a in bound:
                continue
            found.setdefault(a.name, a)
    return [found[k] for k in sorted(found)]


def _optimize_result(result):
    flat = flatten(result)
    return unflatten(result, optimize(flat))


def _input_order(lowerer: Lowerer, wrt) -> list[tuple[str, sp.Basic, Node]]:
    seen = dict(lowerer.inputs)
    ordered = []
    for w in wrt:
        name = w.name
        ordered.append((name, seen[name][0], seen[name][1]))
    wrt_names = {w.name for w in wrt}
    for name in sorted(seen):
        if name not in wrt_names:
            ordered.append((name, seen[name][0], seen[name][1]))
    return ordered


def _check_wrt(wrt, dims) -> list:
    out = []
    for w in wrt:
        if isinstance(w, str):
            raise InputError(f"wrt must hold SymPy symbols, got the string {w!r}")
        if not isinstance(w, (sp.Symbol, sp.MatrixSymbol, SequenceSymbol)):
            raise InputError(
                f"cannot differentiate with respect to {w!r}: not a Symbol or MatrixSymbol"
            )
        if w in dims:
            raise InputError(f"{w} is a matrix dimension; it cannot be differentiated")
        if getattr(w, "is_index_input", False):
            raise InputError(f"{w} is an integer index input; it has no gradient")
        out.append(w)
    return out


def lower_outputs(exprs, wrt, shape_overrides=None):
    """Lower ``exprs`` and return ``(lowerer, out_nodes, ordered_inputs, wrt_nodes, dims)``."""
    exprs = [sp.sympify(e) for e in exprs]
    dims = dimension_symbols(exprs + [w for w in wrt if isinstance(w, sp.MatrixSymbol)])
    wrt = _check_wrt(wrt, dims)
    from . import lower_scan  # noqa: F401 - registers the scan lowerings

    lowerer = Lowerer(dims)
    if shape_overrides:
        lowerer.shape_overrides = shape_overrides
    # Optimise before differentiating: stable forward forms give stable backward forms.
    out_nodes = optimize(lowerer.lower_all(exprs))
    for w in wrt:  # a wrt symbol that does not occur is still an input (its gradient is zero)
        lowerer.lower(w)
    ordered = _input_order(lowerer, wrt)
    wrt_nodes = [lowerer.inputs[w.name][1] for w in wrt]
    return lowerer, out_nodes, ordered, wrt_nodes, dims


def build_programs(exprs, wrt, shape_overrides=None) -> ProgramSet:
    """All programs for ``compile(exprs, wrt)``; see :class:`ProgramSet`."""
    lowerer, outs, ordered, wrt_nodes, dims = lower_outputs(exprs, wrt, shape_overrides)
    main, aux = outs[0], outs[1:]
    params = [node for _, _, node in ordered]
    specs = input_specs(ordered)
    wrt_index = [params.index(n) for n in wrt_nodes]
    value = (main, *aux) if aux else main

    seed = input_node("seed", main.shape, role="seed")
    grads = grad(main, wrt_nodes, seed)
    grads_ones = grad(main, wrt_nodes, const(1, main.shape))

    ps = ProgramSet(specs, wrt_index, [o.shape for o in outs], sorted(dims, key=str))
    ps.index_bounds = index_bounds(outs)
    ps.programs.append(Program("value", params, _optimize_result(value)))
    ps.programs.append(
        Program("value_and_grad_seed", params + [seed], _optimize_result((value, tuple(grads))))
    )
    ps.programs.append(
        Program("value_and_grad", params, _optimize_result((value, tuple(grads_ones))))
    )

    # Forward/backward split: the tape holds the forward values backward reads.
    opt_value, opt_grads = _optimize_result((value, tuple(grads)))
    tape = _tape(opt_grads, seed, params)
    tape_params = [input_node(f"tape{k}", t.shape, role="tape") for k, t in enumerate(tape)]
    backward_grads = _substitute(opt_grads, dict(zip(tape, tape_params)))
    ps.tape_size = len(tape)
    ps.programs.append(Program("forward", params, (opt_value, tuple(tape)), keep=list(tape)))
    ps.programs.append(
        Program("backward", params + tape_params + [seed], _optimize_result(backward_grads))
    )

    tangents = [input_node(f"tangent{k}", n.shape, role="tangent") for k, n in enumerate(wrt_nodes)]
    try:
        (jvp_main,) = jvp([main], dict(zip(wrt_nodes, tangents)))
    except UnsupportedExpressionError:
        return ps  # e.g. through a scan: Compiled.jvp then says forward mode is unavailable
    ps.programs.append(Program("jvp", params + tangents, _optimize_result((value, jvp_main))))
    return ps


def input_specs(ordered) -> list[InputSpec]:
    """What the caller passes for each ``(name, symbol, node)`` input."""
    return [
        InputSpec(name, sym, node.shape, is_matrix(sym) or bool(node.ndim), node.type.kind)
        for name, sym, node in ordered
    ]


def index_bounds(outputs) -> dict:
    """For each integer index input, the row counts of the tables it chooses rows from.

    ``Compiled`` checks ids against them before the call, naming input and table.
    """
    bounds: dict = {}
    for node in toposort(list(outputs)):
        if node.op.family != "gather":
            continue
        table, ids = node.inputs[0], node.inputs[1]
        if ids.op is not input_op:
            continue
        label = table.attr("name") if table.op is input_op else f"a {table.op.name} value"
        entry = (table.shape[0], label)
        found = bounds.setdefault(ids.attr("name"), [])
        if entry not in found:
            found.append(entry)
    return bounds


def _tape(grads, seed: Node, params: list[Node]) -> list[Node]:
    order = toposort(flatten(grads))
    dep: set[int] = {id(seed)}
    for n in order:
        if any(id(i) in dep for i in n.inputs):
            dep.add(id(n))
    param_ids = {id(p) for p in params}
    tape: list[Node] = []
    seen: set[int] = set()
    for n in order:
        if id(n) not in dep:
            continue
        for i in n.inputs:
            if id(i) in dep or id(i) in param_ids or id(i) in seen:
                continue
            if i.op is const_op or i.op is dim_value_op or i.op is input_op:
                continue
            seen.add(id(i))
            tape.append(i)
    return tape


def _substitute(result, mapping: dict[Node, Node]):
    from ..ir.node import substitute

    flat = substitute(flatten(result), {id(k): v for k, v in mapping.items()})
    return unflatten(result, flat)


def build_hessian(expr, wrt) -> ProgramSet:
    """Program computing the Hessian matrix of a scalar ``expr`` w.r.t. scalar symbols ``wrt``."""
    from ..ir.ops_shape import stack

    for w in wrt:
        if not isinstance(w, sp.Symbol):
            raise ShapeError(f"hessian supports scalar symbols only; {w} is not one")
    lowerer, outs, ordered, wrt_nodes, dims = lower_outputs([expr], wrt)
    (main,) = outs
    if main.ndim:
        raise ShapeError("hessian needs a scalar expression")
    params = [node for _, _, node in ordered]
    one = const(1)
    grads = optimize(grad(main, wrt_nodes, one))
    rows = []
    for g in grads:
        rows.extend(optimize(grad(g, wrt_nodes, one)))
    k = len(wrt_nodes)
    hess = stack(rows, (as_dim(k), as_dim(k)))
    specs = [InputSpec(name, sym, node.shape, False) for name, sym, node in ordered]
    ps = ProgramSet(specs, [params.index(n) for n in wrt_nodes], [(k, k)], sorted(dims, key=str))
    ps.programs.append(Program("value", params, _optimize_result(hess)))
    # Hessian-vector product, forward over reverse.
    tangents = [input_node(f"tangent{j}", (), role="tangent") for j in range(k)]
    hvp = jvp(grads, dict(zip(wrt_nodes, tangents)))
    ps.programs.append(Program("hvp", params + tangents, _optimize_result(tuple(hvp))))
    return ps
