"""Emit one Numba function for a program: parameters, scheduled units, and a return value.

Every node gets a sanitised name (``t<k>``); user symbol names never appear in the source.
"""

from __future__ import annotations

import sympy as sp

from ..ir.errors import UnsupportedExpressionError
from ..ir.node import Node
from ..ir.ops_elementwise import ElementwiseOp
from ..ir.ops_source import const_op
from ..ir.ops_sparse import add_rows_op, put_rows_op
from ..ir.types import VECTOR_DIM
from .emit_sparse import add_rows_in_place, write_rows
from .printer import ScalarPrinter
from .schedule import schedule


class FunctionEmitter:
    """Collects the body of one generated function.

    Parameters
    ----------
    dtype
        ``"float64"`` or ``"float32"``.
    constants
        Module-wide typed constant table shared with :class:`ScalarPrinter`.
    """

    def __init__(self, dtype: str, constants: dict):
        self.dtype = dtype
        self.constants = constants
        self.lines: list[str] = []
        self.names: dict[int, str] = {}
        self.dims: dict[sp.Symbol, str] = {}
        self.counter = 0
        #: extra indentation, for bodies emitted inside a loop (a scan)
        self.base = 0
        #: scan node id -> names of its outputs
        self.scan_outputs: dict[int, list[str]] = {}
        #: touched_rows node id -> (slots array name, {index input id: its offset name})
        self.row_slots: dict[int, tuple] = {}
        #: group output id -> the argument it is computed straight into (an in-place update)
        self.write_into: dict[int, str] = {}
        #: node id -> output arrays that also get its value, stored by the first fused loop of
        #: the same shape that loads or computes it (an ``into`` function's copies)
        self.extra_stores: dict[int, list[str]] = {}
        #: output arrays already written that way
        self.stored: set[str] = set()

    # -- helpers used by emitters ----------------------------------------------------------------
    def fresh(self, prefix: str = "t") -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def emit(self, line: str, indent: int = 1) -> None:
        self.lines.append("    " * (indent + self.base) + line)

    def allocate(self, name: str, shape, fill=None, indent: int = 1, dtype: str = "_F") -> None:
        """``name = np.empty(shape)``, then ``name.fill(fill)`` unless ``fill`` is None.

        Never ``np.zeros``/``np.full``: Numba compiles each NumPy function a generated module
        uses once per process, ~0.4 s apiece, and ``np.empty`` and ``fill`` are needed anyway.
        ``shape`` is a shape tuple or already its source text.
        """
        text = shape if isinstance(shape, str) else self.shape(shape)
        if dtype == "_F" and isinstance(fill, (int, float)):
            # A float constant, not an int literal: fill(0) and fill(_K1) would be two
            # compiled variants of ``fill``.
            fill = self.number(fill)
        self.emit(f"{name} = np.empty({text}, dtype={dtype})", indent)
        if not isinstance(shape, str) and VECTOR_DIM in shape:
            self.emit(f"advise_hugepages({name})", indent)  # see codegen/hugepages.py
        if fill is not None:
            self.emit(f"{name}.fill({fill})", indent)

    def number(self, value) -> str:
        return ScalarPrinter({}, self.dtype, self.constants).number(value)

    def dim(self, d) -> str:
        if isinstance(d, int):
            return str(d)
        missing = d.free_symbols - set(self.dims)
        if missing:
            raise UnsupportedExpressionError(f"dimension {d} cannot be bound from any array input")
        return "(" + sp.pycode(d.xreplace({s: sp.Symbol(v) for s, v in self.dims.items()})) + ")"

    def shape(self, shape) -> str:
        dims = [self.dim(d) for d in shape]
        return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"

    def dim_value(self, symbol) -> str:
        return f"_F({self.dim(symbol)})"

    def name(self, node: Node) -> str:
        got = self.names.get(id(node))
        if got is not None:
            return got
        if node.op is const_op and node.ndim == 0:
            return self.number(node.attr("value"))
        raise KeyError(f"internal: {node!r} used before it was emitted")

    def value_at(self, node: Node, loop_shape: tuple, idx: list[str]) -> str:
        """Source reading ``node`` at loop index ``idx`` of a loop over ``loop_shape``."""
        if node.op is const_op:
            return self.number(node.attr("value"))
        name = self.name(node)
        if node.ndim == 0:
            return name
        offset = len(loop_shape) - node.ndim
        parts = []
        for k, d in enumerate(node.shape):
            axis = offset + k
            parts.append("0" if d == 1 and loop_shape[axis] != 1 else idx[axis])
        return f"{name}[{', '.join(parts)}]"

    def printer(self, names: dict) -> ScalarPrinter:
        return ScalarPrinter(names, self.dtype, self.constants)

    def open_loops(self, shape: tuple, indent: int = 1) -> tuple[list[str], int]:
        idx = []
        for d in shape:
            v = self.fresh("i")
            self.emit(f"for {v} in range({self.dim(d)}):", indent)
            idx.append(v)
            indent += 1
        return idx, indent

    # -- elementwise ---------------------------------------------------------------------------
    def scalar_expr(self, node: Node, arg_source) -> str:
        op: ElementwiseOp = node.op
        names = {op.args[k]: arg_source(i) for k, i in enumerate(node.inputs)}
        return self.printer(names).print(op.body)

    def emit_scalar_elementwise(self, node: Node) -> None:
        name = f"t{node.uid}"
        self.emit(f"{name} = {self.scalar_expr(node, self.name)}")
        self.names[id(node)] = name

    def emit_group(self, members: list[Node], outputs: list[Node]) -> None:
        shape = members[-1].shape
        for out in outputs:
            if id(out) in self.write_into:
                # A parameter's new value, written over the parameter's own array.
                self.names[id(out)] = self.write_into[id(out)]
                continue
            name = f"t{out.uid}"
            self.allocate(name, out.shape)
            self.names[id(out)] = name
        idx, indent = self.open_loops(shape)
        local: dict[int, str] = {}
        member_ids = {id(m) for m in members}
        loads: dict[int, str] = {}
        held: dict[int, Node] = {}  # the nodes in ``local`` and ``loads``, by id

        def source(inp: Node) -> str:
            if id(inp) in local:
                return local[id(inp)]
            if id(inp) in member_ids:
                raise KeyError(f"internal: group member {inp!r} read before computed")
            if inp.op is const_op or inp.ndim == 0:
                return self.value_at(inp, shape, idx)
            if id(inp) not in loads:
                v = self.fresh("x")
                self.emit(f"{v} = {self.value_at(inp, shape, idx)}", indent)
                loads[id(inp)] = v
                held[id(inp)] = inp
            return loads[id(inp)]

        output_ids = {id(o) for o in outputs}
        for m in members:
            expr = self.scalar_expr(m, source)
            if expr.isidentifier():
                v = expr  # an identity body (a view or a cast): no new variable to type
            else:
                v = f"v{m.uid}"
                self.emit(f"{v} = {expr}", indent)
            local[id(m)] = v
            held[id(m)] = m
            if id(m) in output_ids:
                self.emit(f"{self.names[id(m)]}[{', '.join(idx)}] = {v}", indent)
        # Copies an into function returns (an input, a node returned twice) ride along in the
        # loop that already holds the element: one pass over memory instead of one per copy.
        for key, outs in self.extra_stores.items():
            v = local.get(key) or loads.get(key)
            if v is None or any(out in self.stored for out in outs):
                continue
            if tuple(held[key].shape) != tuple(shape):
                continue
            for out in outs:
                self.emit(f"{out}[{', '.join(idx)}] = {v}", indent)
                self.stored.add(out)


