"""Graphviz drawings of IR graphs: DOT source, and rendering it with the ``dot`` program.

Nodes carry the same ``%k`` numbers as :func:`symgrad.ir.printing.listing`, so a drawing and a
listing of one graph can be read side by side.
"""

from __future__ import annotations

import html
import shutil
import subprocess
import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path

from .node import Node
from .printing import describe, format_value, number_nodes
from .program import flatten

__all__ = ["to_dot", "render", "backward_nodes"]

#: Fill colours: forward values, backward (gradient) values, and every node when no split is given.
FORWARD_COLOR = "#dae8fc"
BACKWARD_COLOR = "#ffe6cc"
PLAIN_COLOR = "#f5f5f5"

#: Output formats :func:`render` accepts, by file suffix.
FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf"}

# Fused elementwise bodies can be long; wrap so a node stays readable in the drawing.
_WRAP = 60


def _html(text: str) -> str:
    """Escape free text (user symbol names, SymPy bodies) for a Graphviz HTML-like label.

    Entities cover ``& < > " '``, backslashes are doubled, newlines become line breaks; nothing
    else in an HTML-like label is special to the DOT parser, so a name such as
    ``x"; rankdir=LR; //`` stays text.
    """
    lines = []
    for line in text.splitlines() or [""]:
        lines.extend(textwrap.wrap(line, _WRAP, break_on_hyphens=False) or [""])
    # Graphviz still expands backslash escapes inside HTML-like labels (\\N is the vertex id,
    # \\\\ one backslash), so each backslash is doubled to come out as itself.
    escaped = (html.escape(x, quote=True).replace("\\", "\\\\") for x in lines)
    return "<BR/>".join(escaped)


def _label(node: Node, k: int, arg_names: list[str], name: str | None = None) -> str:
    op = node.op
    head = f"%{k} = {op.name}"
    if op.name in ("input", "const"):
        # ``input X (role)`` / ``const 1/2`` without the op name, which is already the head.
        detail = describe(node, arg_names).split(" ", 1)[1]
    elif op.family == "elementwise":
        detail = describe(node, arg_names)
    else:
        # Structural ops: the edges show the inputs; the attributes (axes, shape, index ...)
        # are what is left to show.
        detail = ", ".join(f"{a}={format_value(v)}" for a, v in node.attrs if a != "body")
    parts = [f"<B>{_html(head)}</B>"]
    if name:
        parts.append(f"<B>{_html(name)}</B>")
    if detail:
        parts.append(_html(detail))
    parts.append(f'<FONT COLOR="#555555">{_html(str(node.type))}</FONT>')
    return "<" + "<BR/>".join(parts) + ">"


def _uids(nodes: Iterable | None) -> set[int]:
    return {n.uid if isinstance(n, Node) else int(n) for n in (nodes or ())}


def backward_nodes(forward_outputs, outputs) -> set[int]:
    """Uids of nodes reachable from ``outputs`` but not from ``forward_outputs``.

    Handy for the ``backward`` argument of :func:`to_dot`: pass a program's value outputs as
    ``forward_outputs`` and its whole result as ``outputs``.
    """
    _, forward = number_nodes(forward_outputs)
    order, _ = number_nodes(outputs)
    return {n.uid for n in order if id(n) not in forward}


def to_dot(
    outputs,
    params: Iterable[Node] | None = None,
    backward: Iterable | None = None,
    labels: Mapping | None = None,
) -> str:
    """Graphviz DOT source drawing the graph reachable from ``outputs``.

    Parameters
    ----------
    outputs
        A node, a list of nodes, or a nested result structure such as ``Program.result``.
    params
        Input nodes to number first, as in :func:`~symgrad.ir.printing.listing`.
    backward
        Optional nodes (or their ``uid``) computed by the backward pass; they are filled in a
        different colour from forward nodes. See :func:`backward_nodes`.
    labels
        Optional ``{node or uid: name}`` shown in bold under the op (e.g. the equation names
        ``δ1``, ``∂L/∂W1`` from :func:`symgrad.gradient_equations`).

    Returns
    -------
    str
        A ``digraph``: one vertex ``n<uid>`` per node, labelled with ``%k``, the op (the body for
        elementwise ops) and the type; inputs are ellipses, outputs have a double border, edges
        run from an input to its user (labelled with the argument position for structural ops
        with several inputs).

    Examples
    --------
    >>> import sympy as sp
    >>> from symgrad.compiler.program import build_programs
    >>> x = sp.Symbol("x")
    >>> vg = next(p for p in build_programs([sp.sin(x)], [x]).programs if p.name == "value")
    >>> dot = to_dot(vg.result, vg.params)
    >>> dot.splitlines()[0]
    'digraph symgrad {'
    >>> print(next(line for line in dot.splitlines() if "sin(%0)" in line))  # doctest: +ELLIPSIS
      n... [label=<<B>%1 = sin</B><BR/>sin(%0)<BR/>...float[]...>, shape=box, peripheries=2];
    >>> render(dot, "sin.svg")  # doctest: +SKIP
    PosixPath('sin.svg')
    """
    order, number = number_nodes(outputs, params)
    out_ids = {id(n) for n in flatten(outputs) if n is not None}
    split = backward is not None
    back = _uids(backward)
    names = {(k.uid if isinstance(k, Node) else int(k)): v for k, v in (labels or {}).items()}
    lines = [
        "digraph symgrad {",
        f'  node [fontname="Helvetica", fontsize=10, style=filled, fillcolor="{PLAIN_COLOR}"];',
    ]
    edges = []
    for node in order:
        vid = f"n{node.uid}"  # uids are ints: ids never carry user text
        arg_names = [f"%{number[id(i)]}" for i in node.inputs]
        attrs = [f"label={_label(node, number[id(node)], arg_names, names.get(node.uid))}"]
        attrs.append("shape=ellipse" if node.op.name == "input" else "shape=box")
        if id(node) in out_ids:
            attrs.append("peripheries=2")
        if split:
            color = BACKWARD_COLOR if node.uid in back else FORWARD_COLOR
            attrs.append(f'fillcolor="{color}"')
        lines.append(f"  {vid} [{', '.join(attrs)}];")
        positional = len(node.inputs) > 1 and node.op.family != "elementwise"
        for pos, inp in enumerate(node.inputs):
            edge = f"  n{inp.uid} -> {vid}"
            edges.append(f'{edge} [label="{pos}"];' if positional else f"{edge};")
    lines.extend(edges)
    lines.append("}")
    return "\n".join(lines)


def render(dot_source: str, path, timeout: float = 120.0) -> Path:
    """Run Graphviz ``dot`` on ``dot_source`` and write an image to ``path``.

    The format follows the suffix: ``.svg``, ``.png`` or ``.pdf``.

    Raises
    ------
    RuntimeError
        If the ``dot`` program is not installed, or it fails (its error output is included).
    ValueError
        For an unsupported suffix.
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot render to {path.name!r}: use one of {', '.join(FORMATS)}")
    exe = shutil.which("dot")
    if exe is None:
        raise RuntimeError(
            "rendering needs the Graphviz program 'dot', which is not on PATH; install Graphviz "
            "(e.g. apt-get install graphviz, brew install graphviz) or use the DOT source directly"
        )
    proc = subprocess.run(
        [exe, f"-T{fmt}", "-o", str(path)],
        input=dot_source.encode("utf-8"),
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(f"Graphviz 'dot' failed (exit {proc.returncode}): {err}")
    return path
