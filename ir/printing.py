"""A readable, SSA-style text listing of an IR graph.

Each node is one line, inputs before users, named ``%0, %1, ...`` in listing order::

    %0 : float[n, 3] = input X
    %5 : float[n, 4] = tanh(%4)
    %6 : float[n, 4] = 1 - %5**2
    return (%5, (%9,))

Elementwise ops are shown by their SymPy body with the arguments substituted, so a derived
derivative reads as the formula it is. Graphviz output lives in :mod:`symgrad.ir.dot`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache

import sympy as sp

from .node import Node, toposort
from .program import Program, flatten

__all__ = ["listing", "program_listing", "number_nodes", "describe"]

# Placeholder symbol names (NUL-delimited argument positions) that cannot occur in a printed SymPy
# expression, so a printed body can be split on them reliably.
_TOKEN = re.compile("\x00([0-9]+)\x00")


@lru_cache(maxsize=4096)
def _body_template(body: sp.Expr, nargs: int) -> tuple:
    """Split ``sstr(body)`` into literal text and argument positions.

    Printing each distinct body once and splicing names per node keeps listing linear in the
    number of nodes even when one big fused body is used many times; it also keeps the term order
    tied to the op's argument order, not to the string order of ``%k`` names.
    """
    from .ops_elementwise import ARGS

    # Real, like ARGS, so xreplace keeps the assumptions and hence the evaluated form of the body.
    marks = {ARGS[i]: sp.Symbol(f"\x00{i}\x00", real=True) for i in range(nargs)}
    parts = _TOKEN.split(sp.sstr(body.xreplace(marks)))
    # re.split alternates literal text and captured argument indices.
    return tuple(p if k % 2 == 0 else int(p) for k, p in enumerate(parts))


def _splice(template: tuple, names: list[str]) -> str:
    return "".join(p if isinstance(p, str) else names[p] for p in template)


def format_value(value) -> str:
    """Text of an attribute value: Python-style tuples, SymPy via ``sstr``, odd strings quoted."""
    if isinstance(value, tuple):
        inner = ", ".join(format_value(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, sp.Basic):
        return sp.sstr(value)
    if isinstance(value, str):
        return value if value.isidentifier() else repr(value)
    return str(value)


def _as_roots(outputs) -> list[Node]:
    if isinstance(outputs, Node):
        return [outputs]
    return [n for n in flatten(outputs) if n is not None]


def number_nodes(
    outputs, params: Iterable[Node] | None = None
) -> tuple[list[Node], dict[int, int]]:
    """The nodes of the graph in listing order and their local numbers.

    Parameters come first, in their given order (so ``%0 ...`` are the function's arguments,
    even unused ones), then every other node reachable from ``outputs`` in topological order.

    Returns
    -------
    order
        The nodes, inputs before users.
    number
        ``id(node) -> k`` for the name ``%k``.
    """
    order: list[Node] = []
    number: dict[int, int] = {}
    for node in [*(params or ()), *toposort(_as_roots(outputs))]:
        if id(node) not in number:
            number[id(node)] = len(order)
            order.append(node)
    return order, number


def describe(node: Node, names: list[str]) -> str:
    """The right-hand side of a node's line, given the names of its inputs.

    ``input X``, ``const 1/2``, an elementwise body such as ``1 - %6**2``, or
    ``op(%1, %2; attr=value)`` for structural ops.
    """
    op = node.op
    if op.name == "input":
        role = node.attr("role", "arg")
        text = f"input {format_value(node.attr('name'))}"
        return text if role == "arg" else f"{text} ({role})"
    if op.name == "const":
        return f"const {format_value(node.attr('value'))}"
    if op.family == "elementwise":
        return _splice(_body_template(op.body, op.nargs), names)
    attrs = ", ".join(f"{k}={format_value(v)}" for k, v in node.attrs if k != "body")
    args = ", ".join(names)
    inner = "; ".join(x for x in (args, attrs) if x)
    return f"{op.name}({inner})"


def _format_result(result, number: dict[int, int]) -> str:
    # Iterative, like toposort: a result tree may be as deep as the caller likes.
    out: list[str] = []
    stack: list = [result]
    while stack:
        item = stack.pop()
        if isinstance(item, str):  # a closing bracket queued earlier
            out.append(item)
        elif isinstance(item, (tuple, list)):
            closing = ",)" if len(item) == 1 else ")"
            out.append("(")
            stack.append(closing)
            for k in range(len(item) - 1, -1, -1):
                stack.append(item[k])
                if k:
                    stack.append(", ")
        elif item is None:
            out.append("None")
        else:
            out.append(f"%{number[id(item)]}")
    return "".join(out)


def listing(outputs, params: Iterable[Node] | None = None, names: Mapping | None = None) -> str:
    """A readable SSA-style text listing of the graph reachable from ``outputs``.

    Parameters
    ----------
    outputs
        A node, a list of nodes, or a nested result structure (tuples of nodes), such as
        ``Program.result``.
    params
        Input nodes to list first, in this order (a program's positional parameters).
    names
        Optional labels ``{node: text}`` shown as a trailing ``# text`` comment on that
        node's line (e.g. which gradient a node is).

    Returns
    -------
    str
        One line per node, ``%k : type = expression``, inputs before users, followed by a
        ``return`` line with the structure of ``outputs``. Linear in the graph size.

    Examples
    --------
    >>> import sympy as sp
    >>> from symgrad.compiler.program import build_programs
    >>> x = sp.Symbol("x")
    >>> ps = build_programs([sp.tanh(x)], [x])
    >>> vg = next(p for p in ps.programs if p.name == "value_and_grad")
    >>> print(listing(vg.result, vg.params))
    %0 : float[] = input x
    %1 : float[] = tanh(%0)
    %2 : float[] = 1 - %1**2
    return (%1, (%2,))
    """
    order, number = number_nodes(outputs, params)
    labels = {id(k): str(v) for k, v in (names or {}).items()}
    lines = []
    for node in order:
        arg_names = [f"%{number[id(i)]}" for i in node.inputs]
        line = f"%{number[id(node)]} : {node.type} = {describe(node, arg_names)}"
        label = labels.get(id(node))
        if label is not None:
            # A label is free text from the caller: keep it on this node's line.
            line += "  # " + " ".join(label.splitlines())
        lines.append(line)
    lines.append(f"return {_format_result(outputs, number)}")
    return "\n".join(lines)


def program_listing(program: Program, names: Mapping | None = None) -> str:
    """:func:`listing` of a :class:`~symgrad.ir.program.Program`, headed by its signature.

    The header ``# value_and_grad(%0, %1, %2)`` names the function and its parameters.
    """
    _, number = number_nodes((), program.params)
    params = ", ".join(f"%{number[id(p)]}" for p in program.params)
    body = listing(program.result, program.params, names)
    return f"# {program.name}({params})\n{body}"