def emit_units(em: FunctionEmitter, outputs: list[Node], leaves, keep=(), around=None) -> None:
    """Schedule and emit everything ``outputs`` needs beyond ``leaves`` (already named).

    ``around(unit, emit)``, if given, is called instead of ``emit()`` for fused groups and
    structural ops (a scan body uses it to move their allocations out of the loop).
    """
    from .emit_structural import emit_structural

    units = schedule(outputs, keep={id(n) for n in keep}, leaves=leaves)
    for unit in units:
        if unit.is_group:
            emit = lambda u=unit: em.emit_group(u.nodes, u.outputs)  # noqa: E731
        else:
            (node,) = unit.nodes
            if id(node) in em.names:
                continue
            if isinstance(node.op, ElementwiseOp):
                em.emit_scalar_elementwise(node)
                continue
            emit = lambda n=node: emit_structural(em, n)  # noqa: E731
        if around is None:
            emit()
        else:
            around(unit, emit)


def _updates_in_loop(outputs, keep, params, inplace, results) -> list[tuple[Node, Node]]:
    """The in-place updates whose fused loop can write straight into the parameter's array.

    An elementwise group computing a parameter's new value reads each element of the old value
    at the same index just before writing it, so the group may write over the parameter itself
    (saving a temporary and a copy of every parameter, each step) if nothing emitted after the
    group's start reads the parameter, no view of the parameter (a transpose) is read by the
    group or later, and the new value is not also returned.
    """
    units = schedule(outputs, keep={id(n) for n in keep}, leaves=params)
    position = {}
    for k, unit in enumerate(units):
        for n in unit.nodes:
            position[id(n)] = k
    result_ids = {id(r) for r in results}
    chosen = []
    for param, value in inplace:
        k = position.get(id(value))
        if k is None or not units[k].is_group or id(value) in result_ids:
            continue
        if id(param) in result_ids or tuple(value.shape) != tuple(param.shape):
            continue
        if tuple(units[k].nodes[-1].shape) != tuple(param.shape):
            continue
        if _read_after(units, k, param) or _read_after_write(units[k].nodes, value, param):
            continue
        chosen.append((param, value))
    return chosen


