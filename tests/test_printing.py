"""Text listings and Graphviz drawings of IR graphs (no Numba compilation here: graphs only)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from xml.etree import ElementTree

import pytest
import sympy as sp

from symgrad.compiler.program import build_programs
from symgrad.ir import dot as dot_module
from symgrad.ir.dot import BACKWARD_COLOR, FORWARD_COLOR, backward_nodes, render, to_dot
from symgrad.ir.node import toposort
from symgrad.ir.ops_elementwise import ARGS, apply
from symgrad.ir.ops_source import input_node
from symgrad.ir.printing import listing, number_nodes, program_listing
from symgrad.ir.program import flatten

LINE = re.compile(r"^%(\d+) : (float|int)\[[^\]]*\] = (.+)$")
REF = re.compile(r"%(\d+)")
HAS_DOT = shutil.which("dot") is not None


def program(ps, name: str):
    return next(p for p in ps.programs if p.name == name)


def sigmoid_programs():
    w, x, b = sp.symbols("w x b")
    return build_programs([1 / (1 + sp.exp(-(w * x + b)))], [w, b])


def matrix_programs():
    n = sp.Symbol("n")
    X, W, B = sp.MatrixSymbol("X", n, 3), sp.MatrixSymbol("W", 3, 4), sp.MatrixSymbol("B", 1, 4)
    hidden = (X * W + sp.OneMatrix(n, 1) * B).applyfunc(sp.tanh)
    return build_programs([sp.Trace(hidden.T * hidden)], [W, B])


def check_ssa(text: str) -> tuple[list[str], str]:
    """Node lines numbered 0, 1, ... in order, each using only earlier names; the return line."""
    *lines, ret = text.splitlines()
    for k, line in enumerate(lines):
        match = LINE.match(line)
        assert match, line
        assert int(match.group(1)) == k
        assert all(int(r) < k for r in REF.findall(match.group(3))), line
    assert ret.startswith("return ")
    assert all(int(r) < len(lines) for r in REF.findall(ret))
    return lines, ret


# -- listing ------------------------------------------------------------------------------------


def test_scalar_gradient_listing_is_one_line_per_node():
    vg = program(sigmoid_programs(), "value_and_grad")
    text = listing(vg.result, vg.params)
    lines, ret = check_ssa(text)
    assert len(lines) == len(toposort(flatten(vg.result)))
    # Parameters come first, in order, by user name.
    assert lines[:3] == [
        "%0 : float[] = input w",
        "%1 : float[] = input b",
        "%2 : float[] = input x",
    ]
    # 1/(1 + exp(-v)) is either kept or rewritten to the stable sigmoid (once symgrad.nn is loaded).
    assert "exp(" in text or "sigmoid(" in text
    # The return line keeps the structure (value, (dw, db)).
    assert re.fullmatch(r"return \(%\d+, \(%\d+, %\d+\)\)", ret)


def test_elementwise_lines_show_the_body_with_arguments():
    x = sp.Symbol("x")
    vg = program(build_programs([sp.tanh(x)], [x]), "value_and_grad")
    assert listing(vg.result, vg.params).splitlines() == [
        "%0 : float[] = input x",
        "%1 : float[] = tanh(%0)",
        "%2 : float[] = 1 - %1**2",  # the derivative reuses the forward value
        "return (%1, (%2,))",
    ]


def test_matrix_listing_shows_shapes_attributes_and_gradients():
    ps = matrix_programs()
    vg = program(ps, "value_and_grad")
    lines, ret = check_ssa(listing(vg.result, vg.params))
    assert lines[0] == "%0 : float[3, 4] = input W"
    assert lines[1] == "%1 : float[1, 4] = input B"
    assert lines[2] == "%2 : float[n, 3] = input X"
    assert any(re.search(r"= matmul\(%\d+, %\d+\)$", line) for line in lines)
    assert any(re.search(r"= sum\(%\d+; axes=\(0,\), keepdims=True\)$", line) for line in lines)
    assert any(re.search(r"= tanh\(%\d+\)$", line) for line in lines)
    # The gradients have the shapes of W and B.
    value, grad_w, grad_b = (int(k) for k in REF.findall(ret))
    assert ": float[] =" in lines[value]
    assert lines[grad_w].startswith(f"%{grad_w} : float[3, 4] =")
    assert lines[grad_b].startswith(f"%{grad_b} : float[1, 4] =")


def test_internal_inputs_show_their_role():
    backward = program(sigmoid_programs(), "backward")
    text = program_listing(backward)
    # inputs w, b, x, then the tape, then the seed (the tape's length depends on the rewrites)
    params = ", ".join(f"%{k}" for k in range(len(backward.params)))
    assert text.splitlines()[0] == f"# backward({params})"
    assert len(backward.params) >= 5
    assert "= input seed (seed)" in text
    assert "= input tape0 (tape)" in text


def test_unused_parameters_are_listed_and_names_annotate():
    x, y = sp.symbols("x y")
    vg = program(build_programs([sp.sin(x)], [x, y]), "value_and_grad")
    grad_x, grad_y = vg.result[1]
    text = listing(vg.result, vg.params, names={grad_x: "d/dx", grad_y: "d/dy\nsecond line"})
    lines, _ = check_ssa(text.replace("  # d/dx", "").replace("  # d/dy second line", ""))
    assert "%1 : float[] = input y" in lines
    assert "# d/dx" in text and "# d/dy second line" in text  # a label never adds a line


def test_odd_symbol_names_stay_on_one_line():
    x = sp.Symbol('x"; rankdir=LR; //\nnext')
    value = program(build_programs([sp.sin(x)], [x]), "value")
    lines = listing(value.result, value.params).splitlines()
    assert len(lines) == 3
    assert lines[0] == "%0 : float[] = input " + repr(x.name)


def chain_listing(depth: int) -> list[str]:
    x = sp.Symbol("x")
    expr = x
    for _ in range(depth):
        expr = sp.sin(expr)
    vg = program(build_programs([expr], [x]), "value_and_grad")
    lines, _ = check_ssa(listing(vg.result, vg.params))
    return lines


def test_deep_chain_listing_is_linear_in_depth():
    short, deep = chain_listing(100), chain_listing(200)
    assert 200 <= len(deep) <= 5 * 200 + 10
    # Twice the depth, about twice the lines: no swelling.
    assert 1.8 <= len(deep) / len(short) <= 2.2


def test_listing_and_dot_do_not_recurse_on_very_deep_graphs():
    node = x = input_node("x")
    depth = 5000  # far past the default recursion limit of 1000
    for _ in range(depth):
        node = apply(sp.sin(ARGS[0]), [node])
    text = listing(((node, x),))
    assert len(text.splitlines()) == depth + 2
    assert text.endswith(f"return ((%{depth}, %0),)")
    assert to_dot(node).count("->") == depth


# -- DOT ----------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<html><)|(?P<arrow>->)|(?P<id>[A-Za-z_0-9.#]+)'
    r"|(?P<punct>[{}\[\];,=]))",
    re.S,
)


def tokens(src: str) -> list[tuple[str, str]]:
    """Tokens of DOT source (the subset to_dot writes), HTML-like labels as single tokens."""
    out, pos = [], 0
    while src[pos:].strip():
        m = _TOKEN.match(src, pos)
        assert m, f"unexpected DOT text at {src[pos : pos + 40]!r}"
        kind = m.lastgroup
        if kind == "html":  # balanced <...>, nested tags inside
            depth, end = 1, m.end()
            while depth:
                assert end < len(src), "unterminated HTML-like label"
                depth += {"<": 1, ">": -1}.get(src[end], 0)
                end += 1
            out.append(("html", src[m.start("html") : end]))
            pos = end
        else:
            out.append((kind, m.group(kind)))
            pos = m.end()
    return out


def check_dot(src: str) -> tuple[set[str], list[tuple[str, str]]]:
    """Check the structure of ``src`` without Graphviz; return its vertices and edges."""
    toks = tokens(src)
    assert [t for _, t in toks[:3]] == ["digraph", "symgrad", "{"] and toks[-1][1] == "}"
    depth = 0
    for k, (kind, text) in enumerate(toks):  # braces balance outside strings and labels
        if kind == "punct" and text in "{}":
            depth += 1 if text == "{" else -1
        assert depth > 0 or k in (0, 1, len(toks) - 1), "the graph closes early"
    assert depth == 0
    vertices, edges = set(), []
    statements = " ".join(t if k != "html" and k != "str" else "S" for k, t in toks[3:-1])
    for stmt in statements.split(";"):
        words = stmt.split()
        if not words:
            continue
        if words[0] in ("node", "edge", "graph"):
            assert words[1] == "[" and words[-1] == "]", stmt
        elif len(words) > 1 and words[1] == "->":
            edges.append((words[0], words[2]))
            assert len(words) == 3 or (words[3] == "[" and words[-1] == "]"), stmt
        else:
            assert re.fullmatch(r"n\d+", words[0]) and words[1] == "[" and words[-1] == "]", stmt
            vertices.add(words[0])
    assert all(a in vertices and b in vertices for a, b in edges)
    return vertices, edges


def check_with_pydot(src: str, vertices: set[str], edges: list) -> None:
    pydot = pytest.importorskip("pydot")
    (graph,) = pydot.graph_from_dot_data(src)
    names = {n.get_name() for n in graph.get_nodes()} - {"node", "edge", "graph"}
    assert names == vertices
    assert len(graph.get_edges()) == len(edges)


def dot_json(src: str) -> dict:
    proc = subprocess.run(["dot", "-Tjson"], input=src.encode(), capture_output=True, check=True)
    assert not proc.stderr, proc.stderr  # no syntax warnings either
    return json.loads(proc.stdout)


def test_dot_of_a_gradient_program_is_well_formed():
    vg = program(matrix_programs(), "value_and_grad")
    src = to_dot(vg.result, vg.params)
    vertices, edges = check_dot(src)
    order, _ = number_nodes(vg.result, vg.params)
    assert vertices == {f"n{node.uid}" for node in order}
    assert len(edges) == sum(len(node.inputs) for node in order)
    assert src.count("shape=ellipse") == 3  # X, W, B
    assert src.count("peripheries=2") == 3  # the value and two gradients
    assert "1 - %" in src  # tanh' = 1 - tanh**2, shown by its body
    if HAS_DOT:
        assert len(dot_json(src)["objects"]) == len(vertices)


def test_dot_parses_with_pydot():
    vg = program(sigmoid_programs(), "value_and_grad")
    src = to_dot(vg.result, vg.params)
    check_with_pydot(src, *check_dot(src))


def test_odd_symbol_names_do_not_break_the_dot():
    name = 'x"; rankdir=LR; // <b>&\\N {}] > n0 -> n1\n}'
    x, w = sp.Symbol(name), sp.Symbol("w")
    vg = program(build_programs([sp.tanh(w * x)], [w, x]), "value_and_grad")
    src = to_dot(vg.result, vg.params)
    vertices, _ = check_dot(src)
    assert len(vertices) == len(number_nodes(vg.result, vg.params)[0])
    assert "rankdir" not in "".join(t for k, t in tokens(src) if k not in ("str", "html"))
    if HAS_DOT:
        graph = dot_json(src)
        assert "rankdir" not in graph
        assert len(graph["objects"]) == len(vertices)
        svg = subprocess.run(["dot", "-Tsvg"], input=src.encode(), capture_output=True, check=True)
        texts = [
            el.text for el in ElementTree.fromstring(svg.stdout).iter() if el.tag.endswith("}text")
        ]
        assert repr(name) in texts  # drawn exactly as the listing writes it


def test_backward_nodes_are_coloured_apart():
    vg = program(sigmoid_programs(), "value_and_grad")
    value, grads = vg.result
    back = backward_nodes(value, vg.result)
    src = to_dot(vg.result, vg.params, backward=back)
    assert back and src.count(BACKWARD_COLOR) == len(back)
    forward = len(number_nodes(vg.result, vg.params)[0]) - len(back)
    assert src.count(FORWARD_COLOR) == forward
    assert all(node.uid in back for node in grads)  # uids or nodes are both accepted
    assert to_dot(vg.result, vg.params, backward=list(grads)).count(BACKWARD_COLOR) == 2


@pytest.mark.skipif(not HAS_DOT, reason="the Graphviz 'dot' program is not installed")
def test_render_writes_svg_and_png(tmp_path):
    vg = program(matrix_programs(), "value_and_grad")
    src = to_dot(vg.result, vg.params)
    svg = render(src, tmp_path / "graph.svg")
    assert "<svg" in svg.read_text()
    png = render(src, str(tmp_path / "graph.PNG"))
    assert png.read_bytes().startswith(b"\x89PNG")


def test_render_names_the_missing_program(tmp_path, monkeypatch):
    monkeypatch.setattr(dot_module.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="Graphviz program 'dot'"):
        render("digraph g {}", tmp_path / "graph.svg")
    with pytest.raises(ValueError, match="graph.gif"):
        render("digraph g {}", tmp_path / "graph.gif")