def _read_after_write(members: list[Node], value: Node, param: Node) -> bool:
    """Whether the group could read ``param`` after writing ``value`` over it.

    The group loads each input element once, on first use, into a local; a member after
    ``value`` that reads ``param`` would see the new element unless an earlier member (or
    ``value`` itself) loaded it first.
    """
    at = members.index(value)
    loaded = any(param in m.inputs for m in members[: at + 1])
    return not loaded and any(param in m.inputs for m in members[at + 1 :])


def _aliases(node: Node, param: Node) -> bool:
    """Whether ``node`` is a view of ``param`` (a transpose or reshape of it)."""
    while node.op.name in ("transpose", "reshape"):
        node = node.inputs[0]
        if node is param:
            return True
    return False


def _read_after(units, k: int, param: Node) -> bool:
    """Whether units after ``k`` read ``param``, or unit ``k`` or later reads a view of it."""
    for j in range(k, len(units)):
        members = {id(m) for m in units[j].nodes}
        for n in units[j].nodes:
            for i in n.inputs:
                if id(i) in members:
                    continue
                if _aliases(i, param) or (i is param and j > k):
                    return True
    return False


#: In-place targets that write only some rows of the parameter they update.
ROW_WRITERS = {put_rows_op: write_rows, add_rows_op: add_rows_in_place}


def _writes_rows(param: Node, value: Node) -> bool:
    return value.op in ROW_WRITERS and value.inputs[0] is param


def emit_function(
    fname: str,
    params: list[Node],
    result,
    dtype: str,
    constants: dict,
    decorator: str,
    keep: list[Node] = (),
    inplace: list = (),
    into: bool = False,
) -> str:
    """Source of one ``@njit`` function computing ``result`` from ``params``.

    Parameters
    ----------
    params
        Input nodes, in positional order.
    result
        A node, or a (nested) tuple/list of nodes, giving the structure of the return value.
    keep
        Extra nodes to materialise (they appear in ``result`` too).
    into
        Take one more parameter per returned points array (``out0, out1, ...``, in return
        order; see :func:`into_outputs`) and compute each result into it instead of into a new
        array: the caller reuses output memory across calls (``codegen/output_pool.py``).
    """
    em = FunctionEmitter(dtype, constants)
    arg_names = []
    for k, p in enumerate(params):
        a = f"arg{k}"
        arg_names.append(a)
        em.names[id(p)] = a
        for axis, d in enumerate(p.shape):
            if not isinstance(d, int) and d.is_Symbol and d not in em.dims:
                em.dims[d] = f"d{len(em.dims)}"
                em.emit(f"{em.dims[d]} = {a}.shape[{axis}]")

    flat = _flatten(result)
    # The output parameter each returned points array is written to (None: returned as usual).
    out_names: list[str | None] = [None] * len(flat)
    if into:
        for k, j in enumerate(_vector_positions(flat)):
            out_names[j] = f"out{k}"
            arg_names.append(out_names[j])
            r = flat[j]
            if r.op is const_op:
                continue  # filled in place at the return (a constant gradient: 1, 0, 2)
            if id(r) not in em.names and id(r) not in em.write_into:
                em.write_into[id(r)] = out_names[j]
            else:  # an input, or a node returned twice: copied by the loop that holds it
                em.extra_stores.setdefault(id(r), []).append(out_names[j])
    targets = []
    for param, value in inplace:
        # A row-sparse update writes its rows straight into the caller's array: only the rows
        # and their new values are computed, never a copy of the whole table.
        targets.extend(value.inputs[1:] if _writes_rows(param, value) else [value])
    # Tape entries (a forward function's) go only to backward: they may share the value's array.
    tape_ids = {id(n) for n in keep}
    # Constants an into function returns are filled straight into their outputs at the return.
    flat_needed = [r for r, out in zip(flat, out_names) if out is None or r.op is not const_op]
    keep = list(keep) + flat_needed + targets
    written = _updates_in_loop(flat_needed + targets, keep, params, inplace, flat)
    for param, value in written:
        em.write_into[id(value)] = em.name(param)
    emit_units(em, flat_needed + targets, leaves=params, keep=keep)

    # In-place writes come last, after every read of the old values.
    done = {id(value) for _, value in written}
    for param, value in inplace:
        dst = em.name(param)
        if value is param or id(value) in done:
            continue
        if param.ndim == 0:
            raise ValueError("internal: in-place targets must be arrays")
        if _writes_rows(param, value):
            ROW_WRITERS[value.op](em, dst, value)
            continue
        idx, indent = em.open_loops(param.shape)
        em.emit(f"{dst}[{', '.join(idx)}] = {em.value_at(value, param.shape, idx)}", indent)

    def ret(r) -> str:
        if isinstance(r, (tuple, list)):
            inner = ", ".join(ret(x) for x in r)
            return f"({inner}{',' if len(r) == 1 else ''})"
        out = next(outputs)  # ret visits the leaves in the order _flatten listed them
        if out is not None:
            if r.op is const_op:
                em.emit(f"{out}.fill({em.number(r.attr('value'))})")
            elif em.name(r) != out and out not in em.stored:
                # A parameter, a node returned twice, or one no fused loop wrote: copy it out.
                idx, indent = em.open_loops(r.shape)
                em.emit(f"{out}[{idx[0]}] = {em.name(r)}[{idx[0]}]", indent)
            return out
        if r.op is const_op and r.ndim == 0:
            return f"_F({em.number(r.attr('value'))})"
        repeated = id(r) in handed_back and id(r) not in tape_ids
        if r.ndim and (id(r) in param_ids or repeated):
            # Never hand back a caller's array (d(x*z)/dx is z itself), nor one array twice
            # (d/dA = d/dB of (A+B)ᵀ·exp(X); exp(x) and its gradient): writing into a returned
            # array must change neither an input nor another output. A forward function's tape
            # entries, read only by backward, may share the value's array.
            if VECTOR_DIM not in r.shape:
                return f"{em.name(r)}.copy()"
            copy = em.fresh("copy")
            em.allocate(copy, r.shape)  # with the huge-page hint that .copy() would not give
            idx, indent = em.open_loops(r.shape)
            em.emit(f"{copy}[{', '.join(idx)}] = {em.name(r)}[{', '.join(idx)}]", indent)
            return copy
        handed_back.add(id(r))
        return em.name(r)

    param_ids = {id(p) for p in params}
    handed_back: set[int] = set()
    outputs = iter(out_names)
    header = [decorator, f"def {fname}({', '.join(arg_names)}):"]
    returned = ret(result)
    return "\n".join(header + em.lines + [f"    return {returned}", ""])


def _flatten(result) -> list[Node]:
    """The nodes of a (nested) tuple/list result, in return order."""
    if isinstance(result, (tuple, list)):
        return [n for r in result for n in _flatten(r)]
    return [result]


def _vector_positions(flat: list[Node]) -> list[int]:
    """Positions in the flattened result of the arrays along the points axis alone."""
    return [j for j, r in enumerate(flat) if r.ndim == 1 and r.shape[0] == VECTOR_DIM]


def into_outputs(result) -> int:
    """How many output parameters :func:`emit_function` adds with ``into=True`` for ``result``.

    Examples
    --------
    >>> into_outputs(())
    0
    """
    return len(_vector_positions(_flatten(result)))
